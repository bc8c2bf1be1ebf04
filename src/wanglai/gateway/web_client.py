"""Serves the browser client: ``/`` is its page, ``/web/<file>`` its modules and styles."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"

TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain",
    ".json": "application/json",
}

# No build step means no hashed file names: the browser revalidates every file (ETag and
# Last-Modified answer 304), so a server upgrade is picked up on the next load.
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
        "connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


def install(app: web.Application, root: Path = WEB_ROOT) -> None:
    """Add the client's routes (before any catch-all route). The files are listed once here, so
    a request can only name one of them (no path is resolved at request time)."""
    files = {
        path.relative_to(root).as_posix(): path
        for path in root.rglob("*")
        if path.is_file() and path.suffix in TYPES
    }

    async def index(_request: web.Request) -> web.StreamResponse:
        return _file(root / "index.html")

    async def asset(request: web.Request) -> web.StreamResponse:
        path = files.get(request.match_info["path"])
        if path is None:
            raise web.HTTPNotFound(text="No such file.")
        return _file(path)

    app.router.add_get("/", index)
    app.router.add_get("/web/{path:.+}", asset)


def _file(path: Path) -> web.FileResponse:
    kind = TYPES[path.suffix]
    if kind.startswith("text/") or kind == "application/json":
        kind += "; charset=utf-8"
    return web.FileResponse(path, headers={**HEADERS, "Content-Type": kind})
