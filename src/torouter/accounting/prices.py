"""Model prices in USD per million tokens, and what one call costs at them.

The default table ships as `prices.json` beside this module: the vendors' list prices on its
`as_of` date. `PriceTable.lookup` resolves the model string real traffic sends (a vendor prefix, a
dated snapshot, a Bedrock or Vertex id, other casing) to one of its entries. It strips only
snapshot and version markers, never words that name another model, so `gpt-4o-mini` can never fall
back to `gpt-4o`'s price: an id it cannot resolve has no price.

`cost_usd` takes usage in the hub's normal form: `input_tokens` includes cache reads and writes,
`cache_write_tokens` includes the 1-hour writes, `output_tokens` includes reasoning.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

from torouter.hub import Usage

__all__ = [
    "LongContext",
    "Price",
    "PriceTable",
    "cost_usd",
    "load_default_prices",
    "price_from_dict",
    "price_to_dict",
]

_RATES = ("input", "output", "cache_read", "cache_write", "cache_write_1h")


@dataclass(frozen=True, slots=True)
class LongContext:
    """The rates a whole call is billed at once its input exceeds `threshold` tokens."""

    threshold: int
    input: float
    output: float
    cache_read: float
    cache_write: float
    cache_write_1h: float


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens. `cache_write` is the 5-minute write; vendors without a write price use input."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    cache_write_1h: float
    long_context: LongContext | None = None


# ---------------------------------------------------------------- dicts (the JSON file, DB rows)


def _rate(d: Mapping[str, Any], key: str, default: float | None = None) -> float:
    value = d.get(key, default)
    if value is None:
        raise ValueError(f"price has no {key!r}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"price {key!r} must be a non-negative number, not {value!r}")
    return float(value)


def _rates(d: Mapping[str, Any]) -> dict[str, float]:
    """The five rates; a missing cache rate defaults to input (and the 1-hour write to the 5-minute one)."""
    base = _rate(d, "input")
    write = _rate(d, "cache_write", base)
    return {
        "input": base,
        "output": _rate(d, "output"),
        "cache_read": _rate(d, "cache_read", base),
        "cache_write": write,
        "cache_write_1h": _rate(d, "cache_write_1h", write),
    }


def price_from_dict(d: Mapping[str, Any]) -> Price:
    """A Price from `price_to_dict`'s shape (the JSON file's entries, a DB row). Raises ValueError."""
    long_context = None
    if (lc := d.get("long_context")) is not None:
        threshold = lc.get("threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold <= 0:
            raise ValueError(f"long_context threshold must be a positive integer, not {threshold!r}")
        long_context = LongContext(threshold=threshold, **_rates(lc))
    return Price(**_rates(d), long_context=long_context)


def price_to_dict(p: Price) -> dict[str, Any]:
    d: dict[str, Any] = {key: getattr(p, key) for key in _RATES}
    lc = p.long_context
    d["long_context"] = (
        None if lc is None else {"threshold": lc.threshold, **{k: getattr(lc, k) for k in _RATES}}
    )
    return d


def load_default_prices() -> tuple[dict[str, Price], str]:
    """The shipped table: prices by model id, and the date they were checked (YYYY-MM-DD)."""
    doc = orjson.loads(resources.files("torouter.accounting").joinpath("prices.json").read_bytes())
    return {model: price_from_dict(d) for model, d in doc["models"].items()}, doc["as_of"]


# ---------------------------------------------------------------- lookup

# Bedrock: "anthropic.claude-…" with an optional region ("us.", "eu.", "global.").
_BEDROCK_PREFIX = re.compile(r"^(?:[a-z-]+\.)?anthropic\.")
# Snapshot and version markers, tried one at a time from the end of the id, each result looked up.
_SUFFIXES = (
    (re.compile(r"\[[^\]]*\]$"), ""),  # a context-mode marker: claude-opus-4-6[1m]
    (re.compile(r"@[^@]*$"), ""),  # Vertex: claude-sonnet-4-5@20250929
    (re.compile(r"-v\d+:\d+$"), ""),  # Bedrock: …-20250929-v1:0
    (re.compile(r"-\d{4}-\d{2}-\d{2}$"), ""),  # OpenAI: gpt-4o-2024-08-06
    (re.compile(r"-\d{8}$"), ""),  # Anthropic: claude-3-5-haiku-20241022
    (re.compile(r"-latest$"), ""),
    (re.compile(r"(-(?:preview|exp))-(?:\d{2}-\d{2}|\d{2}-\d{4}|\d{4})$"), r"\1"),  # gemini-…-preview-05-20
    (re.compile(r"-(?:preview|exp)$"), ""),
    (re.compile(r"-\d{3}$"), ""),  # Gemini: gemini-2.5-flash-001
)
_CACHE_LIMIT = 4096  # model strings come from clients: keep a flood of invented ones from growing memory


def _candidates(model: str) -> Iterator[str]:
    """Lower-case forms of `model` to look up, from the most specific to the base id."""
    name = model.strip().lower()
    yield name
    name = _BEDROCK_PREFIX.sub("", name.rsplit("/", 1)[-1])  # openai/…, models/…, publishers/google/models/…
    if name.startswith("claude-"):
        name = name.replace(".", "-")  # OpenRouter spells claude-sonnet-4-5 as claude-sonnet-4.5
    yield name
    while True:
        for pattern, repl in _SUFFIXES:
            stripped = pattern.sub(repl, name, count=1)
            if stripped != name and stripped:
                break
        else:
            return
        name = stripped
        yield name


class PriceTable:
    """Prices by model id, looked up by whatever id a client or upstream sends."""

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self._prices = dict(prices)
        self._lower: dict[str, Price] = {}
        for model, price in self._prices.items():
            self._lower.setdefault(model.lower(), price)
        self._cache: dict[str, Price | None] = {}

    def lookup(self, model: str) -> Price | None:
        """The price for `model`: exact id, then any casing, then without prefix and snapshot suffixes."""
        try:
            return self._cache[model]
        except KeyError:
            pass
        price = self._resolve(model)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[model] = price
        return price

    def _resolve(self, model: str) -> Price | None:
        if (price := self._prices.get(model)) is not None:
            return price
        for candidate in _candidates(model):
            if (price := self._lower.get(candidate)) is not None:
                return price
        return None


# ---------------------------------------------------------------- cost


def cost_usd(usage: Usage, price: Price, multiplier: float = 1.0) -> float:
    """What a call cost in USD. Past the long-context threshold every token is billed at those rates."""
    rates: Price | LongContext = price
    if (lc := price.long_context) is not None and usage.input_tokens > lc.threshold:
        rates = lc
    if not (usage.cached_tokens or usage.cache_write_tokens or usage.cache_write_1h_tokens):
        # Most calls: no cache in play, input and output alone (what every call's estimate is).
        billed = max(usage.input_tokens, 0) * rates.input + max(usage.output_tokens, 0) * rates.output
        return billed / 1_000_000 * multiplier
    cached = max(usage.cached_tokens, 0)
    written_1h = max(usage.cache_write_1h_tokens, 0)
    written = max(usage.cache_write_tokens, written_1h)  # the total includes the 1-hour writes
    fresh = max(usage.input_tokens - cached - written, 0)
    written_5m = max(written - written_1h, 0)
    per_million = (
        fresh * rates.input
        + cached * rates.cache_read
        + written_5m * rates.cache_write
        + written_1h * rates.cache_write_1h
        + max(usage.output_tokens, 0) * rates.output
    )
    return per_million / 1_000_000 * multiplier
