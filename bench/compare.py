"""ToRouter side by side with the floor, nginx direct, the LiteLLM proxy and Portkey's gateway.

One command installs the peers on first use, starts everything on free ports in front of the
static nginx upstream, loads each target with wrk (OpenAI chat and Anthropic messages, pass-through
and translated, streaming and not, at each concurrency, with one worker and with all cores),
times the first token of streams, checks issue #11's targets, writes docs/benchmarks.md with PNG
charts, and stops what it started. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path
from typing import Any

from harness import (
    REPO,
    Processes,
    check_tools,
    command_line,
    cpu_model,
    git_revision,
    guarded,
    machine_summary,
    now_iso,
    say,
    static_upstream,
    stop_on_sigterm,
    tool_version,
)
from suite import markdown, scenarios
from suite.goals import Check, Goals
from suite.peers import HONO_NODE_SERVER, LiteLLM, Portkey
from suite.runner import CALLS_PER_ROUND, MAX_ROUND_S, Results, Runner, Settings
from suite.targets import Floor, Nginx, Target, ToRouter

KINDS: dict[str, type[Target]] = {
    "nginx": Nginx,
    "floor": Floor,
    "torouter": ToRouter,
    "litellm": LiteLLM,
    "portkey": Portkey,
}
CHARTS_VENV = REPO / "bench" / ".venvs" / "charts"


def results_json(out: Path) -> Path:
    """Every figure of a run, beside the other results: docs/benchmarks.md → bench/results/benchmarks.json."""
    return REPO / "bench" / "results" / f"{out.stem}.json"


DEFAULTS = {
    "targets": ",".join(KINDS),
    "scenarios": "all",
    "concurrency": "1,32,256",
    "workers": "1,all",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument(
        "--targets", default=DEFAULTS["targets"], help=f"comma-separated (default {DEFAULTS['targets']})"
    )
    p.add_argument(
        "--scenarios",
        default=DEFAULTS["scenarios"],
        help="comma-separated names, or all, passthrough, translated, stream, nostream; names: "
        + ", ".join(s.name.replace("→", "->") for s in scenarios.SCENARIOS),
    )
    p.add_argument(
        "--concurrency", default=DEFAULTS["concurrency"], help="wrk connections (default 1,32,256)"
    )
    p.add_argument(
        "--workers", default=DEFAULTS["workers"], help="worker counts; all = every core (default 1,all)"
    )
    p.add_argument("--duration", type=int, default=2, help="seconds per measured wrk round (default 2)")
    p.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="rounds per cell, targets in turn; a cell is their median (default 5)",
    )
    p.add_argument(
        "--warmup", type=int, default=1, help="seconds of wrk before each measured run (default 1)"
    )
    p.add_argument(
        "--target-warmup",
        type=int,
        default=2,
        help="seconds of load per target before its first scenario run",
    )
    p.add_argument(
        "--wrk-timeout", type=int, default=10, help="wrk's per-call timeout in seconds (default 10)"
    )
    p.add_argument(
        "--ttft-calls", type=int, default=300, help="calls per target for time to first token; 0: skip"
    )
    p.add_argument("--out", type=Path, help="Markdown report (default docs/benchmarks.md for the full run)")
    p.add_argument("--no-charts", action="store_true", help="skip the PNG charts (and the matplotlib venv)")
    p.add_argument(
        "--from-json",
        type=Path,
        help="measure nothing: write the report and charts again from a saved bench/results/*.json",
    )
    args = p.parse_args(argv)
    try:
        args.scenarios = scenarios.select(args.scenarios)
        args.concurrency = sorted({int(c) for c in args.concurrency.split(",") if c.strip()})
        cores = os.cpu_count() or 1
        args.workers = sorted(
            {cores if w.strip() == "all" else int(w) for w in args.workers.split(",") if w.strip()}
        )
        args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    except ValueError as exc:
        p.error(str(exc))
    unknown = [t for t in args.targets if t not in KINDS]
    if unknown or not args.targets:
        p.error(f"unknown target {', '.join(unknown)}; known: {', '.join(KINDS)}")
    if not args.concurrency or min(args.concurrency) < 1 or not args.workers or min(args.workers) < 1:
        p.error("--concurrency and --workers values must be ≥ 1")
    if (
        args.duration < 1
        or args.rounds < 1
        or args.warmup < 0
        or args.target_warmup < 0
        or args.ttft_calls < 0
    ):
        p.error("--duration must be ≥ 1; --warmup, --target-warmup and --ttft-calls ≥ 0")
    raw = {k: v for k, v in vars(p.parse_args(argv)).items() if k in DEFAULTS}
    args.full = raw == DEFAULTS
    if args.out is None and not args.from_json:
        args.out = REPO / ("docs/benchmarks.md" if args.full else "bench/results/compare.md")
    return args


def build_targets(args: argparse.Namespace, procs: Processes, workdir: Path) -> list[Target]:
    """One target per kind and worker count, ordered so ToRouter runs right after its floor."""
    targets: list[Target] = []
    for i, w in enumerate(args.workers):
        for kind in KINDS:
            single = KINDS[kind].single
            if kind not in args.targets or (single and i > 0):
                continue
            targets.append(KINDS[kind](procs, workdir, 1 if single else w))
    return targets


def ensure_charts_venv() -> Path | None:
    python = CHARTS_VENV / "bin" / "python"
    check = [str(python), "-c", "import matplotlib"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    say(f"installing matplotlib into {CHARTS_VENV.relative_to(REPO)} (once; kept between runs)")
    venv.create(CHARTS_VENV, with_pip=True, clear=True)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "matplotlib"], capture_output=True, text=True
    )
    if done.returncode != 0:
        say(f"no charts: pip install matplotlib failed: {done.stderr.strip()[-300:]}")
        return None
    return python


def draw_charts(data_path: Path, out_dir: Path, md_dir: Path) -> list[tuple[str, str]]:
    python = ensure_charts_venv()
    if python is None:
        return []
    for old in out_dir.glob("*.png"):
        old.unlink()
    script = REPO / "bench" / "suite" / "charts.py"
    done = subprocess.run(
        [str(python), str(script), str(data_path), str(out_dir)], capture_output=True, text=True
    )
    if done.returncode != 0:
        say(f"charts failed: {done.stderr.strip()[-500:]}")
        return []
    titles = {
        "throughput": "calls/s by target and scenario",
        "latency": "latency p50 and p99 at c=1",
        "scaling": "calls/s by concurrency",
        "ttft": "time to first token",
    }
    charts = []
    for line in done.stdout.split():
        path = Path(line)
        title = titles.get(path.stem.split("-")[0], path.stem)
        charts.append((title, os.path.relpath(path, md_dir)))
    return charts


def run_meta(
    args: argparse.Namespace, targets: list[Target], load: tuple[float, ...], results: Results, revision: str
) -> dict[str, Any]:
    """The facts of the run the report states: machine, load, versions, method, command."""
    loads = [cell.load for cell in results.cells.values() if cell.result]
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    after = os.getloadavg()
    kinds = {t.kind: t for t in targets}
    versions = []
    if "torouter" in kinds:
        versions.append(f"- ToRouter {kinds['torouter'].version()}, revision {revision}")
    if "litellm" in kinds:
        versions.append(
            f"- LiteLLM proxy {kinds['litellm'].version()} (`litellm[proxy]`, own venv bench/.venvs/litellm)"
        )
    if "portkey" in kinds:
        node = tool_version(["node", "--version"], r"v(\S+)")
        versions.append(
            f"- Portkey gateway {kinds['portkey'].version()} on Node {node},"
            f" with @hono/node-server {HONO_NODE_SERVER}"
        )
    if "floor" in kinds:
        versions.append(
            "- floor: shared/bench/floor/asgi_floor.py, uvicorn + uvloop + httptools, aiohttp client"
        )
    workers = ", ".join(str(w) for w in args.workers)
    method = [
        f"- method: wrk -t1 --latency --timeout {args.wrk_timeout}s; per target and scenario, one checked"
        f" call and {args.target_warmup} s of load; per cell, {args.warmup} s of warm-up, then"
        f" {args.rounds} rounds of {args.duration} s with the targets in turn, each cell the median of its"
        f" rounds; concurrency {', '.join(str(c) for c in args.concurrency)};"
        f" workers {workers} (wrk and the servers share the cores)",
        f"- a target whose calls at some concurrency would outlast a round gets rounds long enough for"
        f" {CALLS_PER_ROUND} calls per connection, up to {MAX_ROUND_S} s; one slower still is not measured",
        "- translated against pass-through: in a translated scenario's rounds at c=1 and c=32, ToRouter"
        " ×1, the floor ×1 and nginx direct also run the pass-through twin, right after ToRouter's"
        ' translated round; the translation checks compare those ("same rounds"), not cells measured'
        " minutes apart",
        f"- time to first token: {args.ttft_calls} sequential calls per target after 30 of warm-up",
    ]
    machine = [
        f"- machine: {cpu_model()}, {machine_summary()}, {mem_gb:.0f} GiB",
        f"- 1-minute load average: {load[0]:.2f} before the run, {after[0]:.2f} after,"
        f" {min(loads, default=0):.2f} to {max(loads, default=0):.2f} as the cells started"
        " (wrk and one busy server make about 2)",
    ]
    return {
        "command": command_line(),
        "date": now_iso(),
        "machine": machine,
        "versions": versions,
        "method": method,
        "full": args.full,
        "workers": args.workers,
    }


def save_json(
    path: Path, args: argparse.Namespace, targets: list[Target], results: Results, meta: dict[str, Any]
) -> None:
    data = {
        "meta": meta,
        "targets": [{"id": t.id, "label": t.label, "kind": t.kind, "workers": t.workers} for t in targets],
        "scenarios": [{"name": s.name, "title": s.title} for s in args.scenarios],
        "concurrencies": args.concurrency,
        **results.to_json(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False))


def load_json(args: argparse.Namespace) -> tuple[list[Target], Results, dict[str, Any]]:
    """--from-json: a saved run's targets, figures and facts, to report again without measuring."""
    data = json.loads(args.from_json.read_text())
    meta = data["meta"]
    args.scenarios = [scenarios.BY_NAME[s["name"]] for s in data["scenarios"]]
    args.concurrency = data["concurrencies"]
    args.workers = meta["workers"]
    if args.out is None:
        args.out = REPO / ("docs/benchmarks.md" if meta["full"] else "bench/results/compare.md")
    procs = Processes(Path(tempfile.gettempdir()))  # nothing is started
    targets = [KINDS[t["kind"]](procs, Path(tempfile.gettempdir()), t["workers"]) for t in data["targets"]]
    return targets, Results.from_json(data), meta


def measure(args: argparse.Namespace) -> tuple[list[Target], Results, dict[str, Any]]:
    load = os.getloadavg()
    revision = git_revision()  # what the servers start from, whatever is committed meanwhile
    check_tools()
    with tempfile.TemporaryDirectory(prefix="torouter-compare-") as tmp, static_upstream():
        procs = Processes(Path(tmp))
        targets = build_targets(args, procs, Path(tmp))
        settings = Settings(
            args.concurrency,
            args.duration,
            args.rounds,
            args.warmup,
            args.target_warmup,
            args.wrk_timeout,
            args.ttft_calls,
        )
        try:
            results = Runner(targets, settings, Path(tmp)).run(args.scenarios)
        finally:
            procs.stop_all()
            logs = REPO / "bench" / "results" / "compare-logs"
            shutil.rmtree(logs, ignore_errors=True)
            shutil.copytree(tmp, logs, ignore=shutil.ignore_patterns("*.db*", "*.lua"))
    meta = run_meta(args, targets, load, results, revision)
    save_json(results_json(args.out), args, targets, results, meta)
    return targets, results, meta


def print_checks(checks: list[Check]) -> None:
    print()
    for c in checks:
        print(f"{c.verdict:<4}  {c.goal} [{c.scenario}, {c.workers}]: {c.measured} (goal {c.wanted})")


def exit_code(checks: list[Check]) -> int:
    if any(c.ok is False for c in checks):
        return 1
    return 2 if any(c.ok is None for c in checks) else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    started = time.monotonic()
    outcome = guarded(lambda: load_json(args) if args.from_json else measure(args))
    if isinstance(outcome, int):
        return outcome  # stopped early; guarded() said why
    targets, results, meta = outcome
    checks = Goals(results, args.scenarios, args.concurrency, args.workers).all()
    charts_dir = args.out.parent / args.out.stem  # docs/benchmarks.md → docs/benchmarks/
    data_path = args.from_json or results_json(args.out)
    charts = [] if args.no_charts else draw_charts(data_path, charts_dir, args.out.parent)
    info = markdown.RunInfo(
        meta["command"], meta["date"], meta["machine"], meta["versions"], meta["method"], charts
    )
    report = markdown.render(info, args.scenarios, targets, args.concurrency, results, checks)
    markdown.write(args.out, report)
    print_checks(checks)
    say(f"\nwrote {args.out} ({len(charts)} charts) in {(time.monotonic() - started) / 60:.1f} min")
    return exit_code(checks)


if __name__ == "__main__":
    sys.exit(main())
