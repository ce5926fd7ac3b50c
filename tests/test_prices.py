"""The shipped price table, resolving the model ids real traffic sends, and the cost of a call."""

from __future__ import annotations

import re
from importlib import resources

import orjson
import pytest

from torouter.accounting.prices import (
    LongContext,
    Price,
    PriceTable,
    cost_usd,
    load_default_prices,
    price_from_dict,
    price_to_dict,
)
from torouter.hub import Usage


@pytest.fixture(scope="module")
def table() -> PriceTable:
    prices, _ = load_default_prices()
    return PriceTable(prices)


def _price(input: float, output: float, read: float | None = None) -> Price:
    read = input if read is None else read
    return Price(input=input, output=output, cache_read=read, cache_write=input, cache_write_1h=input)


# ---------------------------------------------------------------- the shipped table


def test_shipped_table_is_dated_sourced_and_packaged() -> None:
    doc = orjson.loads(resources.files("torouter.accounting").joinpath("prices.json").read_bytes())
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", doc["as_of"])
    assert doc["unit"] == "USD per million tokens"
    assert set(doc["sources"]) == {"openai", "anthropic", "gemini"}
    assert all(url.startswith("https://") for url in doc["sources"].values())
    prices, as_of = load_default_prices()
    assert as_of == doc["as_of"]
    assert set(prices) == set(doc["models"])


def test_every_shipped_price_is_well_formed() -> None:
    prices, _ = load_default_prices()
    assert len(prices) > 50
    for model, p in prices.items():
        tiers: list[Price | LongContext] = [p] if p.long_context is None else [p, p.long_context]
        for t in tiers:
            rates = (t.input, t.output, t.cache_read, t.cache_write, t.cache_write_1h)
            assert all(r >= 0 for r in rates), model
            assert t.cache_read <= t.input, model
            # A write never costs less than plain input, and a 1-hour write not less than a 5-minute one.
            assert t.input <= t.cache_write <= t.cache_write_1h, model
        if (lc := p.long_context) is not None:
            assert lc.threshold > 0, model
            assert lc.input >= p.input and lc.output >= p.output, model


@pytest.mark.parametrize(
    "model",
    [
        # OpenAI
        "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5.1", "gpt-5.2", "gpt-5.4", "gpt-5.4-mini",
        "gpt-5.4-nano", "gpt-5.5", "gpt-5.6-sol", "gpt-5.6-terra", "gpt-5.6-luna", "gpt-4.1",
        "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "o3", "o3-mini", "o4-mini",
        "text-embedding-3-small", "text-embedding-3-large",
        # Anthropic
        "claude-opus-4-7", "claude-opus-4-6", "claude-opus-4-5", "claude-opus-4-1", "claude-sonnet-4-6",
        "claude-sonnet-4-5", "claude-sonnet-4", "claude-haiku-4-5", "claude-3-5-haiku", "claude-3-7-sonnet",
        # Gemini
        "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.0-flash",
        "gemini-embedding-001", "gemini-3-pro-preview", "gemini-3-flash-preview", "gemini-3.1-pro-preview",
    ],
)  # fmt: skip
def test_the_models_people_call_are_priced(table: PriceTable, model: str) -> None:
    assert table.lookup(model) is not None


@pytest.mark.parametrize(
    "model",
    [
        "claude-opus-4-7", "claude-opus-4-8", "claude-opus-5", "claude-sonnet-5", "claude-fable-5",
        "claude-mythos-5", "claude-sonnet-4-5-20250929", "claude-sonnet-4-20250514",
        "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805", "claude-opus-4-5-20251101",
        "claude-3-7-sonnet-20250219", "gpt-5-nano-2025-08-07", "gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06",
        "gpt-5.4", "gpt-5.5-2026-04-23", "gpt-5.1-codex-max", "o3-mini", "gemini-2.5-flash",
        "gemini-2.0-flash", "gemini-3-flash-preview",
    ],
)  # fmt: skip
def test_model_ids_in_the_recorded_traffic_are_priced(table: PriceTable, model: str) -> None:
    assert table.lookup(model) is not None


def test_published_figures_for_a_few_models(table: PriceTable) -> None:
    opus = table.lookup("claude-opus-4-7")
    assert opus == Price(input=5, output=25, cache_read=0.5, cache_write=6.25, cache_write_1h=10)
    sonnet = table.lookup("claude-sonnet-4-5")
    assert sonnet is not None and sonnet.long_context == LongContext(
        threshold=200_000, input=6, output=22.5, cache_read=0.6, cache_write=7.5, cache_write_1h=12
    )
    # OpenAI before GPT-5.6 and Gemini have no write price: a write costs plain input.
    assert table.lookup("gpt-5") == _price(1.25, 10, 0.125)
    gemini = table.lookup("gemini-2.5-pro")
    assert gemini is not None and (gemini.input, gemini.output, gemini.cache_read) == (1.25, 10, 0.125)
    assert gemini.long_context is not None and gemini.long_context.threshold == 200_000
    assert (gemini.long_context.input, gemini.long_context.output) == (2.5, 15)


# ---------------------------------------------------------------- lookup


@pytest.mark.parametrize(
    ("sent", "model"),
    [
        ("claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("GPT-4o", "gpt-4o"),
        ("Claude-Sonnet-4-5", "claude-sonnet-4-5"),
        ("openai/gpt-4o", "gpt-4o"),
        ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"),
        ("google/gemini-2.5-pro", "gemini-2.5-pro"),
        ("models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("gemini-2.5-flash-001", "gemini-2.5-flash"),
        ("gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),
        ("gemini-2.5-pro-exp-03-25", "gemini-2.5-pro"),
        ("gemini-2.5-flash-lite-preview-09-2025", "gemini-2.5-flash-lite"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("publishers/google/models/gemini-2.5-pro@001", "gemini-2.5-pro"),
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("us.anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1"),
        ("claude-opus-4-6[1m]", "claude-opus-4-6"),
    ],
)
def test_lookup_resolves_what_real_traffic_sends(table: PriceTable, sent: str, model: str) -> None:
    assert table.lookup(sent) is table.lookup(model) is not None


def test_a_dated_snapshot_with_its_own_price_keeps_it(table: PriceTable) -> None:
    old = table.lookup("gpt-4o-2024-05-13")
    assert old is not None and (old.input, old.output) == (5, 15)
    assert table.lookup("gpt-4o") != old


def test_lookup_never_borrows_a_sibling_models_price() -> None:
    base = {
        "gpt-4o": _price(2.5, 10),
        "gpt-5": _price(1.25, 10),
        "o3": _price(2, 8),
        "gpt-5.6": _price(4, 20),
    }
    table = PriceTable(base)
    for other in [
        "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o-audio-preview", "gpt-4o-realtime-preview-2024-12-17",
        "gpt-5-mini", "gpt-5-nano-2025-08-07", "gpt-5.1", "gpt-5-chat-latest", "o3-mini", "o3-pro-2025-06-10",
        "gpt-5.6-terra", "gpt-4o-search-preview", "openai/gpt-4o-mini",
    ]:  # fmt: skip
        assert table.lookup(other) is None, other
    assert table.lookup("gpt-4o-2024-08-06") is base["gpt-4o"]


def test_sibling_models_get_their_own_prices(table: PriceTable) -> None:
    pairs = [
        ("gpt-4o-mini", "gpt-4o"),
        ("gpt-5-mini", "gpt-5"),
        ("o3-mini", "o3"),
        ("gpt-5.4-mini", "gpt-5.4"),
    ]
    for small, big in pairs:
        assert table.lookup(small) != table.lookup(big), small
    mini = table.lookup("gpt-4o-mini")
    assert mini is not None and mini.input == 0.15


def test_unknown_models_have_no_price(table: PriceTable) -> None:
    for model in ["", "gpt-9000", "gemini-2.5-flash-image-preview", "my-finetune", "claude-2.1"]:
        assert table.lookup(model) is None, model


def test_lookup_resolves_each_model_string_once() -> None:
    table = PriceTable({"gpt-4o": _price(2.5, 10)})
    calls: list[str] = []
    resolve = table._resolve

    def counting(model: str) -> Price | None:
        calls.append(model)
        return resolve(model)

    table._resolve = counting  # type: ignore[method-assign]
    for _ in range(3):
        assert table.lookup("openai/gpt-4o-2024-08-06") is not None
        assert table.lookup("nope") is None
    assert calls == ["openai/gpt-4o-2024-08-06", "nope"]


# ---------------------------------------------------------------- dicts


def test_a_price_survives_a_round_trip_through_a_dict(table: PriceTable) -> None:
    for model in ["claude-sonnet-4-5", "gpt-4o", "gemini-2.5-pro", "claude-haiku-5-5"]:
        p = table.lookup(model)
        assert p is not None
        d = price_to_dict(p)
        assert set(d) == {"input", "output", "cache_read", "cache_write", "cache_write_1h", "long_context"}
        assert price_from_dict(orjson.loads(orjson.dumps(d))) == p


def test_missing_cache_rates_default_to_input() -> None:
    p = price_from_dict({"input": 2, "output": 8})
    assert p == Price(input=2.0, output=8.0, cache_read=2.0, cache_write=2.0, cache_write_1h=2.0)
    assert price_to_dict(p)["long_context"] is None
    p = price_from_dict({"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75})
    assert p.cache_write_1h == 3.75


@pytest.mark.parametrize(
    "d",
    [
        {"output": 1},
        {"input": -1, "output": 1},
        {"input": "1", "output": 1},
        {"input": True, "output": 1},
        {"input": float("nan"), "output": 1},
        {"input": 1, "output": 1, "long_context": {"threshold": 0, "input": 2, "output": 2}},
        {"input": 1, "output": 1, "long_context": {"input": 2, "output": 2}},
    ],
)
def test_a_malformed_price_is_refused(d: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        price_from_dict(d)


# ---------------------------------------------------------------- cost


SONNET = Price(
    input=3,
    output=15,
    cache_read=0.3,
    cache_write=3.75,
    cache_write_1h=6,
    long_context=LongContext(
        threshold=200_000, input=6, output=22.5, cache_read=0.6, cache_write=7.5, cache_write_1h=12
    ),
)


def test_anthropic_call_with_cache_read_and_both_write_ttls() -> None:
    # 10,000 in: 6,000 read from cache, 3,000 written (1,000 of them for an hour), 1,000 fresh.
    usage = Usage(
        input_tokens=10_000,
        cached_tokens=6_000,
        cache_write_tokens=3_000,
        cache_write_1h_tokens=1_000,
        output_tokens=500,
    )
    # fresh 1,000 x 3 = 3,000; read 6,000 x 0.3 = 1,800; 5m 2,000 x 3.75 = 7,500; 1h 1,000 x 6 = 6,000;
    # out 500 x 15 = 7,500. Sum 25,800 per million = $0.0258.
    assert cost_usd(usage, SONNET) == pytest.approx(0.0258)


def test_openai_call_with_cached_tokens_inside_prompt_tokens(table: PriceTable) -> None:
    price = table.lookup("gpt-4o")
    assert price is not None
    usage = Usage(input_tokens=2_000, cached_tokens=1_500, output_tokens=300)
    # fresh 500 x 2.5 = 1,250; cached 1,500 x 1.25 = 1,875; out 300 x 10 = 3,000 -> $0.006125
    assert cost_usd(usage, price) == pytest.approx(0.006125)


def test_gemini_reasoning_is_billed_once_as_output(table: PriceTable) -> None:
    price = table.lookup("gemini-2.5-flash")
    assert price is not None
    usage = Usage(input_tokens=100_000, cached_tokens=40_000, output_tokens=5_000, reasoning_tokens=4_000)
    # fresh 60,000 x 0.3 = 18,000; cached 40,000 x 0.03 = 1,200; out 5,000 x 2.5 = 12,500 -> $0.0317
    assert cost_usd(usage, price) == pytest.approx(0.0317)


def test_long_context_rates_apply_to_the_whole_call_above_the_threshold() -> None:
    usage = Usage(
        input_tokens=300_000,
        cached_tokens=100_000,
        cache_write_tokens=50_000,
        cache_write_1h_tokens=10_000,
        output_tokens=2_000,
    )
    # fresh 150,000 x 6 = 900,000; read 100,000 x 0.6 = 60,000; 5m 40,000 x 7.5 = 300,000;
    # 1h 10,000 x 12 = 120,000; out 2,000 x 22.5 = 45,000. Sum 1,425,000 -> $1.425
    assert cost_usd(usage, SONNET) == pytest.approx(1.425)


def test_at_the_threshold_the_base_rates_still_apply(table: PriceTable) -> None:
    price = table.lookup("gemini-2.5-pro")
    assert price is not None
    # 200,000 x 1.25 + 1,000 x 10 = 260,000 -> $0.26; one token more and all of it is long-context:
    # 200,001 x 2.5 + 1,000 x 15 = 515,002.5 -> $0.5150025
    assert cost_usd(Usage(input_tokens=200_000, output_tokens=1_000), price) == pytest.approx(0.26)
    assert cost_usd(Usage(input_tokens=200_001, output_tokens=1_000), price) == pytest.approx(0.5150025)


def test_a_gemini_pro_long_prompt_with_cache_hits(table: PriceTable) -> None:
    price = table.lookup("gemini-2.5-pro")
    assert price is not None
    usage = Usage(input_tokens=250_000, cached_tokens=50_000, output_tokens=10_000)
    # fresh 200,000 x 2.5 = 500,000; cached 50,000 x 0.25 = 12,500; out 10,000 x 15 = 150,000 -> $0.6625
    assert cost_usd(usage, price) == pytest.approx(0.6625)


def test_the_multiplier_scales_the_whole_cost() -> None:
    usage = Usage(
        input_tokens=10_000,
        cached_tokens=6_000,
        cache_write_tokens=3_000,
        cache_write_1h_tokens=1_000,
        output_tokens=500,
    )
    assert cost_usd(usage, SONNET, multiplier=1.5) == pytest.approx(0.0387)  # 0.0258 x 1.5
    assert cost_usd(usage, SONNET, multiplier=0) == 0


def test_inconsistent_counts_never_cost_less_than_nothing() -> None:
    # More cached than input: the fresh bucket clamps at 0 and the cached tokens still cost.
    usage = Usage(input_tokens=100, cached_tokens=1_000, output_tokens=-5)
    assert cost_usd(usage, SONNET) == pytest.approx(1_000 * 0.3 / 1e6)
    # 1-hour writes reported without the total: all of them at the 1-hour rate.
    usage = Usage(input_tokens=1_000, cache_write_1h_tokens=1_000)
    assert cost_usd(usage, SONNET) == pytest.approx(1_000 * 6 / 1e6)
    assert cost_usd(Usage(), SONNET) == 0
