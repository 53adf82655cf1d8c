"""`python -m cortex.gateway.openapi`: write the OpenAPI document committed under contracts/.

The document is the one the gateway serves at `/api/v1/openapi.json`; a test fails when the
committed copy is stale (`make contracts` refreshes it).
"""

from __future__ import annotations

import json
from pathlib import Path

from cortex.gateway.app import create_app
from cortex.gateway.state import Gateway
from cortex.kernel.settings import load_settings

COMMITTED = Path(__file__).resolve().parents[3] / "contracts" / "openapi" / "gateway.json"


def render() -> str:
    app = create_app(Gateway(load_settings({})))
    return json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    COMMITTED.parent.mkdir(parents=True, exist_ok=True)
    COMMITTED.write_text(render())
    print(f"wrote {COMMITTED.relative_to(COMMITTED.parents[2])}")


if __name__ == "__main__":
    main()
