"""A request's headers by name, built once per request for the few lookups every call makes."""

from __future__ import annotations

from typing import Any

_KEY = "torouter.header_map"  # where the map is kept in the ASGI scope


def header_map(scope: dict[str, Any]) -> dict[bytes, bytes]:
    """Each header's first value by name, made on first use and kept in the scope.

    One C-level pass when no name repeats, as in nearly every request. When one does, the first
    value is the one that counts (the API key, the capture switch); a caller that needs every
    value (anthropic-beta) sees the map is shorter than the list and walks the list.
    """
    found = scope.get(_KEY)
    if found is None:
        headers = scope["headers"]
        found = dict(headers)
        if len(found) != len(headers):  # a dict keeps a repeated name's last value
            found = {}
            for name, value in headers:
                found.setdefault(name, value)
        scope[_KEY] = found
    return found
