"""Usage for calls the upstream served without reporting it (a cut stream, a vendor that omits it).

The figures are rough on purpose: they run only on that rare path, and the usage record marks
them `estimated`. Input comes from the strings of the request; output from the text fields of
what was relayed to the client, whatever its protocol.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from torouter.accounting.tokens import text_tokens
from torouter.hub import Usage

_SKIP_KEYS = frozenset({"model", "data", "url", "image_url", "file_data", "signature", "id"})
_TEXT = re.compile(
    rb'"(?:text|content|delta|partial_json|thinking|arguments|refusal)"\s*:\s*"((?:[^"\\]|\\.)*)"'
)


def _strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in _SKIP_KEYS:
                _strings(v, out)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out)


def input_tokens(body: Any) -> int:
    texts: list[str] = []
    _strings(body, texts)
    return sum(text_tokens(t) for t in texts)


def output_tokens(relayed: list[bytes] | None) -> int:
    if not relayed:
        return 0
    total = 0
    for m in _TEXT.finditer(b"".join(relayed)):
        try:
            total += text_tokens(orjson.loads(b'"' + m.group(1) + b'"'))
        except orjson.JSONDecodeError:
            total += len(m.group(1)) // 4
    return total


def estimate_usage(body: Any, relayed: list[bytes] | None) -> Usage:
    return Usage(input_tokens=input_tokens(body), output_tokens=output_tokens(relayed))
