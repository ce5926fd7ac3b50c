"""The command line for limits, budgets, prices and the usage report, against a real store."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import gateway_config
from tests.gateway_harness import GatewayServer, run_cli

MEASURES = ("calls", "errors", "input", "output", "cached", "cache write", "cost USD", "estimated", "mean ms")


@pytest.fixture
def gw(emulator, tmp_path: Path) -> GatewayServer:
    """A gateway's config and store; the CLI works on them without the server running."""
    return GatewayServer(tmp_path, gateway_config(emulator, f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"))


def db_path(gw: GatewayServer) -> Path:
    return gw.workdir / "store.db"


def key_row(gw: GatewayServer, name: str) -> dict[str, Any]:
    with sqlite3.connect(db_path(gw)) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM api_keys WHERE name = ?", (name,)).fetchone()
        group = db.execute("SELECT name FROM groups WHERE id = ?", (row["group_id"],)).fetchone()[0]
    return dict(row) | {"group": group, "allowed_models": json.loads(row["allowed_models"])}


def shown(gw: GatewayServer, ref: str) -> dict[str, str]:
    """`keys show` as {field: value}."""
    fields = {}
    for line in gw.cli("keys", "show", ref).stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 2:
            fields[cells[0]] = cells[1]
    return fields


def table_rows(stdout: str) -> list[list[str]]:
    """A Rich table's header and rows as lists of cells."""
    lines = [line.replace("┃", "│") for line in stdout.splitlines()]
    return [[c.strip() for c in line.split("│")[1:-1]] for line in lines if "│" in line]


def insert_usage(gw: GatewayServer, rows: list[dict[str, Any]]) -> None:
    base = {
        "created_at": time.time(),
        "key_id": None,
        "key_name": "",
        "group_name": "openai",
        "account_name": "emu-openai",
        "surface": "openai",
        "platform": "openai",
        "endpoint": "chat",
        "model": "gpt-4o-mini",
        "upstream_model": "gpt-4o-mini",
        "stream": 0,
        "status_code": 200,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": 0.0,
        "estimated": 0,
        "latency_ms": 100.0,
        "attempts": 1,
    }
    with sqlite3.connect(db_path(gw)) as db:
        for i, row in enumerate(rows):
            values = base | {"request_id": f"req-{i}"} | row
            names = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            db.execute(f"INSERT INTO usage_records ({names}) VALUES ({marks})", list(values.values()))


def test_key_created_with_every_limit_shows_them_and_stores_them(gw: GatewayServer) -> None:
    before = time.time()
    gw.create_key(
        "openai",
        "--name", "capped",
        "--budget", "10",
        "--budget-period", "daily",
        "--rpm", "60",
        "--tpm", "20000",
        "--max-concurrency", "3",
        "--expires-in", "30d",
        "--models", "gpt-4o*, o3",
    )  # fmt: skip
    row = key_row(gw, "capped")
    assert (row["budget_usd"], row["budget_period"]) == (10.0, "daily")
    assert (row["rpm"], row["tpm"], row["max_concurrency"]) == (60, 20000, 3)
    assert row["allowed_models"] == ["gpt-4o*", "o3"]
    assert before + 30 * 86400 <= row["expires_at"] <= time.time() + 30 * 86400
    fields = shown(gw, "capped")
    assert fields["rpm"] == "60" and fields["tpm"] == "20000" and fields["max concurrency"] == "3"
    assert fields["budget"] == "$10.00 daily"
    assert fields["spent"].startswith("$0.00 since ") and fields["spent"].endswith("00:00 UTC")
    assert fields["budget resets"].endswith("00:00 UTC")
    assert fields["models"] == "gpt-4o*, o3"

    gw.create_key("openai", "--name", "plain")
    plain = shown(gw, "plain")
    assert plain["rpm"] == plain["tpm"] == plain["max concurrency"] == "none"
    assert plain["budget"] == "none"
    gw.create_key("openai", "--name", "lifetime", "--budget", "2.5")
    assert key_row(gw, "lifetime")["budget_period"] is None
    assert shown(gw, "lifetime")["budget resets"] == "never"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["keys", "create", "--group", "openai", "--budget", "-5"],
            "--budget must be an amount of USD above 0",
        ),
        (
            ["keys", "create", "--group", "openai", "--budget", "0"],
            "--budget must be an amount of USD above 0",
        ),
        (
            ["keys", "create", "--group", "openai", "--budget", "5", "--budget-period", "yearly"],
            "daily, weekly",
        ),
        (
            ["keys", "create", "--group", "openai", "--budget-period", "daily"],
            "--budget-period needs --budget",
        ),
        (["keys", "create", "--group", "openai", "--rpm", "-1"], "--rpm must be 0 (no limit) or more"),
        (["keys", "create", "--group", "openai", "--expires-in", "soon"], "is not a duration"),
        (["keys", "update", "1", "--no-budget", "--budget", "3"], "--no-budget cannot go with --budget"),
        (["keys", "update", "1", "--no-expiry", "--expires-in", "1d"], "--no-expiry cannot go with"),
        (["keys", "update", "1"], "nothing to change"),
        (["prices", "set", "gpt-4o", "--input", "-1"], "--input must be a price of 0 or more"),
        (["usage", "--by", "colour"], "use key, group, model or account"),
    ],
)
def test_invalid_options_exit_2_with_one_clear_line(gw: GatewayServer, args: list[str], says: str) -> None:
    proc = gw.cli(*args, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not db_path(gw).exists()  # refused before the store was opened


def test_update_changes_only_the_options_given_and_moves_updated_at(gw: GatewayServer) -> None:
    gw.create_key(
        "openai",
        "--name", "k",
        "--budget", "10",
        "--budget-period", "weekly",
        "--rpm", "60",
        "--tpm", "1000",
        "--max-concurrency", "2",
        "--expires-in", "7d",
        "--models", "gpt-4o-mini",
    )  # fmt: skip
    first = key_row(gw, "k")

    out = gw.cli("keys", "update", "k", "--rpm", "5", "--budget", "20").stdout
    assert "Updated key" in out and "rpm" in out and "budget" in out
    second = key_row(gw, "k")
    assert second["updated_at"] > first["updated_at"]
    changed = {c for c in first if first[c] != second[c]}
    assert changed == {"rpm", "budget_usd", "updated_at"}
    assert (second["rpm"], second["budget_usd"], second["budget_period"]) == (5, 20.0, "weekly")

    gw.cli("keys", "update", str(first["id"]), "--budget-period", "none", "--models", "", "--no-expiry")
    third = key_row(gw, "k")
    assert third["updated_at"] > second["updated_at"]
    assert (third["budget_usd"], third["budget_period"]) == (20.0, None)
    assert third["allowed_models"] == [] and third["expires_at"] is None
    assert (third["tpm"], third["max_concurrency"], third["group"]) == (1000, 2, "openai")

    gw.cli("keys", "update", "k", "--no-budget", "--group", "anthropic", "--name", "renamed")
    fourth = key_row(gw, "renamed")
    assert (fourth["budget_usd"], fourth["budget_period"], fourth["group"]) == (None, None, "anthropic")
    assert fourth["id"] == first["id"] and fourth["rpm"] == 5
    assert shown(gw, "renamed")["group"] == "anthropic"

    no_budget = gw.cli("keys", "update", "renamed", "--budget-period", "daily", check=False)
    assert no_budget.returncode == 1 and "has no budget" in no_budget.stderr
    unknown = gw.cli("keys", "update", "renamed", "--group", "nope", check=False)
    assert unknown.returncode == 1 and "known groups:" in unknown.stderr
    assert key_row(gw, "renamed")["updated_at"] == fourth["updated_at"]


def test_show_and_list_report_the_spend_in_the_current_period(gw: GatewayServer) -> None:
    from torouter.accounting.limits import period_start

    gw.create_key("openai", "--name", "daily", "--budget", "10", "--budget-period", "daily")
    gw.create_key("openai", "--name", "forever", "--budget", "1")
    gw.create_key("openai", "--name", "free")
    daily, forever = key_row(gw, "daily")["id"], key_row(gw, "forever")["id"]
    today = period_start("daily", time.time())
    insert_usage(
        gw,
        [
            {"key_id": daily, "cost_usd": 1.25, "created_at": today + 1},
            {"key_id": daily, "cost_usd": 1.95, "created_at": today + 2},
            {"key_id": daily, "cost_usd": 5.0, "created_at": today - 1},  # yesterday: not in this period
            {"key_id": forever, "cost_usd": 0.0034, "created_at": 1000.0},
        ],
    )
    fields = shown(gw, "daily")
    assert fields["spent"].startswith("$3.20 since ")
    assert shown(gw, "forever")["spent"] == "$0.0034 (all time)"
    listed = table_rows(gw.cli("keys", "list").stdout)
    assert listed[0][-1] == "budget"
    budgets = {r[2]: r[-1] for r in listed[1:]}
    assert budgets == {"daily": "$3.20/$10.00 daily", "forever": "$0.0034/$1.00 total", "free": "-"}


def test_prices_list_shows_the_shipped_models(gw: GatewayServer) -> None:
    from torouter.accounting.prices import load_default_prices

    defaults, _ = load_default_prices()
    rows = {r[0]: r for r in table_rows(gw.cli("prices", "list").stdout)[1:]}
    assert set(defaults) <= set(rows)
    model = next(iter(defaults))
    assert rows[model][1] == f"{defaults[model].input:g}" and rows[model][-1] == "default"
    filtered = table_rows(gw.cli("prices", "list", "--model", "HAIKU").stdout)
    assert filtered[1:] and all("haiku" in r[0] for r in filtered[1:])
    none = gw.cli("prices", "list", "--model", "no-such-model-zz", check=False)
    assert none.returncode == 1 and "no priced model" in none.stderr


def test_prices_set_makes_a_custom_price_and_reset_restores_the_shipped_one(gw: GatewayServer) -> None:
    from torouter.accounting.prices import load_default_prices

    defaults, _ = load_default_prices()
    model = "claude-haiku-4-5" if "claude-haiku-4-5" in defaults else next(iter(defaults))
    shipped = defaults[model]
    gw.cli("prices", "set", model, "--output", "7.25", "--cache-write-1h", "3")
    row = {r[0]: r for r in table_rows(gw.cli("prices", "list", "--model", model).stdout)}[model]
    assert row[1:6] == [
        f"{shipped.input:g}",
        "7.25",
        f"{shipped.cache_read:g}",
        f"{shipped.cache_write:g}",
        "3",
    ]
    assert row[-1] == "custom"

    gw.cli("prices", "reset", model)
    row = {r[0]: r for r in table_rows(gw.cli("prices", "list", "--model", model).stdout)}[model]
    assert (
        row[2] == f"{shipped.output:g}" and row[5] == f"{shipped.cache_write_1h:g}" and row[-1] == "default"
    )

    partial = gw.cli("prices", "set", "house-model-1", "--input", "1", check=False)
    assert partial.returncode == 1 and "give at least --input and --output" in partial.stderr
    gw.cli("prices", "set", "house-model-1", "--input", "0.5", "--output", "2")
    row = {r[0]: r for r in table_rows(gw.cli("prices", "list", "--model", "house-model").stdout)}[
        "house-model-1"
    ]
    assert row[1:6] == ["0.5", "2", "0.5", "0.5", "0.5"] and row[-1] == "custom"
    assert "ships none" in gw.cli("prices", "reset", "house-model-1").stdout
    assert gw.cli("prices", "reset", "house-model-1", check=False).returncode == 1


USAGE_ROWS: list[dict[str, Any]] = [
    # (key, group, account, model) spread so that each dimension has several rows per value.
    {"key_name": "a", "group_name": "openai", "account_name": "emu-openai", "model": "gpt-4o-mini",
     "input_tokens": 1200, "output_tokens": 340, "cached_tokens": 1000, "cache_write_tokens": 0,
     "cost_usd": 0.000123, "latency_ms": 812.5},
    {"key_name": "a", "group_name": "openai", "account_name": "emu-openai", "model": "gpt-4o",
     "input_tokens": 7, "output_tokens": 1, "cost_usd": 0.1, "status_code": 429, "latency_ms": 3.0},
    {"key_name": "a", "group_name": "openai", "account_name": "", "model": "", "status_code": 400,
     "latency_ms": 1.25},
    {"key_name": "b", "group_name": "anthropic", "account_name": "emu-anthropic", "model": "claude-haiku-4-5",
     "input_tokens": 52000, "output_tokens": 913, "cached_tokens": 40000, "cache_write_tokens": 12000,
     "cost_usd": 0.2, "estimated": 1, "latency_ms": 1500.0},
    {"key_name": "b", "group_name": "anthropic", "account_name": "emu-anthropic", "model": "claude-haiku-4-5",
     "input_tokens": 3, "output_tokens": 2, "cost_usd": 0.7, "status_code": 499, "latency_ms": 20.0},
    {"key_name": "b", "group_name": "openai", "account_name": "emu-openai", "model": "gpt-4o-mini",
     "input_tokens": 10, "output_tokens": 20, "cost_usd": 1.7e-06, "estimated": 1, "latency_ms": 99.9},
]  # fmt: skip


def sql_usage(gw: GatewayServer, column: str) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    """The report's numbers straight from SQLite: per value of `column`, and for every row."""
    measures = """COUNT(*), SUM(status_code >= 400), SUM(input_tokens), SUM(output_tokens),
        SUM(cached_tokens), SUM(cache_write_tokens), SUM(cost_usd), SUM(estimated), AVG(latency_ms)"""
    names = ("calls", "errors", "input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens")
    names += ("cost_usd", "estimated", "mean_latency_ms")
    with sqlite3.connect(db_path(gw)) as db:
        groups = db.execute(f"SELECT {column}, {measures} FROM usage_records GROUP BY {column}").fetchall()
        total = db.execute(f"SELECT {measures} FROM usage_records").fetchone()
    return {g[0]: dict(zip(names, g[1:], strict=True)) for g in groups}, dict(zip(names, total, strict=True))


def seed_usage(gw: GatewayServer) -> dict[str, int]:
    gw.create_key("openai", "--name", "a")
    gw.create_key("anthropic", "--name", "b")
    ids = {name: key_row(gw, name)["id"] for name in ("a", "b")}
    start = time.time() - 3600
    insert_usage(
        gw, [r | {"key_id": ids[r["key_name"]], "created_at": start + i} for i, r in enumerate(USAGE_ROWS)]
    )
    return ids


@pytest.mark.parametrize(
    ("by", "column"),
    [("key", "key_id"), ("group", "group_name"), ("model", "model"), ("account", "account_name")],
)
def test_usage_by_each_dimension_prints_the_stored_sums_exactly(
    gw: GatewayServer, by: str, column: str
) -> None:
    ids = seed_usage(gw)
    expected, expected_total = sql_usage(gw, column)

    doc = json.loads(gw.cli("usage", "--by", by, "--json").stdout)
    assert doc["by"] == [by]
    got = {(r["key_id"] if by == "key" else r[by]): r for r in doc["rows"]}
    assert set(got) == set(expected)
    for value, sums in expected.items():
        assert {k: got[value][k] for k in sums} == sums, value
    assert doc["total"] == expected_total
    assert sum(r["calls"] for r in doc["rows"]) == expected_total["calls"] == len(USAGE_ROWS)

    rows = table_rows(gw.cli("usage", "--by", by).stdout)
    header, body, total = rows[0], rows[1:-1], rows[-1]
    extra = ["models"] if by == "key" else []  # per key, the models it called
    assert header == [by, *extra, *MEASURES]
    labels = {v: v or "-" for v in expected} if by != "key" else {i: n for n, i in ids.items()}
    assert sorted(r[0] for r in body) == sorted(labels[v] for v in expected)
    for r in body:
        value = next(v for v in expected if labels[v] == r[0])
        check_cells(r[1 + len(extra) :], expected[value])
    assert total[0] == "TOTAL"
    check_cells(total[1 + len(extra) :], expected_total)
    if by == "key":
        assert {r[0]: r[1] for r in body} == {
            "a": "gpt-4o, gpt-4o-mini",
            "b": "claude-haiku-4-5, gpt-4o-mini",
        }
        assert {r["key"]: r["models"] for r in doc["rows"]}["a"] == ["gpt-4o", "gpt-4o-mini"]


def check_cells(cells: list[str], sums: dict[str, Any]) -> None:
    counts = [sums[k] for k in ("calls", "errors", "input_tokens", "output_tokens", "cached_tokens")]
    assert [int(c) for c in cells[:5]] == counts
    assert int(cells[5]) == sums["cache_write_tokens"]
    assert float(cells[6]) == sums["cost_usd"], (cells[6], sums["cost_usd"])  # printed exactly
    assert len(cells[6].split(".")[1]) >= 4
    assert int(cells[7]) == sums["estimated"]
    assert cells[8] == f"{sums['mean_latency_ms']:.1f}"


def test_usage_by_key_and_model_and_since(gw: GatewayServer) -> None:
    ids = seed_usage(gw)
    doc = json.loads(gw.cli("usage", "--by", "key,model", "--json").stdout)
    pairs = {(r["key_id"], r["model"]): r["calls"] for r in doc["rows"]}
    assert pairs[(ids["b"], "claude-haiku-4-5")] == 2 and pairs[(ids["a"], "")] == 1
    assert sum(pairs.values()) == len(USAGE_ROWS)

    with sqlite3.connect(db_path(gw)) as db:
        db.execute(
            "UPDATE usage_records SET created_at = ? WHERE request_id = 'req-0'", (time.time() - 86400 * 3,)
        )
        recent_cost = db.execute(
            "SELECT SUM(cost_usd) FROM usage_records WHERE request_id != 'req-0'"
        ).fetchone()[0]
    recent = json.loads(gw.cli("usage", "--since", "2d", "--json").stdout)
    assert recent["total"]["calls"] == len(USAGE_ROWS) - 1
    assert recent["total"]["cost_usd"] == recent_cost


def test_usage_with_no_records_prints_a_zero_total(gw: GatewayServer) -> None:
    doc = json.loads(gw.cli("usage", "--json").stdout)
    assert doc["rows"] == [] and doc["total"]["calls"] == 0 and doc["total"]["cost_usd"] == 0
    assert table_rows(gw.cli("usage", "--by", "model").stdout)[-1][:2] == ["TOTAL", "0"]


def test_new_commands_explain_themselves() -> None:
    for args in (["keys", "update"], ["prices"], ["prices", "list"], ["prices", "set"], ["prices", "reset"]):
        proc = run_cli(*args, "--help")
        assert "Usage" in proc.stdout and len(proc.stdout) > 200, args
    assert "--budget-period" in run_cli("keys", "create", "--help").stdout
    assert "--json" in run_cli("usage", "--help").stdout
