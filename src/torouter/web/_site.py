"""Serves the dashboard and the Playground: files shipped in `static/`, nothing fetched from elsewhere.

Each page is one HTML file at its root (`/dashboard`, `/playground`). Under either prefix, the
other files of `static/` are served by their path (`/dashboard/vendor/preact.mjs`). The set of
files is read once, at the first request, into a table: a path that is not a key of that table
gets a 404, so no request can reach a file outside `static/`, whatever it spells.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from torouter.surfaces.asgi import Receive, Scope, Send, header

PAGES = {"/dashboard": "dashboard.html", "/playground": "playground.html"}

CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".mjs": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
    ".ico": b"image/x-icon",
    ".txt": b"text/plain; charset=utf-8",
}

# Nothing from another host: scripts, styles, images and fetches come from the gateway itself.
# `script-src` adds the hash of the page's inline import map (browsers treat an import map as an
# inline script, so `'self'` alone would refuse it), and `frame-ancestors` bans framing.
CSP = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self'{hashes}; frame-ancestors 'none'"
)

_INLINE_SCRIPT = re.compile(rb"<script\b[^>]*>(.*?)</script>", re.S)
_COMPRESSIBLE = (".html", ".js", ".mjs", ".css", ".svg", ".txt")


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    content_type: bytes
    etag: bytes
    csp: bytes


def _inline_hashes(html: bytes) -> str:
    """CSP hashes of the page's inline scripts (the import map): an inline script without one is refused."""
    out = []
    for match in _INLINE_SCRIPT.finditer(html):
        if match.group(1).strip():
            digest = base64.b64encode(hashlib.sha256(match.group(1)).digest()).decode()
            out.append(f" 'sha256-{digest}'")
    return "".join(out)


def _asset(name: str, body: bytes) -> Asset:
    suffix = name[name.rfind(".") :]
    hashes = _inline_hashes(body) if suffix == ".html" else ""
    gzipped = gzip.compress(body, 9, mtime=0) if suffix in _COMPRESSIBLE and len(body) > 1024 else None
    return Asset(
        body=body,
        gzipped=gzipped,
        content_type=CONTENT_TYPES[suffix],
        etag=b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"',
        csp=CSP.format(hashes=hashes).encode(),
    )


def _walk(folder: Traversable, prefix: str = "") -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for entry in folder.iterdir():
        rel = prefix + entry.name
        if entry.is_dir():
            files.update(_walk(entry, rel + "/"))
        elif entry.is_file() and rel[rel.rfind(".") :] in CONTENT_TYPES:
            files[rel] = entry.read_bytes()
    return files


def load_assets(root: Traversable | None = None) -> tuple[dict[str, Asset], dict[str, Asset]]:
    """(pages by URL path, other files by path relative to `static/`). HTML is served only as a page."""
    files = _walk(root or resources.files("torouter.web") / "static")
    pages = {url: _asset(name, files[name]) for url, name in PAGES.items()}
    assets = {name: _asset(name, body) for name, body in files.items() if not name.endswith(".html")}
    return pages, assets


def _safe_relative(path: str) -> str | None:
    """The file path below a page prefix, or None when it tries to climb out or is malformed."""
    if "\\" in path or "\x00" in path or "%" in path:
        return None
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return path


class StaticSite:
    """The raw ASGI handler for `/dashboard`, `/playground` and the files below them."""

    def __init__(self) -> None:
        self._tables: tuple[dict[str, Asset], dict[str, Asset]] | None = None

    def _lookup(self, path: str) -> Asset | None:
        if self._tables is None:
            self._tables = load_assets()
        pages, assets = self._tables
        page = path.rstrip("/")
        if page in pages:
            return pages[page]
        for prefix in PAGES:
            if path.startswith(prefix + "/"):
                rel = _safe_relative(path[len(prefix) + 1 :])
                return assets.get(rel) if rel is not None else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        asset = self._lookup(scope["path"])
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cache-control", b"no-cache"),  # revalidate each time: a 304 is cheap, a stale module is not
        ]
        if asset is None:
            body = b"Not found\n"
            headers = [(b"content-type", CONTENT_TYPES[".txt"]), (b"content-length", str(len(body)).encode())]
            await _send(
                send, 404, [*headers, *common, (b"content-security-policy", b"default-src 'none'")], body
            )
            return
        gzipped = asset.gzipped is not None and b"gzip" in (header(scope, b"accept-encoding") or b"")
        etag = asset.etag[:-1] + b'-gz"' if gzipped else asset.etag  # one tag per encoding of the file
        common += [(b"etag", etag), (b"vary", b"accept-encoding")]
        common += [(b"content-security-policy", asset.csp), (b"x-frame-options", b"DENY")]
        if _matches(header(scope, b"if-none-match"), etag):
            await _send(send, 304, common, b"")
            return
        body = asset.gzipped if gzipped and asset.gzipped is not None else asset.body
        headers = [(b"content-type", asset.content_type), (b"content-length", str(len(body)).encode())]
        if gzipped:
            headers.append((b"content-encoding", b"gzip"))
        await _send(send, 200, [*headers, *common], b"" if scope["method"] == "HEAD" else body)


def _matches(if_none_match: bytes | None, etag: bytes) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix(b"W/") for t in if_none_match.split(b",")]
    return etag in tags or b"*" in tags


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
