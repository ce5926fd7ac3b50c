"""The performance targets of issue #11, checked against one run's figures as ratios.

Only clean cells count (no non-2xx answer, no socket error): a target whose figures are missing
or flagged is N/A, never a PASS.
"""

from __future__ import annotations

from dataclasses import dataclass

from suite.runner import Results, WrkResult, twin_id
from suite.scenarios import Scenario
from suite.ttft import Ttft

MIN_FLOOR_SHARE = 0.60  # ToRouter calls/s ≥ 60% of the floor's at c=32
MIN_OVER_PORTKEY = 3.0  # ToRouter calls/s ≥ 3× Portkey's at c=32
MIN_OVER_LITELLM = 30.0  # ToRouter calls/s ≥ 30× LiteLLM's at c=32
MAX_ADDED_P50_MS = 0.3  # at c=1, over the floor
MAX_ADDED_P99_MS = 1.0
MAX_TRANSLATION_FACTOR = 1.5  # translated costs at most 1.5× pass-through
MAX_ADDED_TTFT_MS = 1.0  # first SSE event, over the floor


@dataclass(frozen=True, slots=True)
class Check:
    goal: str
    scenario: str
    workers: str
    measured: str
    wanted: str
    ok: bool | None  # None: not measured

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "N/A"}[self.ok]


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b > 0 else "n/a"


def _workers(n: int) -> str:
    return f"{n} worker" + ("s" if n > 1 else "")


class Goals:
    def __init__(
        self, results: Results, scenarios: list[Scenario], concurrencies: list[int], workers: list[int]
    ):
        self.r = results
        self.scenarios = scenarios
        self.cs = concurrencies
        self.workers = workers
        self.checks: list[Check] = []

    def all(self) -> list[Check]:
        for s in self.scenarios:
            for w in self.workers:
                if not s.translated:
                    self._floor_share(s, w)
                self._over_peer(s, w, "litellm", w, MIN_OVER_LITELLM, "ToRouter / LiteLLM calls/s, c=32")
            self._over_peer(s, 1, "portkey", 1, MIN_OVER_PORTKEY, "ToRouter / Portkey calls/s, c=32")
            if not s.translated:
                self._added_latency(s)
            else:
                self._translation(s)
            if s.stream:
                self._ttft(s)
        return self.checks

    def _add(self, goal: str, s: Scenario, workers: str, measured: str, wanted: str, ok: bool | None) -> None:
        self.checks.append(Check(goal, s.name, workers, measured, wanted, ok))

    def _floor_share(self, s: Scenario, w: int) -> None:
        if 32 not in self.cs:
            return
        goal = "ToRouter / floor calls/s, c=32"
        floor, router = self.r.result(s.name, 32, f"floor/{w}"), self.r.result(s.name, 32, f"torouter/{w}")
        if not (floor and router):
            self._add(goal, s, _workers(w), "not measured", f"≥ {MIN_FLOOR_SHARE:.0%}", None)
            return
        share = router.rps / floor.rps
        text = f"{share:.0%} ({router.rps:,.0f} / {floor.rps:,.0f})"
        self._add(goal, s, _workers(w), text, f"≥ {MIN_FLOOR_SHARE:.0%}", share >= MIN_FLOOR_SHARE)

    def _over_peer(self, s: Scenario, w: int, peer: str, peer_w: int, minimum: float, goal: str) -> None:
        if 32 not in self.cs:
            return
        router, other = (
            self.r.result(s.name, 32, f"torouter/{w}"),
            self.r.result(s.name, 32, f"{peer}/{peer_w}"),
        )
        cell = self.r.cells.get((s.name, 32, f"{peer}/{peer_w}"))
        if cell is None and (s.name, f"{peer}/{peer_w}") not in self.r.skipped:
            return  # the peer was not selected
        if not (router and other):
            why = self.r.skipped.get((s.name, f"{peer}/{peer_w}"), "")
            text = f"not measured: {why}" if why else "not measured (or errors)"
            self._add(goal, s, _workers(w), text, f"≥ {minimum:g}×", None)
            return
        ratio = router.rps / other.rps
        text = f"{ratio:.1f}× ({router.rps:,.0f} / {other.rps:,.0f})"
        self._add(goal, s, _workers(w), text, f"≥ {minimum:g}×", ratio >= minimum)

    def _added_latency(self, s: Scenario) -> None:
        if 1 not in self.cs:
            return
        floor, router = self.r.result(s.name, 1, "floor/1"), self.r.result(s.name, 1, "torouter/1")
        for pct, limit in (("p50", MAX_ADDED_P50_MS), ("p99", MAX_ADDED_P99_MS)):
            goal = f"added {pct} over the floor, c=1"
            if not (floor and router):
                self._add(goal, s, _workers(1), "not measured", f"≤ {limit} ms", None)
                continue
            added = getattr(router, f"{pct}_ms") - getattr(floor, f"{pct}_ms")
            text = f"{added:+.3f} ms ({getattr(router, f'{pct}_ms'):.3f} − {getattr(floor, f'{pct}_ms'):.3f})"
            self._add(goal, s, _workers(1), text, f"≤ {limit} ms", added <= limit)

    def _twin(self, s: Scenario, c: int, target: str) -> tuple[WrkResult | None, str]:
        """The twin's cell measured in the translated scenario's own rounds, or else its own."""
        same = self.r.result(s.name, c, twin_id(target))
        if same is not None:
            return same, f"{s.passthrough_twin.name}, same rounds"
        return self.r.result(s.passthrough_twin.name, c, target), s.passthrough_twin.name

    def _translation(self, s: Scenario) -> None:
        f = MAX_TRANSLATION_FACTOR
        if 32 in self.cs:
            goal = "translated / pass-through calls/s, c=32"
            tr = self.r.result(s.name, 32, "torouter/1")
            pt, where = self._twin(s, 32, "torouter/1")
            if tr and pt:
                ratio = tr.rps / pt.rps
                text = f"{ratio:.2f} ({tr.rps:,.0f} / {pt.rps:,.0f} for {where})"
                self._add(goal, s, _workers(1), text, f"≥ {1 / f:.2f} (1/{f:g})", ratio >= 1 / f)
            else:
                self._add(goal, s, _workers(1), "not measured", f"≥ {1 / f:.2f}", None)
        if 1 in self.cs:
            # What a call through ToRouter adds to calling the upstream directly, as a user sees it.
            # Also shown, not judged: the same over the floor, which is itself a gateway's cost.
            goal = "translated / pass-through p50 added to the direct call, c=1"
            tr = self.r.result(s.name, 1, "torouter/1")
            pt, where = self._twin(s, 1, "torouter/1")
            direct, _ = self._twin(s, 1, "nginx/1")
            floor, _ = self._twin(s, 1, "floor/1")
            wanted = f"≤ {f:g}× pass-through's"
            if not (tr and pt and direct):
                missing = "" if direct else " (no direct call: select nginx)"
                self._add(goal, s, _workers(1), "not measured" + missing, wanted, None)
                return
            added_tr, added_pt = tr.p50_ms - direct.p50_ms, pt.p50_ms - direct.p50_ms
            ok = added_tr <= f * max(added_pt, 0.0)
            text = f"{added_tr:+.3f} ms vs {added_pt:+.3f} ms, {_ratio(added_tr, added_pt)} ({where})"
            if floor:
                over_tr, over_pt = tr.p50_ms - floor.p50_ms, pt.p50_ms - floor.p50_ms
                text += f"; over the floor {over_tr:+.3f} vs {over_pt:+.3f} ms, {_ratio(over_tr, over_pt)}"
            self._add(goal, s, _workers(1), text, wanted, ok)

    def _ttft(self, s: Scenario) -> None:
        floor = self.r.ttft.get((s.passthrough_twin.name, "floor/1"))
        router = self.r.ttft.get((s.name, "torouter/1"))
        goal = "added time to first token, c=1"
        if (s.name, "torouter/1") not in self.r.ttft:
            return  # TTFT not measured in this run
        if not (isinstance(floor, Ttft) and isinstance(router, Ttft)):
            self._add(goal, s, _workers(1), "not measured", f"≤ {MAX_ADDED_TTFT_MS} ms (p50)", None)
            return
        added = router.p50_ms - floor.p50_ms
        added99 = router.p99_ms - floor.p99_ms
        text = f"p50 {added:+.3f} ms, p99 {added99:+.3f} ms (floor p50 {floor.p50_ms:.3f})"
        self._add(goal, s, _workers(1), text, f"≤ {MAX_ADDED_TTFT_MS} ms (p50)", added <= MAX_ADDED_TTFT_MS)
