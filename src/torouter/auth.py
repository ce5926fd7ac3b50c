"""Finding and checking the caller's API key, with no database round trip."""

from __future__ import annotations

import functools
import time
from urllib.parse import parse_qsl, unquote_plus

from torouter.auth_throttle import AuthThrottle
from torouter.catalog import KeyEntry, Snapshot
from torouter.errors import GatewayError
from torouter.request_headers import header_map
from torouter.store.keys import hash_key

_KEY_HEADERS = (b"x-api-key", b"x-goog-api-key")
# A key's hash, computed once per key in use rather than on each of its calls. Only the lookup
# is cached: revoking or expiring a key still takes effect through the snapshot.
_digest = functools.lru_cache(maxsize=4096)(hash_key)


def extract_key(scope: dict) -> str | None:
    """Bearer, x-api-key, x-goog-api-key, then ?key= — the first one present wins."""
    found = header_map(scope)  # a repeated header: its first value is the one that counts
    auth = found.get(b"authorization")
    if auth is not None:
        scheme, _, token = auth.partition(b" ")
        if scheme.lower() == b"bearer" and token.strip():
            return token.strip().decode("latin-1")
    for name in _KEY_HEADERS:
        if found.get(name):
            return found[name].strip().decode("latin-1")
    qs = scope.get("query_string")
    if qs and b"key=" in qs:
        for k, v in parse_qsl(qs.decode("latin-1")):
            if k == "key" and v:
                return v
    return None


def without_key_param(query: str) -> str:
    """The query string minus `key=` (however escaped): the client's ToRouter key must never travel upstream."""
    if "key=" not in query and "%" not in query:
        return query
    return "&".join(p for p in query.split("&") if unquote_plus(p.partition("=")[0]) != "key")


def mask(key: str) -> str:
    return key[:6] + "*" * 4 + key[-4:] if len(key) > 12 else "*" * len(key)


def authenticate(snapshot: Snapshot, scope: dict, throttle: AuthThrottle | None = None) -> KeyEntry:
    if throttle is not None and throttle.blocked:
        throttle.check(scope)
    key = extract_key(scope)
    if key is None:
        raise GatewayError(
            "authentication",
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>', 'x-api-key', 'x-goog-api-key' or '?key='.",
            code="missing_api_key",
        )
    entry = snapshot.keys.get(_digest(key))
    if entry is None:
        if throttle is not None:
            throttle.failed(scope)
        raise GatewayError(
            "authentication", f"Incorrect API key provided: {mask(key)}.", code="invalid_api_key"
        )
    if entry.status != "active":
        raise GatewayError(
            "authentication", f"This API key ({entry.prefix}…) has been revoked.", code="invalid_api_key"
        )
    if entry.expires_at is not None and entry.expires_at <= time.time():
        raise GatewayError(
            "authentication", f"This API key ({entry.prefix}…) has expired.", code="invalid_api_key"
        )
    return entry
