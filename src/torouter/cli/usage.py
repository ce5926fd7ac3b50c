"""`torouter usage`: calls, errors, tokens, cost and latency, grouped by key, group, model or account."""

from __future__ import annotations

import json
import sys
import time
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.table import Table

from torouter.cli.common import ConfigOpt, bad_option, out, parse_duration, run_store, settings_or_exit


def _exact_usd(usd: float) -> str:
    """Four decimals, or as many as it takes to print the stored value exactly."""
    text = f"{usd:.4f}"
    return text if float(text) == usd else format(Decimal(repr(usd)), "f")


def parse_by(text: str) -> list[str]:
    from torouter.store.reports import USAGE_DIMENSIONS

    dims = [d.strip().lower() for d in text.split(",")]
    if not all(d in USAGE_DIMENSIONS for d in dims) or len(set(dims)) != len(dims):
        bad_option(
            f"--by {text!r}: use key, group, model or account, or several joined by commas (key,model)"
        )
    return dims


def _measures(r: dict[str, Any]) -> list[str]:
    return [
        str(r["calls"]),
        str(r["errors"]),
        str(r["input_tokens"]),
        str(r["output_tokens"]),
        str(r["cached_tokens"]),
        str(r["cache_write_tokens"]),
        _exact_usd(r["cost_usd"]),
        str(r["estimated"]),
        f"{r['mean_latency_ms']:.1f}",
    ]


def usage(
    since: Annotated[str | None, typer.Option(help="Only calls newer than this, e.g. 24h or 7d.")] = None,
    by: Annotated[
        str, typer.Option("--by", help="One row per key, group, model or account; or several: key,model.")
    ] = "key",
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows and the total as JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Print usage per key (or group, model, account): calls, errors, tokens, cost and mean latency."""
    from torouter.store.reports import usage_by, usage_total

    dims = parse_by(by)
    cutoff = time.time() - parse_duration(since) if since else None

    async def work(session: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        return await usage_by(session, dims, cutoff), await usage_total(session, cutoff)

    rows, total = run_store(settings_or_exit(config), work)
    if as_json:
        sys.stdout.write(
            json.dumps({"by": dims, "since": cutoff, "rows": rows, "total": total}, indent=2) + "\n"
        )
        return
    with_models = "key" in dims and "model" not in dims  # which models each key called
    labels = [*dims, "models"] if with_models else dims
    measures = (
        "calls",
        "errors",
        "input",
        "output",
        "cached",
        "cache write",
        "cost USD",
        "estimated",
        "mean ms",
    )
    table = Table(*labels, *measures)
    for r in rows:
        models = [", ".join(r["models"]) or "-"] if with_models else []
        table.add_row(*(str(r[d] or "-") for d in dims), *models, *_measures(r))
    table.add_section()
    table.add_row("TOTAL", *[""] * (len(labels) - 1), *_measures(total))
    out.print(table)
