"""The request headers every call reads (key, capture, Anthropic version and betas): read from
one dict when no name repeats, else from the list, with the same answers either way."""

from __future__ import annotations

import random

from torouter.captures import CAPTURE_HEADER, wants_capture
from torouter.request_headers import header_map
from torouter.surfaces.anthropic import anthropic_headers
from torouter.upstreams.platforms import ANTHROPIC_VERSION

POOL = [
    (b"anthropic-version", b"2023-06-01"),
    (b"anthropic-version", b"2024-01-01"),
    (b"anthropic-beta", b"tools-2024"),
    (b"anthropic-beta", b"cache-2024"),
    (CAPTURE_HEADER, b"1"),
    (CAPTURE_HEADER, b" false "),
    (CAPTURE_HEADER, b""),
    (b"host", b"h"),
    (b"accept", b"*/*"),
]


def test_the_map_is_made_once_and_keeps_a_repeated_names_first_value() -> None:
    scope = {"headers": [(b"a", b"1"), (b"b", b"2")]}
    first = header_map(scope)
    assert first == {b"a": b"1", b"b": b"2"} and header_map(scope) is first
    assert header_map({"headers": [(b"a", b"1"), (b"b", b"3"), (b"a", b"2")]}) == {b"a": b"1", b"b": b"3"}
    assert header_map({"headers": []}) == {}


def test_readers_answer_as_walking_the_headers_does() -> None:
    rng = random.Random(12)
    for _ in range(5000):
        headers = rng.sample(POOL, rng.randint(0, 6))
        captured = next(
            (v.strip() not in (b"", b"0", b"false") for n, v in headers if n == CAPTURE_HEADER), False
        )
        assert wants_capture({"headers": headers}) == captured
        versions = [v.decode() for n, v in headers if n == b"anthropic-version"]
        betas = [v.decode() for n, v in headers if n == b"anthropic-beta"]
        want = {
            "content-type": "application/json",
            "anthropic-version": (versions or [ANTHROPIC_VERSION])[-1],
        }
        if betas:
            want["anthropic-beta"] = ",".join(betas)
        assert anthropic_headers({"headers": headers}) == want, headers
