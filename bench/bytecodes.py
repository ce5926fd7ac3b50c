"""Bytecodes per call, by function: where the Python part of a call's cost is, in seconds.

callgrind (bench/instructions.py) says what a call costs but not in which Python function:
CPython's interpreter loop runs them all. This counts the bytecodes each function runs on the
event loop's thread, with sys.settrace's opcode events, over a fixed number of calls. The counts
are exact and repeat from run to run; the tracing slows the server down a hundredfold, so they
say nothing about time. A bytecode cost about 60 to 100 instructions on the proxy path here
(interpreter, allocation, the C work it calls), so 100 fewer per call are about 0.7%.

    .venv/bin/python bench/bytecodes.py                          # chat-stream, top functions
    .venv/bin/python bench/bytecodes.py --scenarios messages --top 60
    .venv/bin/python bench/bytecodes.py --lines torouter/accounting/limits.py

One worker, on the static nginx upstream, with the suite's keys (limits and usage on), as
bench/instructions.py runs it: 500 calls of warm-up, then `--calls` traced.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from harness import (
    REPO,
    BenchError,
    Processes,
    guarded,
    say,
    static_upstream,
    stop_on_sigterm,
)
from instructions import drive, one_worker
from suite import scenarios
from suite.scenarios import Scenario

# Loaded into the server through PYTHONPATH: SIGUSR1 starts counting on the main thread (the
# event loop's), SIGUSR2 stops and writes "count<TAB>file<TAB>line<TAB>function" lines.
TRACER = """
import os, signal, sys
from collections import Counter

counts = Counter()
by_line = os.environ.get("BYTECODE_LINES") == "1"

def count(key):
    def local(frame, event, arg):
        if event == "opcode":
            # f_lineno is None on the few instructions no line owns
            counts[(frame.f_code.co_filename, frame.f_lineno or 0, key[2]) if by_line else key] += 1
        return local
    return local

tracers = {}

def start_frame(frame, event, arg):
    code = frame.f_code
    tracer = tracers.get(code)
    if tracer is None:
        if code.co_filename == "<string>":  # dataclass-made methods: named by their class
            owner = type(frame.f_locals.get("self")).__name__
            frame.f_trace_opcodes = True
            return count(("<string>", 0, owner + "." + code.co_name))
        tracer = tracers[code] = count((code.co_filename, code.co_firstlineno, code.co_qualname))
    frame.f_trace_opcodes = True
    return tracer

def on(signum, frame):
    counts.clear()
    sys.settrace(start_frame)

def off(signum, frame):
    sys.settrace(None)
    with open(os.environ["BYTECODE_OUT"], "w") as out:
        for (path, line, name), n in counts.items():
            out.write(f"{n}\\t{path}\\t{line}\\t{name}\\n")

signal.signal(signal.SIGUSR1, on)
signal.signal(signal.SIGUSR2, off)
"""


def short_path(path: str) -> str:
    """A module's path from its package: torouter/..., aiohttp/..., asyncio/..."""
    for marker in ("/site-packages/", "/src/"):
        if marker in path:
            return path.split(marker, 1)[1]
    parts = Path(path).parts
    return "/".join(parts[-2:]) if len(parts) > 1 else path


def read_counts(path: Path, calls: int) -> list[tuple[float, str, int, str]]:
    """(bytecodes per call, module, line, function), most first."""
    rows = []
    for line in path.read_text().splitlines():
        n, file, at, name = line.split("\t")
        rows.append((int(n) / calls, short_path(file), int(at), name))
    return sorted(rows, key=lambda r: -r[0])


def by_module(rows: list[tuple[float, str, int, str]]) -> list[tuple[float, str]]:
    totals: Counter[str] = Counter()
    for n, module, _, _ in rows:
        totals[module] += n
    return [(n, m) for m, n in totals.most_common()]


def measure(scenario: Scenario, calls: int, lines: bool, workdir: Path, procs: Processes) -> Path:
    tracer = workdir / "tracer"
    tracer.mkdir(parents=True)
    (tracer / "sitecustomize.py").write_text(TRACER)
    out = workdir / "bytecodes.tsv"
    env = {
        "PYTHONPATH": f"{tracer}{os.pathsep}{REPO / 'src'}",
        "BYTECODE_OUT": str(out),
        "BYTECODE_LINES": "1" if lines else "0",
    }
    with one_worker(scenario, workdir, procs, env, timeout=30) as (proc, port, request):
        drive(port, request, 500)
        time.sleep(1.5)  # the warm-up's usage rows and metrics go before the count starts
        os.kill(proc.pid, signal.SIGUSR1)
        drive(port, request, calls)
        time.sleep(1.5)  # their flush (every second by default) is in the count
        os.kill(proc.pid, signal.SIGUSR2)
        for _ in range(100):
            if out.exists() and out.stat().st_size:
                break
            time.sleep(0.1)
    if not out.exists():
        raise BenchError(f"the server wrote no counts: {procs.log_tail(f'torouter-{workdir.name}', 5)}")
    return out


def report(scenario: Scenario, rows: list[tuple[float, str, int, str]], args: argparse.Namespace) -> str:
    total = sum(r[0] for r in rows)
    text = [f"## {scenario.name}: {total:,.0f} bytecodes per call ({args.calls} calls)", ""]
    if args.lines:
        mine = [r for r in rows if r[1] == args.lines]
        text += ["| line | per call | function |", "| --: | --: | --- |"]
        text += [f"| {line} | {n:.1f} | {name} |" for n, _, line, name in sorted(mine, key=lambda r: r[2])]
        return "\n".join(text)
    own = sum(n for n, module in by_module(rows) if module.startswith("torouter/"))
    text += [f"ToRouter's own modules: {own:,.0f}.", "", "| per call | module |", "| --: | --- |"]
    text += [f"| {n:,.0f} | {m} |" for n, m in by_module(rows)[: args.top]]
    text += ["", "| per call | function | where |", "| --: | --- | --- |"]
    text += [f"| {n:,.0f} | {name} | {module}:{line} |" for n, module, line, name in rows[: args.top]]
    return "\n".join(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="chat-stream", help="as bench/compare.py takes them")
    parser.add_argument("--calls", type=int, default=2000, help="calls traced per scenario (default 2000)")
    parser.add_argument("--top", type=int, default=40, help="rows of each table (default 40)")
    parser.add_argument("--lines", metavar="MODULE", help="per line of one module, e.g. torouter/auth.py")
    return scenarios.parse_args_with_scenarios(parser, argv)


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="torouter-bytecodes-") as tmp, static_upstream():
        procs = Processes(Path(tmp))
        try:
            for i, scenario in enumerate(args.scenarios):
                workdir = Path(tmp) / str(i)
                workdir.mkdir()
                out = measure(scenario, args.calls, bool(args.lines), workdir, procs)
                print(report(scenario, read_counts(out, args.calls), args) + "\n")
        finally:
            procs.stop_all()


def main(argv: list[str] | None = None) -> int:
    stop_on_sigterm()
    say("counting bytecodes per call: about half a minute per scenario")
    result = guarded(lambda: run(parse_args(argv)))
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
