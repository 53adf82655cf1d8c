"""The web dashboard's built files (services/dashboard), served by the gateway at `/`.

Vite names every asset after a hash of its content, so assets are cached for a year; a new
build is new names. `index.html` names the current assets, so it is revalidated on every load,
and every path of the app (`/agents/x`) answers with it: the app routes in the browser. What
looks like a file (`/assets/...`, `/x.png`) and is missing is a 404, never `index.html` parsed
as JavaScript. `/api/...`, `/health` and `/ready` are never the app: an unknown API path stays a
problem+json 404.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from litestar import Request, Response, route
from litestar.enums import HttpMethod
from litestar.exceptions import NotFoundException
from litestar.response import File

from cortex.kernel.settings import Settings

SOURCE_BUILD = Path(__file__).resolve().parents[3] / "services" / "dashboard" / "dist"
"""Where `npm run build` in services/dashboard puts the files in a source tree."""

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
NOT_THE_APP = frozenset({"/api", "/health", "/ready"})
EVERY_METHOD = [m for m in HttpMethod if m not in (HttpMethod.HEAD, HttpMethod.OPTIONS)]


class DashboardFiles:
    """The files of one build; `root` None when there is none."""

    def __init__(self, root: Path | None) -> None:
        self.root = root.resolve() if root is not None else None

    @classmethod
    def from_settings(cls, settings: Settings) -> DashboardFiles:
        folder = Path(settings.dashboard_dir) if settings.dashboard_dir else SOURCE_BUILD
        return cls(folder if (folder / "index.html").is_file() else None)

    def response(self, path: str) -> Response[Any] | File:
        if self.root is None:
            raise NotFoundException(
                "the dashboard is not built: `make up` builds it (or `npm ci && npm run build` "
                "in services/dashboard); CORTEX_DASHBOARD_DIR names a build elsewhere"
            )
        relative = path.lstrip("/")
        if relative:
            wanted = (self.root / relative).resolve()
            if wanted.is_relative_to(self.root) and wanted.is_file():
                hashed = wanted.parent == self.root / "assets"
                return self._file(wanted, IMMUTABLE if hashed else REVALIDATE)
            if relative.startswith("assets/") or "." in relative.rsplit("/", 1)[-1]:
                raise NotFoundException(f"no file {path!r} in the dashboard")
        return self._file(self.root / "index.html", REVALIDATE)

    @staticmethod
    def _file(path: Path, cache: str) -> File:
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return File(
            path,
            media_type=media_type,
            content_disposition_type="inline",
            headers={"Cache-Control": cache},
        )


def dashboard_route(files: DashboardFiles) -> Any:
    """The catch-all handler: routes of the API match first, everything else comes here."""

    @route(
        ["/", "/{path:path}"],
        http_method=EVERY_METHOD,
        status_code=200,
        opt={"public": True},
        include_in_schema=False,
    )
    async def dashboard(request: Request[Any, Any, Any]) -> Response[Any] | File:
        path = request.url.path
        if request.method != HttpMethod.GET or path in NOT_THE_APP or path.startswith("/api/"):
            raise NotFoundException()
        return files.response(path)

    return dashboard
