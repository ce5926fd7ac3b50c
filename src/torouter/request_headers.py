"""A request's headers by name, built once per request for the few lookups every call makes."""

from __future__ import annotations

from typing import Any

_KEY = "torouter.header_map"  # where the map is kept in the ASGI scope
_UNSET: Any = object()


def header_map(scope: dict[str, Any]) -> dict[bytes, bytes] | None:
    """The headers as a dict, made in one C-level pass on first use and kept in the scope.

    None when some name repeats: a dict keeps only a name's last value, and a caller may need
    the first (the API key) or all of them (anthropic-beta). Callers then walk the list.
    """
    found = scope.get(_KEY, _UNSET)
    if found is _UNSET:
        headers = scope["headers"]
        found = dict(headers)
        if len(found) != len(headers):
            found = None
        scope[_KEY] = found
    return found
