"""Instructions per call, counted by callgrind: ToRouter's own cost, whatever the machine's speed.

Calls per second on a shared machine move by 10% or more between minutes, so a change worth 1%
cannot be seen in them. callgrind counts the instructions the server runs instead, which the same
build repeats to within a fraction of a percent. The count is per call, for the event loop's
thread (where the proxy's work is) and for all of the server's threads. The SQLite usage rows are
written by a child process (store.sqlite_sink), which runs outside callgrind and is not counted.

    .venv/bin/python bench/instructions.py                       # this checkout, pass-through
    .venv/bin/python bench/instructions.py --against HEAD~3      # and the delta to another revision
    .venv/bin/python bench/instructions.py --scenarios all --calls 2000

One worker, on the static nginx upstream, with the suite's keys (rpm, tpm and a budget: limits and
usage accounting on). Each scenario: 400 calls of warm-up, 200 more with counting on, then the
counters are zeroed and `--calls` calls are counted, with the usage flush that follows them.
Needs valgrind (`apt-get install -y valgrind`) besides nginx.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml
from harness import (
    REPO,
    BenchError,
    Processes,
    create_key,
    free_port,
    guarded,
    http_ok,
    say,
    static_upstream,
    stop_on_sigterm,
    wait_ready,
)
from suite import scenarios
from suite.scenarios import ANTHROPIC, MODELS, Scenario
from suite.targets import KEY_LIMITS, group_name, torouter_config

PROMPT = "Summarise CIDR notation in one sentence."
CONCURRENCY = 8
_TOTALS = re.compile(rb"^totals:\s+(\d+)", re.M)  # the costs in the file (its `summary:` is near it)


def request_bytes(scenario: Scenario, key: str) -> bytes:
    """The call the suite's wrk scripts send, as raw HTTP/1.1."""
    model = MODELS[scenario.upstream]
    if scenario.client == ANTHROPIC:
        body = f'{{"model":"{model}","max_tokens":64,"messages":[{{"role":"user","content":"{PROMPT}"}}]'
        body += ',"stream":true}' if scenario.stream else "}"
        auth = f"x-api-key: {key}\r\nanthropic-version: 2023-06-01"
    else:
        body = f'{{"model":"{model}","messages":[{{"role":"user","content":"{PROMPT}"}}],"max_tokens":64'
        body += ',"stream":true,"stream_options":{"include_usage":true}}' if scenario.stream else "}"
        auth = f"Authorization: Bearer {key}"
    head = f"POST {scenario.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n{body}".encode()


async def _drive(port: int, request: bytes, calls: int, connections: int) -> None:
    """Exactly `calls` calls over keep-alive connections; any answer but 200 stops the run."""

    async def one_connection(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(count):
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if head.split(b" ", 2)[1] != b"200":
                    raise BenchError(f"a call was answered {head.splitlines()[0].decode()}")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if length:
                    await reader.readexactly(int(length.group(1)))
                    continue
                while size := int((await reader.readline()).strip(), 16):  # chunked
                    await reader.readexactly(size + 2)
                await reader.readline()
        finally:
            writer.close()

    share, extra = divmod(calls, connections)
    await asyncio.gather(*(one_connection(share + (i < extra)) for i in range(connections)))


def drive(port: int, request: bytes, calls: int) -> None:
    asyncio.run(_drive(port, request, calls, CONCURRENCY))


def totals(out: Path, dump: int) -> tuple[int, int]:
    """(the loop thread's instructions, every thread's) in callgrind's dump number `dump`."""
    loop = everything = 0
    for path in out.parent.glob(f"{out.name}.{dump}-*"):
        found = _TOTALS.search(path.read_bytes())
        count = int(found.group(1)) if found else 0
        everything += count
        if path.name.endswith("-01"):  # thread 1: the main thread, which runs the event loop
            loop = count
    return loop, everything


@contextlib.contextmanager
def one_worker(
    scenario: Scenario,
    workdir: Path,
    procs: Processes,
    env: dict[str, str],
    wrapper: list[str] | None = None,
    timeout: float = 300,
) -> Iterator[tuple[subprocess.Popen[bytes], int, bytes]]:
    """One ToRouter worker on a fresh SQLite store with the suite's config and a key for the
    scenario's group, started under `wrapper` (valgrind, say), ready to serve. Yields the
    process, its port and the scenario's raw request; interrupts and stops it on the way out."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "torouter.yaml"
    config.write_text(yaml.safe_dump(torouter_config(workdir / "bench.db"), sort_keys=False))
    env = {**os.environ, "TOROUTER_SECRET_KEY": "torouter-bench-only", **env}
    argv_prefix = [sys.executable, "-m", "torouter"]
    key = create_key(argv_prefix, config, group_name(scenario.upstream, scenario.stream), KEY_LIMITS, env)
    port = free_port()
    serve = (
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--workers",
        "1",
    )
    name = f"torouter-{workdir.name}"
    proc = procs.start(name, [*(wrapper or []), *argv_prefix, *serve], env, cwd=workdir)
    try:
        wait_ready(
            lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), name, proc, procs, name, timeout=timeout
        )
        yield proc, port, request_bytes(scenario, key)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGINT)
        procs.stop(proc)


def measure(src: Path, scenario: Scenario, calls: int, workdir: Path, procs: Processes) -> tuple[int, int]:
    """Instructions per call (loop thread, all threads) for one build and scenario."""
    out = workdir / "callgrind.out"
    callgrind = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",  # start-up runs at near full speed
        "--separate-threads=yes",
        f"--callgrind-out-file={out}",
        "--dump-instr=no",
        "--dump-line=no",
    ]
    env = {"PYTHONPATH": str(src), "PYTHONHASHSEED": "0"}
    with one_worker(scenario, workdir, procs, env, callgrind) as (proc, port, request):
        drive(port, request, 400)
        control(proc, "--instr=on")
        drive(port, request, 200)
        time.sleep(2.5)  # the warm-up's usage rows go before the count starts
        control(proc, "--zero")
        drive(port, request, calls)
        time.sleep(2.5)  # the counted calls' usage flush (every second by default) is in the count
        control(proc, "--dump")
        loop, everything = totals(out, 1)
    if not loop:
        raise BenchError(f"callgrind wrote no counts: {procs.log_tail(f'torouter-{workdir.name}', 5)}")
    return round(loop / calls), round(everything / calls)


def control(proc: subprocess.Popen[bytes], command: str) -> None:
    done = subprocess.run(["callgrind_control", command, str(proc.pid)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"callgrind_control {command} failed: {(done.stderr or done.stdout).strip()}")


@contextlib.contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """A detached worktree of `rev`, removed afterwards; its src/ is what gets measured."""
    path = Path(tempfile.mkdtemp(prefix="torouter-rev-"))
    git = ["git", "-C", str(REPO)]
    done = subprocess.run(
        [*git, "worktree", "add", "--detach", str(path), rev], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise BenchError(f"git worktree add {rev} failed: {done.stderr.strip()}")
    try:
        yield path / "src"
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(path)], capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="passthrough", help="as bench/compare.py takes them")
    parser.add_argument("--calls", type=int, default=1000, help="calls counted per scenario (default 1000)")
    parser.add_argument(
        "--against", metavar="REV", help="also measure this git revision, and show the change"
    )
    return scenarios.parse_args_with_scenarios(parser, argv)


def run(args: argparse.Namespace) -> None:
    for tool in ("valgrind", "callgrind_control", "nginx"):
        if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
            raise BenchError(f"{tool} not found; install it with: apt-get install -y valgrind nginx")
    with tempfile.TemporaryDirectory(prefix="torouter-instructions-") as tmp, static_upstream():
        procs = Processes(Path(tmp))
        try:
            builds = {"this checkout": REPO / "src"}
            with contextlib.ExitStack() as stack:
                if args.against:
                    builds = {args.against: stack.enter_context(checkout(args.against)), **builds}
                counts = {
                    (label, s.name): measure(src, s, args.calls, Path(tmp) / f"{i}-{j}", procs)
                    for i, (label, src) in enumerate(builds.items())
                    for j, s in enumerate(args.scenarios)
                }
        finally:
            procs.stop_all()
    print(table(args, list(builds), counts))


def table(args: argparse.Namespace, labels: list[str], counts: dict[tuple[str, str], tuple[int, int]]) -> str:
    head = "| scenario | " + " | ".join(f"{label}: loop thread | all threads" for label in labels)
    lines = [head + (" | change (loop thread) |" if len(labels) == 2 else " |")]
    lines.append("| --- " + "| --: " * (2 * len(labels) + (len(labels) == 2)) + "|")
    for s in args.scenarios:
        cells = [f"{n:,}" for label in labels for n in counts[(label, s.name)]]
        if len(labels) == 2:
            old, new = counts[(labels[0], s.name)][0], counts[(labels[1], s.name)][0]
            cells.append(f"{100 * (new - old) / old:+.1f}%")
        lines.append(f"| {s.name} | " + " | ".join(cells) + " |")
    return f"Instructions per call ({args.calls} calls at c={CONCURRENCY}, callgrind):\n\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    stop_on_sigterm()
    say("counting instructions under callgrind: a few minutes per scenario and build")
    result = guarded(lambda: run(parse_args(argv)))
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
