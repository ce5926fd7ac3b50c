"""Measure every selected target on every selected scenario and concurrency, in one pass.

For each scenario: start what is needed, check one real call per target, warm each target up,
then for each concurrency run wrk on the targets one after another (so noise on the machine hits
them alike), check a call again, and for streams time the first token.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness import SHARED, TargetError, WrkResult, parse_wrk, run_wrk, say

from suite.calls import call_once
from suite.scenarios import Scenario
from suite.targets import Endpoint, Target
from suite.ttft import Ttft, measure_ttft

# Loads the shared wrk script, then adds the headers a target routes on (Portkey's x-portkey-*).
WRAPPER_LUA = """dofile("{lua}")
for line in string.gmatch(os.getenv("EXTRA_HEADERS") or "", "[^\\n]+") do
  local name, value = string.match(line, "^([^:]+): (.*)$")
  if name then wrk.headers[name] = value end
end
"""


@dataclass(slots=True)
class Cell:
    """What one target measured for one scenario and concurrency."""

    result: WrkResult | None = None
    error: str | None = None  # not measured: why
    load: float = 0.0  # the 1-minute load average as the cell started: other work on the machine
    rounds: list[float] = field(default_factory=list)  # calls/s of each round; the result is their median

    @property
    def clean(self) -> bool:
        """Measured with no non-2xx answer and no socket error: fit to be counted."""
        r = self.result
        return r is not None and r.requests > 0 and r.non_2xx == 0 and r.socket_errors == 0


@dataclass(slots=True)
class Settings:
    concurrencies: list[int]
    duration: int  # seconds per round
    rounds: int
    warmup: int
    target_warmup: int
    wrk_timeout: int
    ttft_calls: int


@dataclass(slots=True)
class Results:
    cells: dict[tuple[str, int, str], Cell] = field(default_factory=dict)
    skipped: dict[tuple[str, str], str] = field(default_factory=dict)  # (scenario, target) → why
    checked: dict[tuple[str, str], str] = field(default_factory=dict)  # the verified answer
    ttft: dict[tuple[str, str], Ttft | str] = field(default_factory=dict)

    def result(self, scenario: str, c: int, target: str) -> WrkResult | None:
        """A clean measurement, or None."""
        cell = self.cells.get((scenario, c, target))
        return cell.result if cell and cell.clean else None

    def to_json(self) -> dict[str, object]:
        cells = [
            {
                "scenario": s,
                "c": c,
                "target": t,
                "error": cell.error,
                "load": cell.load,
                "rounds": cell.rounds,
                **(asdict(cell.result) if cell.result else {}),
            }
            for (s, c, t), cell in self.cells.items()
        ]
        ttft = [
            {"scenario": s, "target": t, **(asdict(v) if isinstance(v, Ttft) else {"error": v})}
            for (s, t), v in self.ttft.items()
        ]
        skipped = [{"scenario": s, "target": t, "reason": r} for (s, t), r in self.skipped.items()]
        return {"cells": cells, "ttft": ttft, "skipped": skipped}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Results:
        """The figures to_json() wrote, back again (to redraw a report without measuring)."""
        results = cls()
        wrk_fields = [f.name for f in fields(WrkResult)]
        for c in data["cells"]:
            result = WrkResult(**{f: c[f] for f in wrk_fields}) if "rps" in c else None
            cell = Cell(result, c.get("error"), c.get("load", 0.0), c.get("rounds", []))
            results.cells[c["scenario"], c["c"], c["target"]] = cell
        for t in data["ttft"]:
            value = t["error"] if "error" in t else Ttft(t["p50_ms"], t["p99_ms"], t["calls"])
            results.ttft[t["scenario"], t["target"]] = value
        for s in data["skipped"]:
            results.skipped[s["scenario"], s["target"]] = s["reason"]
        return results


# A translated scenario is compared with its pass-through twin. Measured minutes apart, the two
# differ by whatever the machine did in between (±30% on a shared machine); so, in a translated
# scenario's rounds at the concurrencies the targets read, ToRouter's and the floor's one-worker
# endpoints and the upstream called directly are also measured on the twin, right after
# ToRouter's translated round.
TRANSLATED_TARGET = "torouter/1"
TWINNED = ("torouter/1", "floor/1", "nginx/1")
TWIN_CONCURRENCIES = (1, 32)
# A target too slow for a round at some concurrency gets longer rounds: enough for a few calls
# per connection, up to a limit past which it is not measured (LiteLLM at c=256).
CALLS_PER_ROUND = 3
MAX_ROUND_S = 10


def twin_id(target_id: str) -> str:
    """The cell id, under a translated scenario, of a target's same-rounds pass-through twin."""
    return target_id + "@twin"


class Runner:
    def __init__(self, targets: list[Target], settings: Settings, workdir: Path) -> None:
        self.targets = targets
        self.settings = settings
        self.workdir = workdir
        self.results = Results()

    def run(self, scenarios: list[Scenario]) -> Results:
        for scenario in scenarios:
            say(f"== {scenario.title} ({scenario.name})")
            endpoints = self._prepare(scenario)
            twins = self._twins(scenario, endpoints)
            for c in self.settings.concurrencies:
                self._measure(scenario, endpoints, c, twins if c in TWIN_CONCURRENCIES else {})
            self._recheck(scenario, endpoints)
            if scenario.stream and self.settings.ttft_calls:
                self._ttft(scenario, endpoints)
        return self.results

    def _script(self, scenario: Scenario) -> Path:
        path = self.workdir / f"wrk-{scenario.client}.lua"
        if not path.exists():
            path.write_text(WRAPPER_LUA.format(lua=SHARED / scenario.lua))
        return path

    def _wrk(self, scenario: Scenario, endpoint: Endpoint, c: int, seconds: int) -> WrkResult:
        env = {
            "KEY": endpoint.key,
            "MODEL": endpoint.model,
            "STREAM": "1" if scenario.stream else "0",
            "EXTRA_HEADERS": "\n".join(f"{k}: {v}" for k, v in endpoint.headers),
        }
        output = run_wrk(self._script(scenario), endpoint.url, env, c, seconds, self.settings.wrk_timeout)
        return parse_wrk(output)

    def _prepare(self, scenario: Scenario) -> dict[str, Endpoint]:
        """Each target's endpoint, checked with one real call and warmed up; the rest are skipped."""
        endpoints: dict[str, Endpoint] = {}
        for target in self.targets:
            key = (scenario.name, target.id)
            reason = target.unsupported(scenario)
            if reason:
                self.results.skipped[key] = reason
                continue
            try:
                endpoint = target.endpoint(scenario)
                self.results.checked[key] = call_once(scenario, endpoint)
                if self.settings.target_warmup:
                    warm_c = min(32, max(self.settings.concurrencies))
                    self._wrk(scenario, endpoint, warm_c, self.settings.target_warmup)
            except TargetError as exc:
                self.results.skipped[key] = f"error: {exc}"
                say(f"  {target.label}: not measured ({exc})")
                continue
            say(f"  {target.label}: {self.results.checked[key]}")
            endpoints[target.id] = endpoint
        return endpoints

    def _twins(self, scenario: Scenario, endpoints: dict[str, Endpoint]) -> dict[str, Endpoint]:
        """For a translated scenario: ToRouter's and the floor's one-worker endpoints and the direct
        upstream for its pass-through twin, measured again in the same rounds (see TWINNED)."""
        if not scenario.translated:
            return {}
        twin = scenario.passthrough_twin
        found: dict[str, Endpoint] = {}
        for target in self.targets:
            if target.id in TWINNED and not target.unsupported(twin):
                with contextlib.suppress(TargetError):
                    found[target.id] = target.endpoint(twin)
        return found if TRANSLATED_TARGET in endpoints and TRANSLATED_TARGET in found else {}

    def _measure(
        self, scenario: Scenario, endpoints: dict[str, Endpoint], c: int, twins: dict[str, Endpoint]
    ) -> None:
        """Warm every target up at c, then measure them in turn, round after round.

        Each cell is the median of its rounds: on a noisy machine a burst of other work spoils one
        round of one target, not the comparison. `twins` are measured on the pass-through twin
        right after ToRouter's round, so a translated call is compared with a pass-through call
        of the same minute.
        """
        s = self.settings
        load = os.getloadavg()[0]
        runs: dict[str, list[WrkResult]] = {}
        seconds_of: dict[str, int] = {}
        for target in self.targets:
            if target.id not in endpoints:
                continue
            seconds = self._round_seconds(scenario, target, c)
            if isinstance(seconds, str):
                reason = seconds
                self.results.cells[scenario.name, c, target.id] = Cell(error=reason, load=load)
                say(f"  c={c:<4} {target.label:<14} not measured: {reason}")
                continue
            runs[target.id] = []
            seconds_of[target.id] = seconds
            if seconds != s.duration:
                say(f"  c={c:<4} {target.label:<14} slow: rounds of {seconds} s, for several calls each")
            if s.warmup:
                with contextlib.suppress(TargetError):  # the rounds fail the same way, and say why
                    self._wrk(scenario, endpoints[target.id], c, s.warmup)  # fills pools; discarded
        twin_runs: dict[str, list[WrkResult]] = {tid: [] for tid in twins}
        if twins and s.warmup:
            for endpoint in twins.values():
                with contextlib.suppress(TargetError):
                    self._wrk(scenario.passthrough_twin, endpoint, c, s.warmup)
        failed: set[str] = set()
        for _round in range(s.rounds):
            for target in self.targets:
                if target.id not in runs or target.id in failed:
                    continue
                try:
                    wrk = self._wrk(scenario, endpoints[target.id], c, seconds_of[target.id])
                    runs[target.id].append(wrk)
                except TargetError as exc:
                    failed.add(target.id)
                    self.results.cells[scenario.name, c, target.id] = Cell(error=str(exc), load=load)
                    say(f"  c={c:<4} {target.label:<14} failed: {exc}")
                if target.id == TRANSLATED_TARGET:
                    for tid, endpoint in twins.items():
                        with contextlib.suppress(TargetError):  # then the twin's own scenario counts
                            twin_runs[tid].append(
                                self._wrk(scenario.passthrough_twin, endpoint, c, s.duration)
                            )
        for target in self.targets:
            if target.id in runs and target.id not in failed:
                self._record(scenario, target, c, runs[target.id], load)
        for tid, twin_rounds in twin_runs.items():
            if len(twin_rounds) == s.rounds:
                label = f"{self._label(tid)} on {scenario.passthrough_twin.name}"
                self._record_as(scenario, twin_id(tid), label, c, twin_rounds, load)

    def _label(self, tid: str) -> str:
        return next((t.label for t in self.targets if t.id == tid), tid)

    def _round_seconds(self, scenario: Scenario, target: Target, c: int) -> int | str:
        """How long each of the target's rounds at c runs, or why it is not measured.

        A target whose calls at c would outlast a round (its p50 at the concurrency below, scaled
        by c, says so) gets rounds long enough for CALLS_PER_ROUND calls per connection, up to
        MAX_ROUND_S; past that it is not measured."""
        lower = [x for x in self.settings.concurrencies if x < c]
        prev = self.results.result(scenario.name, lower[-1], target.id) if lower else None
        if prev is None:
            return self.settings.duration
        expected_s = prev.p50_ms * c / lower[-1] / 1000
        if expected_s <= self.settings.duration:
            return self.settings.duration
        if expected_s * CALLS_PER_ROUND <= MAX_ROUND_S:
            return math.ceil(expected_s * CALLS_PER_ROUND)
        return (
            f"its p50 at c={lower[-1]} was {prev.p50_ms:,.0f} ms, so a call at c={c} would take about"
            f" {expected_s:,.1f} s, too long for {CALLS_PER_ROUND} calls in a round of at most"
            f" {MAX_ROUND_S} s"
        )

    def _record(self, scenario: Scenario, target: Target, c: int, runs: list[WrkResult], load: float) -> None:
        self._record_as(scenario, target.id, target.label, c, runs, load)

    def _record_as(
        self, scenario: Scenario, tid: str, label: str, c: int, runs: list[WrkResult], load: float
    ) -> None:
        """The cell: the median of the rounds' calls/s, p50 and p99; their errors summed."""
        r = WrkResult(
            rps=statistics.median(x.rps for x in runs),
            p50_ms=statistics.median(x.p50_ms for x in runs),
            p99_ms=statistics.median(x.p99_ms for x in runs),
            requests=sum(x.requests for x in runs),
            non_2xx=sum(x.non_2xx for x in runs),
            socket_errors=sum(x.socket_errors for x in runs),
        )
        cell = Cell(result=r, load=load, rounds=[x.rps for x in runs])
        self.results.cells[scenario.name, c, tid] = cell
        flag = "" if cell.clean else f"   !!! {r.non_2xx} non-2xx, {r.socket_errors} socket errors"
        spread = "/".join(f"{x:,.0f}" for x in cell.rounds)
        say(
            f"  c={c:<4} {label:<14} {r.rps:>9,.0f} calls/s  p50 {r.p50_ms:8.3f} ms"
            f"  p99 {r.p99_ms:8.3f} ms  (rounds {spread}){flag}"
        )

    def _recheck(self, scenario: Scenario, endpoints: dict[str, Endpoint]) -> None:
        """A target that stops answering well under load must not keep its figures."""
        for target in self.targets:
            if target.id not in endpoints:
                continue
            try:
                call_once(scenario, endpoints[target.id])
            except TargetError as exc:
                say(f"  !!! {target.label} answers wrongly after the load: {exc}")
                for c in self.settings.concurrencies:
                    self.results.cells[scenario.name, c, target.id] = Cell(
                        error=f"wrong answer after the load: {exc}"
                    )

    def _ttft(self, scenario: Scenario, endpoints: dict[str, Endpoint]) -> None:
        for target in self.targets:
            if target.id not in endpoints:
                continue
            try:
                t = measure_ttft(scenario, endpoints[target.id], self.settings.ttft_calls)
            except TargetError as exc:
                self.results.ttft[scenario.name, target.id] = str(exc)
                say(f"  TTFT {target.label}: failed: {exc}")
                continue
            self.results.ttft[scenario.name, target.id] = t
            say(
                f"  TTFT {target.label:<14} p50 {t.p50_ms:8.3f} ms  p99 {t.p99_ms:8.3f} ms  ({t.calls} calls)"
            )
