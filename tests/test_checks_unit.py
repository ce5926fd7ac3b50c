"""Request field checks and usage reading, held to their plain definitions on random input."""

from __future__ import annotations

import random
from typing import Any

from torouter.hub import Usage
from torouter.protocols import anthropic_messages, gemini, openai_chat, responses
from torouter.protocols.checks import mistyped, wrong_type

VALUES: list[Any] = [None, True, False, 0, 7, -1, 1.5, "s", "", [], [1], {}, {"a": 1}]


def first_mistyped(body: dict[str, Any], table: Any) -> tuple[str, str, Any] | None:
    """The definition: the table's first field, in its own order, whose value is of a wrong type."""
    for name, (types, what) in table.items():
        if wrong_type(body.get(name), types):
            return name, what, body.get(name)
    return None


def test_mistyped_finds_what_walking_the_table_finds() -> None:
    rng = random.Random(3)
    for table in (openai_chat._FIELD_TYPES, anthropic_messages._FIELD_TYPES):
        names = [*table, "model", "messages", "unknown"]
        for _ in range(5000):
            body = {n: rng.choice(VALUES) for n in rng.sample(names, rng.randint(0, 6))}
            assert mistyped(body, table) == first_mistyped(body, table), body


def old_usage(u: Any) -> Usage | None:
    """OpenAI usage as read before: every field through `or` and isinstance."""
    if not isinstance(u, dict):
        return None
    details = u.get("prompt_tokens_details") or {}
    cdetails = u.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=int(u.get("prompt_tokens") or 0),
        output_tokens=int(u.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0,
        cache_write_tokens=int(details.get("cache_write_tokens") or 0) if isinstance(details, dict) else 0,
        reasoning_tokens=int(cdetails.get("reasoning_tokens") or 0) if isinstance(cdetails, dict) else 0,
    )


def test_openai_usage_reads_as_it_did() -> None:
    rng = random.Random(4)
    top = ("prompt_tokens", "completion_tokens", "total_tokens")
    details = (
        ("prompt_tokens_details", ("cached_tokens", "cache_write_tokens", "audio_tokens")),
        ("completion_tokens_details", ("reasoning_tokens", "audio_tokens")),
    )
    for _ in range(5000):
        u = random_usage(rng, top, details)
        assert openai_chat.usage_from(u) == old_usage(u), u


def random_usage(
    rng: random.Random, top: tuple[str, ...], details: tuple[tuple[str, tuple[str, ...]], ...]
) -> Any:
    """A usage object with counts missing, null or set, details objects present, absent or not
    objects at all, or no object in its place."""
    counts: list[Any] = [None, 0, 3, 120_000]
    u: Any = {k: rng.choice(counts) for k in top if rng.random() < 0.8}
    for key, inner in details:
        roll = rng.random()
        if roll < 0.4:
            u[key] = {k: rng.choice(counts) for k in inner if rng.random() < 0.7}
        elif roll < 0.5:
            u[key] = rng.choice((None, [], "x", 0))
    return rng.choice((u, u, u, None, [], "usage"))


def old_anthropic_usage(u: Any) -> Usage | None:
    """Anthropic usage as read before: every part through isinstance and `or`."""
    if not isinstance(u, dict):
        return None
    read = int(u.get("cache_read_input_tokens") or 0)
    write = int(u.get("cache_creation_input_tokens") or 0)
    split = u.get("cache_creation") if isinstance(u.get("cache_creation"), dict) else {}
    details = u.get("output_tokens_details") if isinstance(u.get("output_tokens_details"), dict) else {}
    return Usage(
        input_tokens=int(u.get("input_tokens") or 0) + read + write,
        output_tokens=int(u.get("output_tokens") or 0),
        cached_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=int(split.get("ephemeral_1h_input_tokens") or 0),
        reasoning_tokens=int(details.get("thinking_tokens") or 0),
    )


def test_anthropic_usage_reads_as_it_did() -> None:
    rng = random.Random(5)
    top = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    details = (
        ("cache_creation", ("ephemeral_1h_input_tokens", "ephemeral_5m_input_tokens")),
        ("output_tokens_details", ("thinking_tokens",)),
    )
    for _ in range(5000):
        u = random_usage(rng, top, details)
        assert anthropic_messages.usage_from(u) == old_anthropic_usage(u), u


UNREADABLE_COUNTS = ([3], "five", {"n": 1}, "1e3")


def test_usage_with_a_count_that_is_no_number_reads_as_unreported() -> None:
    for bad in UNREADABLE_COUNTS:
        assert openai_chat.usage_from({"prompt_tokens": bad, "completion_tokens": 2}) is None
        assert (
            openai_chat.usage_from(
                {"prompt_tokens": 1, "completion_tokens_details": {"reasoning_tokens": bad}}
            )
            is None
        )
        assert anthropic_messages.usage_from({"input_tokens": 1, "output_tokens": bad}) is None
        assert (
            anthropic_messages.usage_from(
                {"input_tokens": 1, "cache_creation": {"ephemeral_1h_input_tokens": bad}}
            )
            is None
        )
        assert gemini.read_usage({"promptTokenCount": 1, "candidatesTokenCount": bad}) is None
        assert gemini.usage_from({"promptTokenCount": bad}) == Usage()
        assert gemini.response_usage({"usageMetadata": {"thoughtsTokenCount": bad}}) is None
        assert (
            responses.usage_from({"input_tokens": 1, "output_tokens_details": {"reasoning_tokens": bad}})
            is None
        )
    # What is a number, or stands for none, still reads.
    assert openai_chat.usage_from({"prompt_tokens": "12", "completion_tokens": None}) == Usage(12, 0)
    assert gemini.read_usage({"promptTokenCount": 4, "candidatesTokenCount": 2.0}) == Usage(4, 2)
    assert responses.usage_from({"input_tokens": 3, "output_tokens": 1}) == Usage(3, 1)
