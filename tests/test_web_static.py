"""The dashboard and the Playground as a browser gets them from a real gateway: every file they need,
with its type and policy, nothing from another host, and nothing outside the static folder."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.gateway_harness import GatewayServer

STATIC = Path(__file__).resolve().parents[1] / "src" / "torouter" / "web" / "static"
PAGES = ["/dashboard", "/playground"]
JS_TYPE = "text/javascript"
TYPES = {".html": "text/html", ".js": JS_TYPE, ".mjs": JS_TYPE, ".css": "text/css", ".txt": "text/plain"}
# XML namespace names: identifiers the DOM compares, never fetched (Preact creates SVG and MathML with them).
NAMESPACES = {
    "http://www.w3.org/2000/svg",
    "http://www.w3.org/1999/xhtml",
    "http://www.w3.org/1998/Math/MathML",
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    workdir = tmp_path_factory.mktemp("web")
    config = {"database_url": f"sqlite+aiosqlite:///{workdir / 'torouter.db'}", "admin_token": "admin-secret"}
    with GatewayServer(workdir, config) as gw:
        yield gw


class _Refs(HTMLParser):
    """What a page makes the browser fetch: script src, link href, and the import map's entries."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.import_map: dict[str, str] = {}
        self.inline_scripts: list[str] = []
        self._in_script: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            if a.get("src"):
                self.urls.append(a["src"] or "")
            else:
                self._in_script = a.get("type") or ""
        elif tag == "link" and a.get("href"):
            self.urls.append(a["href"] or "")

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            self.inline_scripts.append(data)
            if self._in_script == "importmap":
                self.import_map.update(json.loads(data)["imports"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None


def page_refs(client: httpx.Client, page: str) -> _Refs:
    refs = _Refs()
    refs.feed(client.get(page).text)
    return refs


_IMPORT = re.compile(r"""\b(?:from\s*|import\s*\(?\s*)["']([^"']+)["']""")


def module_graph(client: httpx.Client, page: str) -> dict[str, str]:
    """Every module the page loads, following static imports through the import map: url -> content type."""
    refs = page_refs(client, page)
    todo = [u for u in refs.urls if u.endswith((".js", ".mjs"))] + list(refs.import_map.values())
    seen: dict[str, str] = {}
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        res = client.get(url)
        assert res.status_code == 200, f"{page} needs {url}, which answers {res.status_code}"
        seen[url] = res.headers["content-type"]
        for spec in _IMPORT.findall(strip_js_comments(res.text)):
            if spec.startswith(("./", "../", "/")):
                todo.append(urlsplit(urljoin("http://x" + url, spec)).path)
            else:
                assert spec in refs.import_map, (
                    f"{url} imports {spec!r}, which the import map of {page} lacks"
                )
                todo.append(refs.import_map[spec])
    return seen


# --- JavaScript comments, told apart from strings, template literals and regular expressions ---------

_REGEX_AFTER = set("(,=:[!&|?{};+-*%<>~^")
_REGEX_KEYWORDS = (
    "return",
    "typeof",
    "case",
    "do",
    "else",
    "in",
    "of",
    "void",
    "yield",
    "await",
    "delete",
    "throw",
    "new",
)


def strip_js_comments(src: str) -> str:
    out: list[str] = []
    i, n = 0, len(src)
    braces: list[int] = []  # open braces of each `${` we are inside, innermost last

    def regex_allowed() -> bool:
        code = "".join(out[-40:]).rstrip()
        if not code:
            return True
        if code[-1] in _REGEX_AFTER:
            return True
        return any(code.endswith(k) and not (code[: -len(k)][-1:].isalnum()) for k in _REGEX_KEYWORDS)

    def template(start: int) -> int:
        """Copy a template literal from its backtick; stop at its end, or at a `${` (pushing a brace count)."""
        j = start + 1
        while j < n:
            if src[j] == "\\":
                j += 2
                continue
            if src[j] == "`":
                out.append(src[start : j + 1])
                return j + 1
            if src.startswith("${", j):
                out.append(src[start : j + 2])
                braces.append(0)
                return j + 2
            j += 1
        raise AssertionError("unterminated template literal")

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            i = src.find("\n", i)
            i = n if i < 0 else i
        elif src.startswith("/*", i):
            end = src.find("*/", i + 2)
            assert end >= 0, "unterminated comment"
            out.append(" ")
            i = end + 2
        elif c in "\"'":
            j = i + 1
            while src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(src[i : j + 1])
            i = j + 1
        elif c == "`":
            i = template(i)
        elif c == "}" and braces and braces[-1] == 0:
            braces.pop()
            i = template(i)  # the rest of the template after `${...}`
        elif c in "{}":
            if braces:
                braces[-1] += 1 if c == "{" else -1
            out.append(c)
            i += 1
        elif c == "/" and regex_allowed():
            j, in_class = i + 1, False
            while src[j] != "/" or in_class:
                if src[j] == "\\":
                    j += 1
                elif src[j] == "[":
                    in_class = True
                elif src[j] == "]":
                    in_class = False
                j += 1
            out.append(src[i : j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def code_of(name: str, text: str) -> str:
    """The part of a served file a browser acts on: without comments."""
    if name.endswith((".js", ".mjs")):
        return strip_js_comments(text)
    if name.endswith(".css"):
        return re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    if name.endswith(".html"):
        return re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    return ""  # licence texts: not code


def test_the_comment_stripper_keeps_strings_templates_and_regexes() -> None:
    src = "a = '//x' + `${b /* c */}d${`e${f}`}` // g\nh = /[/]\\/*/.test(i); /* j */ k = l / 2 / m;"
    assert (
        strip_js_comments(src) == "a = '//x' + `${b  }d${`e${f}`}` \nh = /[/]\\/*/.test(i);   k = l / 2 / m;"
    )


# --- the tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/", "/playground", "/playground/"])
def test_pages_are_html_with_a_policy_that_keeps_everything_on_this_host(
    gateway: GatewayServer, path: str
) -> None:
    res = httpx.get(gateway.url + path)
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    assert res.headers["x-content-type-options"] == "nosniff"
    csp = res.headers["content-security-policy"]
    for directive in (
        "default-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "style-src 'self' 'unsafe-inline'",
    ):
        assert directive in csp
    assert "http" not in csp and "*" not in csp
    # The inline import map runs only because the policy names its hash.
    refs = _Refs()
    refs.feed(res.text)
    assert refs.import_map, "each page has an import map"
    for script in refs.inline_scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp


@pytest.mark.parametrize("page", PAGES)
def test_every_file_a_page_references_is_served_with_its_content_type(
    gateway: GatewayServer, page: str
) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        refs = page_refs(client, page)
        assert {"preact", "preact/hooks", "htm"} <= set(refs.import_map)
        for url in refs.urls:
            if url.startswith("data:"):
                continue
            assert url.startswith(page + "/"), f"{url} is not served by this page's handler"
            res = client.get(url)
            assert res.status_code == 200, url
            assert res.headers["content-type"].startswith(TYPES[url[url.rfind(".") :]]), url
            assert res.headers["content-security-policy"].startswith("default-src 'self'")
        modules = module_graph(client, page)
    assert all(t.startswith(JS_TYPE) for t in modules.values()), modules
    assert any(u.endswith("/vendor/preact.mjs") for u in modules)
    assert any(u.endswith("/vendor/hooks.mjs") for u in modules)
    if page == "/dashboard":
        assert refs.import_map["uplot"] in modules


def test_no_served_file_loads_anything_from_another_host(gateway: GatewayServer) -> None:
    files = sorted(p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file())
    assert "vendor/preact.mjs" in files and "vendor/uPlot.esm.js" in files
    offenders = []
    with httpx.Client(base_url=gateway.url) as client:
        for name in files:
            if name.endswith(".md"):
                continue  # the vendor README is for maintainers and is not served
            url = {"dashboard.html": "/dashboard", "playground.html": "/playground"}.get(
                name, "/dashboard/" + name
            )
            res = client.get(url)
            assert res.status_code == 200, url
            assert res.headers["content-type"].startswith(TYPES[name[name.rfind(".") :]]), url
            code = code_of(name, res.text)
            offenders += [
                (name, u) for u in re.findall(r"https?://[^\s\"'`)<>]+", code) if u not in NAMESPACES
            ]
            if name.endswith(".html"):
                offenders += [
                    (name, u)
                    for u in re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", code)
                    if not u.startswith(("/", "data:", "#"))
                ]
            if name.endswith(".css"):
                offenders += [
                    (name, u)
                    for u in re.findall(r"""(?:url\(|@import)\s*["']?([^"')\s]+)""", code)
                    if not u.startswith(("data:", "/"))
                ]
    assert offenders == []


def _raw_get(gateway: GatewayServer, path: str) -> tuple[int, bytes]:
    """Sends the path exactly as written (httpx would resolve the dots before sending)."""
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=5)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/../pyproject.toml",
        "/dashboard/../../../../etc/passwd",
        "/dashboard/vendor/../../_site.py",
        "/playground/js/../../__init__.py",
        "/dashboard/%2e%2e/%2e%2e/app.py",
        "/dashboard/..%2f_site.py",
        "/dashboard/%2e%2e%5c_site.py",
        "/dashboard/..\\_site.py",
        "/playground//etc/passwd",
        "/dashboard/./vendor/preact.mjs",
        "/dashboard/vendor/",
        "/dashboard/vendor",
        "/dashboard/dashboard.html",
        "/dashboard/vendor/README.md",
        "/playground/no-such-file.js",
        "/dashboard/%252e%252e/_site.py",
    ],
)
def test_paths_outside_the_static_files_get_404(gateway: GatewayServer, path: str) -> None:
    status, body = _raw_get(gateway, path)
    assert status == 404, (path, status)
    assert b"import" not in body and b"root:" not in body


def test_files_revalidate_by_etag_and_come_gzipped_when_asked(gateway: GatewayServer) -> None:
    url = gateway.url + "/dashboard/vendor/uPlot.esm.js"
    first = httpx.get(url, headers={"accept-encoding": "identity"})
    assert first.headers["cache-control"] == "no-cache"
    assert "content-encoding" not in first.headers
    again = httpx.get(url, headers={"accept-encoding": "identity", "if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    with httpx.stream("GET", url, headers={"accept-encoding": "gzip"}) as zipped:
        compressed = b"".join(zipped.iter_raw())
    assert zipped.headers["content-encoding"] == "gzip"
    assert len(compressed) < len(first.content) / 2
    assert gzip.decompress(compressed) == first.content
    assert zipped.headers["etag"] != first.headers["etag"]  # each encoding has its own tag


def test_the_shared_files_are_the_same_under_both_pages(gateway: GatewayServer) -> None:
    for name in ("vendor/preact.mjs", "css/base.css", "js/lib/html.js"):
        a = httpx.get(f"{gateway.url}/dashboard/{name}")
        b = httpx.get(f"{gateway.url}/playground/{name}")
        assert a.status_code == b.status_code == 200
        assert a.content == b.content == (STATIC / name).read_bytes()
