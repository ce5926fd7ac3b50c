"""A request body's field named like one of a decoder's own keys in the hub's extras (`_layout`,
`_shape`, `_tool_config`...) is the client's field: it never stands in for the decoder's, so
encoding the request for any platform neither fails nor reads it. Hypothesis found a Gemini body
with `"_tool_config": false` that broke the re-encoding with a TypeError (a 500)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from torouter import hub
from torouter.protocols import anthropic_codec, gemini_request, openai_chat_request, responses_request

SRC = Path(__file__).resolve().parents[1] / "src" / "torouter" / "protocols"

DECODERS: dict[str, tuple[Callable[[dict[str, Any]], hub.Request], dict[str, Any], str]] = {
    "openai": (
        openai_chat_request.decode_request,
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        "openai_chat_request.py",
    ),
    "anthropic": (
        anthropic_codec.decode_request,
        {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        "anthropic_codec.py",
    ),
    "gemini": (
        lambda body: gemini_request.decode_request(body, "m"),
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        "gemini_request.py",
    ),
    "responses": (responses_request.decode_request, {"model": "m", "input": "hi"}, "responses_request.py"),
}
ENCODERS: dict[str, Callable[[hub.Request], dict[str, Any]]] = {
    "openai": openai_chat_request.encode_request,
    "anthropic": anthropic_codec.encode_request,
    "gemini": gemini_request.encode_request,
    "responses": responses_request.encode_request,
}
ODD_VALUES = [False, True, 0, "x", [1], {"patch": 5, "split": "no"}, None]


def own_keys(source: str) -> set[str]:
    """The `_`-keys a decoder module writes into or reads from extras, found in its source."""
    text = (SRC / source).read_text()
    return set(re.findall(r'(?:extras|saved)(?:\.get\(|\.setdefault\(|\[)"(_[a-z_]+)"', text))


@pytest.mark.parametrize("client", list(DECODERS))
def test_a_field_named_like_a_decoders_own_key_is_never_read_as_it(client: str) -> None:
    decode, body, source = DECODERS[client]
    keys = own_keys(source)
    assert keys, source  # the search finds the keys it guards
    for key in sorted(keys):
        for value in ODD_VALUES:
            request = decode({**body, key: value})
            for encode in ENCODERS.values():
                out = encode(request)
                assert out.get(key) in (None, value)  # dropped, or kept as the client's own field
                assert "hi" in repr(out)
