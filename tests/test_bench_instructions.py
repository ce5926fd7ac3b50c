"""bench/instructions.py's pieces that need no valgrind: the calls it sends and how it reads counts."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from instructions import request_bytes, totals
from suite.scenarios import SCENARIOS


def test_each_scenario_sends_the_suites_call_with_its_key() -> None:
    for scenario in SCENARIOS:
        raw = request_bytes(scenario, "sk-tr-test")
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == f"POST {scenario.path} HTTP/1.1"
        headers = dict(line.split(": ", 1) for line in lines[1:])
        assert int(headers["Content-Length"]) == len(body)
        assert headers.get("x-api-key") == "sk-tr-test" or headers.get("Authorization") == "Bearer sk-tr-test"
        doc = orjson.loads(body)
        assert doc["max_tokens"] == 64 and doc["messages"][0]["role"] == "user"
        assert doc.get("stream", False) is scenario.stream
        if scenario.stream and scenario.client == "openai":
            assert doc["stream_options"] == {"include_usage": True}  # as the wrk script asks


def test_counts_come_from_the_dump_asked_for_with_the_loop_thread_apart(tmp_path: Path) -> None:
    out = tmp_path / "callgrind.out"
    for dump, thread, count in ((1, 1, 900), (1, 2, 50), (1, 7, 25), (2, 1, 5)):
        text = f"# callgrind format\nevents: Ir\nsummary: {count}\n\nfn=(1) x\n0 {count}\ntotals: {count}\n"
        (tmp_path / f"callgrind.out.{dump}-{thread:02d}").write_text(text)
    assert totals(out, 1) == (900, 975)
    assert totals(out, 2) == (5, 5)
    assert totals(out, 3) == (0, 0)
