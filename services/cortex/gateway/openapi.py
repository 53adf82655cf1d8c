"""`python -m cortex.gateway.openapi`: write the OpenAPI document committed under contracts/.

The document is the one the gateway serves at `/api/v1/openapi.json`; a test fails when the
committed copy is stale (`make contracts` refreshes it).
"""

from __future__ import annotations

import json
from pathlib import Path

from cortex.gateway.app import openapi_document

COMMITTED = Path(__file__).resolve().parents[3] / "contracts" / "openapi" / "gateway.json"


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    COMMITTED.parent.mkdir(parents=True, exist_ok=True)
    COMMITTED.write_text(render())
    print("wrote contracts/openapi/gateway.json")


if __name__ == "__main__":
    main()
