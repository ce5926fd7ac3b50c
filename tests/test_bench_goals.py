"""bench/suite/goals.py: how one run's figures are judged against issue #11's targets."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from harness import Processes, WrkResult
from suite.goals import Check, Goals
from suite.runner import Cell, Results, Runner, Settings, twin_id
from suite.scenarios import Scenario, select
from suite.targets import Endpoint, Nginx, Target

TRANSLATED = select("chat->anthropic")[0]
TWIN = TRANSLATED.passthrough_twin


def _cell(p50_ms: float, rps: float = 1000.0, non_2xx: int = 0) -> Cell:
    return Cell(WrkResult(rps, p50_ms, p50_ms * 3, 5000, non_2xx, 0))


def _results(translated: float, passthrough: float, direct: float | None, floor: float) -> Results:
    """A translated scenario's c=1 cells, with its twin's measured in the same rounds."""
    r = Results()
    r.cells[TRANSLATED.name, 1, "torouter/1"] = _cell(translated)
    r.cells[TRANSLATED.name, 1, twin_id("torouter/1")] = _cell(passthrough)
    r.cells[TRANSLATED.name, 1, twin_id("floor/1")] = _cell(floor)
    if direct is not None:
        r.cells[TRANSLATED.name, 1, twin_id("nginx/1")] = _cell(direct)
    return r


def _latency_check(results: Results) -> Check:
    checks = Goals(results, [TRANSLATED], [1], [1]).all()
    (check,) = (c for c in checks if c.goal.startswith("translated / pass-through p50"))
    return check


def test_a_translated_call_is_judged_by_what_it_adds_to_the_direct_call() -> None:
    # Over the direct call: 0.33 against 0.27 ms, 1.22×. Over the floor: 0.09 against 0.05, 1.8×.
    check = _latency_check(_results(translated=0.40, passthrough=0.345, direct=0.072, floor=0.295))
    assert check.ok is True
    assert "+0.328 ms vs +0.273 ms, 1.20×" in check.measured
    assert "over the floor +0.105 vs +0.050 ms, 2.10×" in check.measured  # shown, not judged
    assert check.scenario == TRANSLATED.name and check.workers == "1 worker"


def test_a_translation_that_adds_more_than_half_again_fails() -> None:
    check = _latency_check(_results(translated=0.50, passthrough=0.30, direct=0.10, floor=0.25))
    assert check.ok is False  # 0.40 added against 0.20: 2×
    check = _latency_check(_results(translated=0.39, passthrough=0.30, direct=0.10, floor=0.25))
    assert check.ok is True  # 1.45×


def test_without_the_direct_call_the_check_is_not_measured_never_passed() -> None:
    check = _latency_check(_results(translated=0.31, passthrough=0.30, direct=None, floor=0.25))
    assert check.ok is None and check.verdict == "N/A"
    assert check.measured == "not measured (no direct call: select nginx)"


def test_the_direct_call_of_the_twins_own_scenario_stands_in_for_a_same_rounds_one() -> None:
    results = _results(translated=0.60, passthrough=0.30, direct=None, floor=0.25)
    results.cells[TWIN.name, 1, "nginx/1"] = _cell(0.10)
    assert _latency_check(results).ok is False  # 0.50 added against 0.20


def test_a_cell_with_errors_does_not_count() -> None:
    results = _results(translated=0.31, passthrough=0.30, direct=0.10, floor=0.25)
    results.cells[TRANSLATED.name, 1, "torouter/1"] = _cell(0.31, non_2xx=3)
    check = _latency_check(results)
    assert check.ok is None and check.measured == "not measured"  # the direct call was there


def test_translated_calls_per_second_must_reach_two_thirds_of_the_twins() -> None:
    r = Results()
    r.cells[TRANSLATED.name, 32, "torouter/1"] = _cell(0.5, rps=660.0)
    r.cells[TRANSLATED.name, 32, twin_id("torouter/1")] = _cell(0.4, rps=1000.0)
    (check,) = (c for c in Goals(r, [TRANSLATED], [32], [1]).all() if c.goal.endswith("calls/s, c=32"))
    assert check.ok is False and "0.66" in check.measured
    r.cells[TRANSLATED.name, 32, "torouter/1"] = _cell(0.5, rps=700.0)
    (check,) = (c for c in Goals(r, [TRANSLATED], [32], [1]).all() if c.goal.endswith("calls/s, c=32"))
    assert check.ok is True


class _Served(Target):
    """A target that serves any scenario at a made-up address, with nothing to start."""

    def route(self, scenario: Scenario) -> Endpoint:
        return Endpoint(f"http://127.0.0.1:1/{self.kind}{scenario.path}", "sk-test", "m")


def test_a_translated_scenarios_rounds_also_measure_the_twin_direct(tmp_path: Path) -> None:
    procs = Processes(tmp_path)
    router, floor = _Served(procs, tmp_path, 1), _Served(procs, tmp_path, 1)
    router.kind, floor.kind = "torouter", "floor"
    nginx = Nginx(procs, tmp_path, 1)
    runner = Runner([nginx, floor, router], Settings([1], 1, 1, 0, 0, 5, 0), tmp_path)
    assert nginx.unsupported(TRANSLATED)  # nginx has nothing to translate ...
    twins = runner._twins(TRANSLATED, {"torouter/1": router.endpoint(TRANSLATED)})
    assert sorted(twins) == ["floor/1", "nginx/1", "torouter/1"]
    assert twins["nginx/1"].url == TWIN.origin + TWIN.path  # ... but answers the twin directly
    assert runner._twins(TWIN, {"torouter/1": router.endpoint(TWIN)}) == {}


def test_a_slow_target_gets_rounds_long_enough_for_a_few_calls(tmp_path: Path) -> None:
    peer = _Served(Processes(tmp_path), tmp_path, 1)
    peer.kind = "litellm"
    runner = Runner([peer], Settings([1, 32, 256], 2, 5, 0, 0, 10, 0), tmp_path)
    assert runner._round_seconds(TRANSLATED, peer, 1) == 2  # nothing measured below c=1
    runner.results.cells[TRANSLATED.name, 1, "litellm/1"] = _cell(40.0)  # 1.3 s a call at c=32
    assert runner._round_seconds(TRANSLATED, peer, 32) == 2  # within the usual round
    runner.results.cells[TRANSLATED.name, 1, "litellm/1"] = _cell(70.0)  # 2.2 s: 3 of them, 6.7 s
    assert runner._round_seconds(TRANSLATED, peer, 32) == 7
    runner.results.cells[TRANSLATED.name, 1, "litellm/1"] = _cell(100.0)  # 3.2 s: 9.6 s
    assert runner._round_seconds(TRANSLATED, peer, 32) == 10
    runner.results.cells[TRANSLATED.name, 1, "litellm/1"] = _cell(110.0)  # 3.5 s: past 10 s
    why = runner._round_seconds(TRANSLATED, peer, 32)
    assert isinstance(why, str) and "would take about 3.5 s" in why
    runner.results.cells[TRANSLATED.name, 32, "litellm/1"] = _cell(500.0)  # 4 s a call at c=256
    why = runner._round_seconds(TRANSLATED, peer, 256)
    assert isinstance(why, str) and "at c=32 was 500 ms" in why
