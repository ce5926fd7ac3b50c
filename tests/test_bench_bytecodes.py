"""bench/bytecodes.py's tracer and report, without a server: counts that add up exactly."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bytecodes import TRACER, by_module, read_counts, report, short_path
from suite.scenarios import SCENARIOS


def work(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def lookup(table: dict[str, int]) -> int:
    try:
        return table["missing"]
    except KeyError:  # a handler's first instructions belong to no line (f_lineno is None)
        return 0


def traced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: Callable[[], object], lines: bool = False
) -> Path:
    out = tmp_path / f"out-{lines}.tsv"
    monkeypatch.setenv("BYTECODE_OUT", str(out))
    monkeypatch.setenv("BYTECODE_LINES", "1" if lines else "0")
    handlers = signal.getsignal(signal.SIGUSR1), signal.getsignal(signal.SIGUSR2)
    try:
        exec(compile(TRACER, "tracer", "exec"), {})  # as the server's sitecustomize runs it
        os.kill(os.getpid(), signal.SIGUSR1)
        body()
        os.kill(os.getpid(), signal.SIGUSR2)
    finally:
        sys.settrace(None)
        signal.signal(signal.SIGUSR1, handlers[0])
        signal.signal(signal.SIGUSR2, handlers[1])
    return out


def test_a_functions_count_is_exact_and_grows_with_its_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    once = {r[3]: r[0] for r in read_counts(traced(tmp_path, monkeypatch, lambda: work(10)), 1)}
    twice = {r[3]: r[0] for r in read_counts(traced(tmp_path, monkeypatch, lambda: (work(10), work(10))), 1)}
    more = {r[3]: r[0] for r in read_counts(traced(tmp_path, monkeypatch, lambda: work(20)), 1)}
    assert once["work"] > 0 and twice["work"] == 2 * once["work"]
    assert more["work"] > once["work"]


def test_lines_of_a_function_add_up_to_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = {r[3]: r[0] for r in read_counts(traced(tmp_path, monkeypatch, lambda: work(10)), 1)}
    rows = read_counts(traced(tmp_path, monkeypatch, lambda: work(10), lines=True), 1)
    mine = [r for r in rows if r[3] == "work"]
    assert len(mine) > 2 and sum(r[0] for r in mine) == whole["work"]


def test_instructions_no_line_owns_are_counted_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = {r[3]: r[0] for r in read_counts(traced(tmp_path, monkeypatch, lambda: lookup({})), 1)}
    rows = [
        r
        for r in read_counts(traced(tmp_path, monkeypatch, lambda: lookup({}), lines=True), 1)
        if r[3] == "lookup"
    ]
    assert any(r[2] == 0 for r in rows)
    assert sum(r[0] for r in rows) == whole["lookup"]


def test_the_report_names_modules_from_their_package(tmp_path: Path) -> None:
    assert short_path("/x/.venv/lib/python3.11/site-packages/aiohttp/client.py") == "aiohttp/client.py"
    assert short_path("/repo/src/torouter/auth.py") == "torouter/auth.py"
    counts = tmp_path / "c.tsv"
    counts.write_text(
        "3000\t/repo/src/torouter/auth.py\t20\textract_key\n"
        "1000\t/repo/src/torouter/auth.py\t55\tauthenticate\n"
        "8000\t/v/site-packages/aiohttp/client.py\t558\tClientSession._request\n"
    )
    rows = read_counts(counts, 1000)
    assert rows[0] == (8.0, "aiohttp/client.py", 558, "ClientSession._request")
    assert by_module(rows) == [(8.0, "aiohttp/client.py"), (4.0, "torouter/auth.py")]
    args = argparse.Namespace(calls=1000, top=10, lines=None)
    text = report(SCENARIOS[0], rows, args)
    assert "12 bytecodes per call" in text and "ToRouter's own modules: 4." in text
