"""Benchmark ToRouter against the floor (a bare ASGI forwarder) on a static nginx upstream.

One run starts everything it needs on free ports (nginx upstream, floor, one ToRouter worker),
loads each target with wrk, prints a comparison table with PASS/FAIL per target, writes it as
Markdown and stops what it started. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import yaml
from harness import (
    JSON_UPSTREAM,
    SHARED,
    SSE_UPSTREAM,
    Processes,
    TargetError,
    WrkResult,
    check_tools,
    command_line,
    create_key,
    free_port,
    git_revision,
    guarded,
    http_ok,
    machine_summary,
    markdown_table,
    now_iso,
    parse_wrk,
    port_open,
    say,
    static_upstream,
    stop_on_sigterm,
    wait_ready,
)
from harness import run_wrk as wrk_run

REPO = Path(__file__).resolve().parent.parent

# Issue #11's targets for one worker: throughput at c=32, added p50 and p99 latency at c=1.
MIN_RATIO_AT_32 = 0.6
MAX_ADDED_P50_MS_AT_1 = 0.3
MAX_ADDED_P99_MS_AT_1 = 1.0
# The bench key has limits, so the limit code runs, set far above what a run can reach.
KEY_RPM = 100_000_000
KEY_BUDGET_USD = 1_000_000_000
KEY_LIMITS = ["--rpm", str(KEY_RPM), "--budget", str(KEY_BUDGET_USD)]


@dataclass(frozen=True, slots=True)
class Scenario:
    """One kind of call: the wrk script, the path it hits and the ToRouter group that serves it."""

    name: str
    lua: str  # file name under shared/bench
    path: str
    group: str
    stream: bool
    platform: str
    base_url: str  # what ToRouter's upstream account points at

    @property
    def origin(self) -> str:
        """The upstream's scheme://host:port, which the floor prefixes to the request path."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def upstream_name(self) -> str:
        return "static-" + self.group.removeprefix("bench-")


# Adding a scenario is one entry here; ToRouter's config is derived from the ones selected.
SCENARIOS = [
    Scenario("openai-chat", "wrk-openai-chat.lua", "/v1/chat/completions", "bench-json", False, "openai", f"{JSON_UPSTREAM}/v1"),
    Scenario("openai-chat-stream", "wrk-openai-chat.lua", "/v1/chat/completions", "bench-sse", True, "openai", f"{SSE_UPSTREAM}/v1"),
    Scenario("anthropic-messages", "wrk-anthropic-messages.lua", "/v1/messages", "bench-anthropic-json", False, "anthropic", JSON_UPSTREAM),
    Scenario("anthropic-messages-stream", "wrk-anthropic-messages.lua", "/v1/messages", "bench-anthropic-sse", True, "anthropic", SSE_UPSTREAM),
]  # fmt: skip
SCENARIO_BY_NAME = {s.name: s for s in SCENARIOS}


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    env: dict[str, str]


@dataclass(slots=True)
class Cell:
    """What one target measured for one scenario and concurrency."""

    result: WrkResult | None = None
    error: str | None = None


class Target(Protocol):
    name: str

    def endpoint(self, scenario: Scenario) -> Endpoint: ...


# ---------------------------------------------------------------- targets


class Floor:
    """The bare ASGI forwarder; one process per upstream origin, started on first use."""

    name = "floor"

    def __init__(self, procs: Processes) -> None:
        self.procs = procs
        self.ports: dict[str, int] = {}

    def endpoint(self, scenario: Scenario) -> Endpoint:
        port = self.ports.get(scenario.origin) or self._start(scenario.origin)
        return Endpoint(f"http://127.0.0.1:{port}{scenario.path}", {"KEY": "sk-floor-ignores-keys"})

    def _start(self, origin: str) -> int:
        port = free_port()
        name = f"floor-{urlsplit(origin).port}"
        floor_dir = SHARED / "floor"
        argv = [sys.executable, "-m", "uvicorn", "asgi_floor:app", "--app-dir", str(floor_dir)]
        argv += ["--port", str(port)]
        argv += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
        env = {**os.environ, "CLIENT": "aiohttp", "UPSTREAM": origin, "PYTHONDONTWRITEBYTECODE": "1"}
        proc = self.procs.start(name, argv, env, cwd=floor_dir)
        wait_ready(lambda: port_open(port), f"floor on :{port}", proc, self.procs, name)
        self.ports[origin] = port
        return port


def torouter_argv() -> list[str]:
    """The torouter script installed next to this interpreter, else the same entry point via -c."""
    script = Path(sys.executable).parent / "torouter"
    return (
        [str(script)] if script.exists() else [sys.executable, "-c", "from torouter.cli import main; main()"]
    )


def serve_takes_workers() -> bool:
    done = subprocess.run([*torouter_argv(), "serve", "--help"], capture_output=True, text=True)
    return "--workers" in done.stdout


def torouter_config(scenarios: list[Scenario], db_path: Path) -> dict[str, object]:
    upstreams: dict[str, dict[str, str]] = {}
    groups: dict[str, dict[str, object]] = {}
    for s in scenarios:
        upstreams[s.upstream_name] = {
            "name": s.upstream_name,
            "platform": s.platform,
            "base_url": s.base_url,
            "api_key": "sk-upstream-bench",
        }
        groups[s.group] = {"name": s.group, "platform": s.platform, "upstreams": [s.upstream_name]}
    return {
        "database_url": f"sqlite+aiosqlite:///{db_path}",
        "upstreams": list(upstreams.values()),
        "groups": list(groups.values()),
    }


class ToRouter:
    """One ToRouter worker with a fresh SQLite store and one key per group, started on first use."""

    name = "torouter"

    def __init__(self, procs: Processes, workdir: Path, scenarios: list[Scenario]) -> None:
        self.procs = procs
        self.workdir = workdir
        self.scenarios = scenarios
        self.port = 0
        self.keys: dict[str, str] = {}
        self.key_errors: dict[str, str] = {}
        self.start_error: str | None = None
        self.started = False

    def endpoint(self, scenario: Scenario) -> Endpoint:
        if not self.started:
            self._start()
        if self.start_error:
            raise TargetError(self.start_error)
        if scenario.group in self.key_errors:
            raise TargetError(self.key_errors[scenario.group])
        return Endpoint(f"http://127.0.0.1:{self.port}{scenario.path}", {"KEY": self.keys[scenario.group]})

    def _start(self) -> None:
        self.started = True
        self.config = self.workdir / "torouter.yaml"
        self.config.write_text(
            yaml.safe_dump(torouter_config(self.scenarios, self.workdir / "bench.db"), sort_keys=False)
        )
        for group in dict.fromkeys(s.group for s in self.scenarios):
            try:
                self.keys[group] = create_key(torouter_argv(), self.config, group, KEY_LIMITS)
            except TargetError as exc:
                self.key_errors[group] = str(exc)
        try:
            self._serve()
        except TargetError as exc:
            self.start_error = str(exc)

    def _serve(self) -> None:
        self.port = free_port()
        argv = [*torouter_argv(), "serve", "--config", str(self.config), "--port", str(self.port)]
        argv += ["--log-level", "warning"]
        if serve_takes_workers():
            argv += ["--workers", "1"]  # without it, serve starts one worker per core
        proc = self.procs.start("torouter", argv, dict(os.environ))
        health = f"http://127.0.0.1:{self.port}/healthz"
        wait_ready(lambda: http_ok(health), f"torouter on :{self.port}", proc, self.procs, "torouter")


# ---------------------------------------------------------------- wrk

_PROBE = re.compile(r"^PROBE (\d+) (.*)$", re.M)

# Loads the scenario's own script, then prints the first answer and stops: one real call.
PROBE_LUA = """dofile("{lua}")
response = function(status, headers, body)
  io.write("PROBE " .. status .. " " .. (string.gsub(string.sub(body, 1, 300), "%s+", " ")) .. "\\n")
  io.flush()
  wrk.thread:stop()
end
"""


def run_wrk(script: Path, endpoint: Endpoint, scenario: Scenario, connections: int, seconds: int) -> str:
    env = {**endpoint.env, "STREAM": "1" if scenario.stream else "0"}
    return wrk_run(script, endpoint.url, env, connections, seconds)


def probe(endpoint: Endpoint, scenario: Scenario, workdir: Path) -> None:
    """Send one real call before loading a target, so a broken one reports why instead of a 0."""
    script = workdir / f"probe-{scenario.name}.lua"
    script.write_text(PROBE_LUA.format(lua=SHARED / scenario.lua))
    output = run_wrk(script, endpoint, scenario, 1, 2)
    answer = _PROBE.search(output)
    if not answer:
        raise TargetError(f"no answer from {endpoint.url}: {output.strip()[-200:]}")
    status, body = int(answer.group(1)), answer.group(2).strip()
    if not 200 <= status < 300:
        raise TargetError(f"HTTP {status}: {body[:200]}")


def measure(endpoint: Endpoint, scenario: Scenario, connections: int, seconds: int, warmup: int) -> WrkResult:
    script = SHARED / scenario.lua
    if warmup > 0:
        run_wrk(script, endpoint, scenario, connections, warmup)  # fills pools and caches; discarded
    result = parse_wrk(run_wrk(script, endpoint, scenario, connections, seconds))
    if result.non_2xx:
        # Error answers are cheap: counting them as calls would flatter the target.
        raise TargetError(f"INVALID: {result.non_2xx} of {result.requests} responses were not 2xx")
    return result


# ---------------------------------------------------------------- the run

Results = dict[tuple[str, int, str], Cell]


def prepare(targets: list[Target], scenario: Scenario, workdir: Path) -> dict[str, Endpoint | str]:
    """Each target's endpoint for this scenario, or the reason it cannot be measured."""
    endpoints: dict[str, Endpoint | str] = {}
    for target in targets:
        try:
            endpoint = target.endpoint(scenario)
            probe(endpoint, scenario, workdir)
            endpoints[target.name] = endpoint
        except TargetError as exc:
            endpoints[target.name] = str(exc)
            say(f"  {scenario.name} {target.name}: n/a ({exc})")
    return endpoints


def measure_cell(
    target: str, endpoint: Endpoint | str, scenario: Scenario, c: int, args: argparse.Namespace
) -> Cell:
    if isinstance(endpoint, str):
        return Cell(error=endpoint)  # the probe already failed
    say(f"  {scenario.name} c={c} {target}: {args.warmup} s warm-up + {args.duration} s ...")
    try:
        r = measure(endpoint, scenario, c, args.duration, args.warmup)
    except TargetError as exc:
        loud = "!!! BENCHMARK INVALID: " if target == "torouter" else ""
        say(f"    {loud}{target} failed: {exc}")
        return Cell(error=str(exc))
    say(
        f"    {r.rps:,.0f} calls/s, p50 {r.p50_ms:.3f} ms, p99 {r.p99_ms:.3f} ms, socket errors {r.socket_errors}"
    )
    return Cell(result=r)


def run_targets(args: argparse.Namespace) -> Results:
    """Start the upstream, the floor and ToRouter, measure them all, and stop what was started."""
    check_tools()
    with tempfile.TemporaryDirectory(prefix="torouter-bench-") as tmp, static_upstream():
        workdir = Path(tmp)
        procs = Processes(workdir)
        try:
            targets: list[Target] = [Floor(procs), ToRouter(procs, workdir, args.scenarios)]
            return run_all(targets, args.scenarios, args.concurrency, args, workdir)
        finally:
            procs.stop_all()


def run_all(
    targets: list[Target],
    scenarios: list[Scenario],
    concurrencies: list[int],
    args: argparse.Namespace,
    workdir: Path,
) -> Results:
    results: Results = {}
    for scenario in scenarios:
        endpoints = prepare(targets, scenario, workdir)
        for c in concurrencies:
            # Targets alternate within one (scenario, c) so that machine noise hits both alike.
            for target in targets:
                results[scenario.name, c, target.name] = measure_cell(
                    target.name, endpoints[target.name], scenario, c, args
                )
    return results


# ---------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool | None  # None: could not be measured
    text: str

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "N/A"}[self.ok]


@dataclass(slots=True)
class Report:
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


HEADER = (
    "scenario", "c", "floor calls/s", "torouter calls/s", "ratio (torouter/floor)", "floor p50 ms",
    "torouter p50 ms", "added p50 ms", "floor p99 ms", "torouter p99 ms", "socket errors floor/torouter",
)  # fmt: skip


def ms(value: float) -> str:
    return f"{value:.3f}"


def row_for(scenario: str, c: int, floor: Cell, router: Cell) -> list[str]:
    def rps(cell: Cell) -> str:
        return f"{cell.result.rps:,.0f}" if cell.result else f"n/a (error: {shorten(cell.error or '', 40)})"

    def lat(cell: Cell, pick: str) -> str:
        return ms(getattr(cell.result, pick)) if cell.result else "n/a"

    both = floor.result and router.result
    ratio = f"{router.result.rps / floor.result.rps:.2f}" if both else "n/a"  # type: ignore[union-attr]
    added = f"{router.result.p50_ms - floor.result.p50_ms:+.3f}" if both else "n/a"  # type: ignore[union-attr]
    sockets = "/".join(str(cell.result.socket_errors) if cell.result else "n/a" for cell in (floor, router))
    p50s, p99s = [lat(floor, "p50_ms"), lat(router, "p50_ms")], [lat(floor, "p99_ms"), lat(router, "p99_ms")]
    return [scenario, str(c), rps(floor), rps(router), ratio, *p50s, added, *p99s, sockets]


def shorten(text: str, limit: int = 90) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def checks_for(scenario: str, concurrencies: list[int], results: Results) -> list[Check]:
    checks: list[Check] = []
    if 32 in concurrencies:
        floor, router = results[scenario, 32, "floor"].result, results[scenario, 32, "torouter"].result
        if floor and router:
            ratio = router.rps / floor.rps
            text = f"{scenario} c=32: torouter {router.rps:,.0f} calls/s = {ratio:.0%} of floor {floor.rps:,.0f} (target ≥ {MIN_RATIO_AT_32:.0%})"
            checks.append(Check(ratio >= MIN_RATIO_AT_32, text))
        else:
            checks.append(Check(None, f"{scenario} c=32: throughput ratio not measured"))
    if 1 in concurrencies:
        floor, router = results[scenario, 1, "floor"].result, results[scenario, 1, "torouter"].result
        if floor and router:
            added = router.p50_ms - floor.p50_ms
            text = f"{scenario} c=1: torouter adds {added:.3f} ms to the floor's p50 {floor.p50_ms:.3f} ms (target ≤ {MAX_ADDED_P50_MS_AT_1} ms)"
            checks.append(Check(added <= MAX_ADDED_P50_MS_AT_1, text))
            added = router.p99_ms - floor.p99_ms
            text = f"{scenario} c=1: torouter adds {added:.3f} ms to the floor's p99 {floor.p99_ms:.3f} ms (target ≤ {MAX_ADDED_P99_MS_AT_1} ms)"
            checks.append(Check(added <= MAX_ADDED_P99_MS_AT_1, text))
        else:
            checks.append(Check(None, f"{scenario} c=1: added p50 not measured"))
    return checks


def build_report(scenarios: list[Scenario], concurrencies: list[int], results: Results) -> Report:
    report = Report(list(HEADER))
    failed: dict[tuple[str, str, str], list[str]] = {}  # one line per error, however many c it spoiled
    for s in scenarios:
        for c in concurrencies:
            floor, router = results[s.name, c, "floor"], results[s.name, c, "torouter"]
            report.rows.append(row_for(s.name, c, floor, router))
            for target, cell in (("floor", floor), ("torouter", router)):
                if cell.error:
                    failed.setdefault((s.name, target, cell.error), []).append(str(c))
        report.checks += checks_for(s.name, concurrencies, results)
    report.errors = [
        f"{name} {target} (c={','.join(cs)}): {error}" for (name, target, error), cs in failed.items()
    ]
    return report


def machine_lines(args: argparse.Namespace, load: tuple[float, float, float]) -> list[str]:
    return [
        f"- date: {now_iso()}",
        f"- machine: {machine_summary()}",
        f"- load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"- ToRouter revision: {git_revision()}",
        f"- command: `{command_line()}`",
        f"- method: wrk -t1, {args.warmup} s warm-up then {args.duration} s per target; one ToRouter worker;"
        " floor = uvicorn + uvloop + httptools + aiohttp client; static nginx upstream",
    ]


def render_markdown(report: Report, args: argparse.Namespace, load: tuple[float, float, float]) -> str:
    parts = ["# ToRouter benchmark", "", *machine_lines(args, load), "", "## Results", ""]
    parts += [markdown_table(report.header, report.rows), "", "## Targets", ""]
    parts += [f"- {c.verdict}: {c.text}" for c in report.checks] or ["- none measured"]
    if report.errors:
        parts += ["", "## Errors", "", *(f"- {shorten(e, 400)}" for e in report.errors)]
    return "\n".join(parts) + "\n"


def print_report(report: Report) -> None:
    print()
    print(markdown_table(report.header, report.rows))
    print()
    for check in report.checks:
        print(f"{check.verdict}  {check.text}")
    for error in report.errors:
        print(f"ERROR {shorten(error, 400)}")


# ---------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured wrk run (default 10)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of warm-up before each run (default 2)"
    )
    parser.add_argument(
        "--concurrency", default="1,32", help="comma-separated wrk connection counts (default 1,32)"
    )
    parser.add_argument(
        "--stream", action="store_true", help="run only the streaming (SSE) variant of each scenario"
    )
    parser.add_argument(
        "--scenarios",
        default="all",
        help=f"comma-separated, or 'all' (the default: every scenario, streaming and not); known: {', '.join(SCENARIO_BY_NAME)}",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "latest.md", help="Markdown report path"
    )
    args = parser.parse_args(argv)
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error(f"--concurrency must be comma-separated integers, got {args.concurrency!r}")
    if not args.concurrency or min(args.concurrency) < 1 or args.duration < 1 or args.warmup < 0:
        parser.error("--concurrency values and --duration must be ≥ 1, --warmup ≥ 0")
    try:
        args.scenarios = select_scenarios(args.scenarios, args.stream)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def select_scenarios(spec: str, stream: bool) -> list[Scenario]:
    """Names from --scenarios; `all` means every scenario; --stream keeps only the -stream variants."""
    everything = [s.name for s in SCENARIOS]
    names = everything if spec.strip() == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    if stream:
        names = [n if n.endswith("-stream") else f"{n}-stream" for n in names]
    unknown = [n for n in names if n not in SCENARIO_BY_NAME]
    if unknown or not names:
        raise ValueError(
            f"unknown scenario {', '.join(unknown) or spec!r}; known: {', '.join(SCENARIO_BY_NAME)}, all"
        )
    return [SCENARIO_BY_NAME[n] for n in dict.fromkeys(names)]


def exit_code(report: Report) -> int:
    """2 if any measurement failed, 1 if any target missed, else 0."""
    if report.errors:
        return 2
    return 1 if any(c.ok is False for c in report.checks) else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    load = os.getloadavg()
    runs = len(args.scenarios) * len(args.concurrency) * 2
    say(
        f"benchmark: {runs} wrk runs of {args.warmup} + {args.duration} s, about {runs * (args.warmup + args.duration)} s"
    )
    results = guarded(lambda: run_targets(args))
    if isinstance(results, int):
        return results  # stopped early; guarded() said why
    report = build_report(args.scenarios, args.concurrency, results)
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_markdown(report, args, load))
    say(f"\nwrote {args.out}")
    return exit_code(report)


if __name__ == "__main__":
    sys.exit(main())
