"""A bounded soak test: mixed load on every surface, with client hang-ups and upstream faults.

It starts the vendor emulator and the real gateway as two subprocesses, drives streaming and
whole calls at the gateway for `--duration` seconds, and checks that its resident memory stays
flat, that it leaks no file descriptors, and that every call that completed left its usage row.
See bench/README.md. `run_soak()` is the importable core; tests/test_soak.py runs a short soak.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

try:
    from bench.soak_calls import ROUTES, SCRIPTED_TIMEOUTS, UNCLEAN, Driver, Tally
except ModuleNotFoundError:  # run as a script: this folder is on sys.path, the repository is not
    from soak_calls import ROUTES, SCRIPTED_TIMEOUTS, UNCLEAN, Driver, Tally

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"

RSS_TOLERANCE = 0.10  # the last window's peak may exceed the first window's median by this much
WINDOW_SHARE = 0.2  # each RSS window is this share of the measured load
FD_SLACK = 3  # descriptors the idle gateway may hold at the end beyond its idle count after warm-up
# The store's files (soak.db and its -wal, -shm) are counted apart: each worker's connection pool
# keeps up to POOL_KEPT connections open once a burst has needed them (SQLAlchemy's default
# pool_size), each holding up to STORE_FILES descriptors. Growth to that bound is no leak.
STORE_NAME = "soak.db"
POOL_KEPT = 5
STORE_FILES = 3
SETTLE_MIN = 7.0  # seconds: idle upstream connections close after 4-5 s (aiohttp 4 s, uvicorn 5 s)
SETTLE_STABLE = 2.0  # ... and the count must then hold still this long
SETTLE_MAX = 25.0
USAGE_WAIT = 15.0  # seconds the usage writer gets to flush what it holds
MIXED_WARMUP = 5.0  # seconds of mixed load in the warm-up at least, after the caches are filled
FILL_MARGIN = 1.0  # workers may not share connections evenly; a worker left short grows a little
MEASURED_SHARE = 0.5  # of the duration at least is measured load, even when the warm-up runs over


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TOROUTER_CONFIG", None)
    return env


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: exited {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=0.5) as resp:
            if resp.status == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url}: not ready after {timeout:.0f} s:\n{log.read_text(errors='replace')[-4000:]}")


@contextlib.contextmanager
def running(cmd: list[str], ready_url: str, log: Path, cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, stopped with SIGTERM (then SIGKILL) when the block ends, whatever happens."""
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=child_env(), cwd=cwd)
    try:
        wait_ready(proc, ready_url, log)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the supervisor passes it on to its workers), then SIGKILL to the whole tree."""
    if proc.poll() is not None:
        return
    tree = process_tree(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        for pid in tree:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


def gateway_config(emulator_url: str, db_path: Path) -> dict[str, Any]:
    """A plain group per route, and a scripted group with an account of its own (see soak_calls)."""

    def base(platform: str, root: str = emulator_url) -> str:
        return root + "/v1" if platform == "openai" else root

    upstreams: list[dict[str, Any]] = [
        {"name": f"emu-{p}", "platform": p, "base_url": base(p), "api_key": f"sk-soak-{p}"}
        for p in ("openai", "anthropic", "gemini")
    ]
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    upstreams.append(
        {"name": "dead-openai", "platform": "openai", "base_url": base("openai", dead), "api_key": "sk-dead"}
        | {"priority": 10, "timeouts": {"connect": 1}}
    )
    groups: list[dict[str, Any]] = []
    for route in ROUTES:
        mapping = {"models": dict(route.models)} if route.models else {}
        accounts = ["dead-openai", "emu-openai"] if route.failover else [f"emu-{route.platform}"]
        groups.append({"name": route.name, "platform": route.platform, "upstreams": accounts, **mapping})
        if route.failover:
            continue
        account = f"scripted-{route.name}"
        upstreams.append(
            {
                "name": account,
                "platform": route.platform,
                "base_url": base(route.platform),
                "api_key": route.credential,
                "timeouts": SCRIPTED_TIMEOUTS,
            }
        )
        groups.append(
            {"name": f"{route.name}-scripted", "platform": route.platform, "upstreams": [account], **mapping}
        )
    return {
        "database_url": f"sqlite+aiosqlite:///{db_path}",
        "usage_flush_interval": 0.2,
        "log_level": "warning",
        "upstreams": upstreams,
        "groups": groups,
    }


def stored_responses_to_fill(workers: int | None) -> int:
    """Calls that fill every worker's bounded cache of stored Responses answers (see Driver.fill)."""
    sys.path.insert(0, str(SRC))
    from torouter.server import cpu_cores
    from torouter.store.responses import ResponseStore

    size = inspect.signature(ResponseStore.__init__).parameters["cache_size"].default
    return int(size * (workers or cpu_cores()) * FILL_MARGIN)


def make_keys(config_path: Path, groups: list[str]) -> dict[str, str]:
    """One key per group, made in-process: `torouter keys create` would cost a process per group."""
    sys.path.insert(0, str(SRC))
    from torouter.config import load_settings
    from torouter.gateway import prepare_store
    from torouter.store.db import make_engine, sessionmaker
    from torouter.store.keys import KeyOptions, create_key

    settings = load_settings(config_path)

    async def main() -> dict[str, str]:
        engine = make_engine(settings.database_url)
        sessions = sessionmaker(engine)
        try:
            await prepare_store(engine, sessions, settings)
            async with sessions() as session, session.begin():
                return {g: (await create_key(session, g, KeyOptions(name=f"soak-{g}")))[1] for g in groups}
        finally:
            await engine.dispose()

    return asyncio.run(main())


# ---------------------------------------------------------------- measuring the gateway


@dataclass(slots=True)
class Sample:
    t: float  # seconds since the load began
    phase: str  # warmup, settle-1, load, settle-2
    rss_mb: float  # summed over the gateway's processes (the supervisor, its workers, their helpers)
    fds: int
    sockets: int
    rss_by_pid: dict[int, float]
    helpers: tuple[int, ...] = ()  # the workers' usage writers (store.sqlite_sink), started on demand
    store_fds: int = 0  # of `fds`, those open on the store's files (see STORE_NAME)

    @property
    def pids(self) -> list[int]:
        return sorted(self.rss_by_pid)


def process_tree(pid: int) -> list[int]:
    """A process and its descendants: `serve` runs a supervisor with one worker per core."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for children in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in children.read_text().split()]
    return sorted(found)


def helpers_of(pids: list[int]) -> tuple[int, ...]:
    """The usage-writer children among a tree's processes: each worker starts one at its first
    flush, so they join the tree after it started."""
    found = []
    for p in pids:
        with contextlib.suppress(OSError):
            if b"torouter.store.sqlite_sink" in Path(f"/proc/{p}/cmdline").read_bytes():
                found.append(p)
    return tuple(found)


def measure(pid: int) -> tuple[dict[int, float], int, int, int]:
    """({pid: VmRSS in MB}, open descriptors, how many are sockets, how many are on the store's
    files) of a process tree, from /proc."""
    rss: dict[int, float] = {}
    fds = sockets = store = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):  # a process that just ended
            with open(f"/proc/{p}/status") as status:
                kb = next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
                rss[p] = round(kb / 1024, 2)
            for name in os.listdir(f"/proc/{p}/fd"):
                with contextlib.suppress(OSError):  # closed between listdir and readlink
                    target = os.readlink(f"/proc/{p}/fd/{name}")
                    sockets += target.startswith("socket:")
                    store += Path(target).name.startswith(STORE_NAME)
                    fds += 1
    return rss, fds, sockets, store


class Sampler:
    """Samples the gateway's RSS and descriptors once a second, tagged with the current phase."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[Sample] = []
        self.phase = "warmup"
        self.started = time.monotonic()

    def take(self) -> Sample:
        rss, fds, sockets, store = measure(self.pid)
        t = round(time.monotonic() - self.started, 2)
        helpers = helpers_of(list(rss))
        sample = Sample(t, self.phase, round(sum(rss.values()), 2), fds, sockets, rss, helpers, store)
        self.samples.append(sample)
        return sample

    async def run(self) -> None:
        while True:
            self.take()
            await asyncio.sleep(1.0)

    async def settle(self) -> Sample:
        """The idle sample: once SETTLE_MIN has passed and the descriptors held still SETTLE_STABLE."""
        start = last_change = time.monotonic()
        last = measure(self.pid)[1]
        while True:
            await asyncio.sleep(0.25)
            now, fds = time.monotonic(), measure(self.pid)[1]
            if fds != last:
                last, last_change = fds, now
            waited = now - start
            if waited >= SETTLE_MAX or (waited >= SETTLE_MIN and now - last_change >= SETTLE_STABLE):
                return self.take()


# ---------------------------------------------------------------- checks and the report


@dataclass(slots=True)
class Check:
    passed: bool
    detail: str
    enforced: bool = True  # a check that is not only reports


@dataclass(slots=True)
class SoakReport:
    duration: float
    warmup: float
    concurrency: int
    seed: int
    calls: int
    calls_per_second: float
    planned: dict[str, int]
    outcomes: dict[str, int]
    statuses: dict[str, int]
    completed_by_surface: dict[str, int]
    rss_baseline_mb: float
    rss_end_mb: float
    rss_peak_mb: float
    rss_idle_mb: tuple[float, float]  # idle after warm-up, idle at the end
    fds_idle: tuple[int, int]
    sockets_idle: tuple[int, int]
    fds_peak: int
    usage_rows_matched: int
    usage_rows_missing: list[str]
    usage_rows_duplicated: list[str]
    hung_up: int
    hung_up_without_row: list[str]
    pending_steps: int
    gateway_log_errors: list[str]
    unclean: list[str]
    checks: dict[str, Check]
    samples: list[Sample]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks.values() if c.enforced)

    def summary(self) -> str:
        width = max(map(len, self.completed_by_surface), default=0)
        lines = [
            f"soak: {self.duration:.0f} s of load ({self.warmup:.0f} s warm-up), "
            f"concurrency {self.concurrency}, seed {self.seed}",
            f"calls: {self.calls} ({self.calls_per_second:.1f}/s); planned {self.planned}",
            f"outcomes: {self.outcomes}",
            f"statuses: {dict(sorted(self.statuses.items()))}",
            f"gateway processes: {len(self.samples[-1].pids) if self.samples else 0} (supervisor, workers "
            f"and {len(self.samples[-1].helpers) if self.samples else 0} usage writers)",
            f"RSS MB: baseline {self.rss_baseline_mb:.1f}, end-window max {self.rss_end_mb:.1f}, "
            f"peak {self.rss_peak_mb:.1f}; idle {self.rss_idle_mb[0]:.1f} -> {self.rss_idle_mb[1]:.1f}",
            f"fds idle: {self.fds_idle[0]} -> {self.fds_idle[1]} (sockets {self.sockets_idle[0]} -> "
            f"{self.sockets_idle[1]}); peak under load {self.fds_peak}",
            f"usage rows: {self.usage_rows_matched} matched, {len(self.usage_rows_missing)} missing, "
            f"{len(self.usage_rows_duplicated)} duplicated; hung-up calls {self.hung_up} "
            f"({len(self.hung_up_without_row)} with no row); scripted steps left {self.pending_steps}",
            "completed calls per surface:",
            *(f"  {name:<{width}}  {n}" for name, n in sorted(self.completed_by_surface.items())),
            *(f"unclean: {u}" for u in self.unclean[:10]),
            *(f"gateway log: {e}" for e in self.gateway_log_errors[:10]),
            *(f"{verdict(c)} {name}: {c.detail}" for name, c in self.checks.items()),
        ]
        return "\n".join(lines)


@dataclass(slots=True)
class Run:
    """What one soak run gathered, before it is judged."""

    duration: float
    warmup: float
    concurrency: int
    seed: int
    tally: Tally
    samples: list[Sample]
    idle: tuple[Sample, Sample]  # after warm-up, at the end
    rows: Counter[str]  # usage rows per request id, for the ids the client saw
    pending_steps: int
    log_errors: list[str]


def verdict(check: Check) -> str:
    return "PASS" if check.passed else "FAIL" if check.enforced else "NOTE"


def windows(load: list[Sample], rss_of: Callable[[Sample], float]) -> tuple[float, float]:
    """(median of the first window, max of the last window) of one RSS series under load."""
    window = max((load[-1].t - load[0].t) * WINDOW_SHARE, 3.0)
    baseline = statistics.median(rss_of(s) for s in load if s.t <= load[0].t + window)
    return baseline, max(rss_of(s) for s in load if s.t >= load[-1].t - window)


def check_rss(samples: list[Sample]) -> tuple[Check, float, float, float]:
    """(check, baseline, end, peak of the whole tree): for each gateway process, the median of the
    measured load's first window against the peak of its last window. A leak grows the end; a
    passing spike mid-run does not fail it. Each process on its own, so the supervisor's steady
    memory does not dilute a worker's leak."""
    load = [s for s in samples if s.phase == "load"]
    if len(load) < 4:
        return Check(False, "too few samples under load"), 0.0, 0.0, 0.0
    baseline, end = windows(load, lambda s: s.rss_mb)
    peak = max(s.rss_mb for s in load)
    # A worker that died and came back starts small again: that hides a leak. The workers' usage
    # writers join when they first flush; under load, they too must be the same ones throughout.
    workers = {tuple(p for p in s.pids if p not in s.helpers) for s in samples}
    trees = {tuple(s.pids) for s in load}
    if len(workers) > 1 or len(trees) > 1:
        changed = sorted(workers) if len(workers) > 1 else sorted(trees)
        return Check(False, f"the gateway's processes changed: {changed}"), baseline, end, peak
    growth = [windows(load, lambda s, pid=pid: s.rss_by_pid[pid]) for pid in load[0].pids]
    first, last = max(growth, key=lambda pair: pair[1] / pair[0])
    detail = (
        f"the most grown of {len(growth)} processes: end-window max {last:.1f} MB vs first-window "
        f"median {first:.1f} MB ({(last / first - 1) * 100:+.1f} %, limit +{RSS_TOLERANCE:.0%}); "
        f"all together {baseline:.1f} -> {end:.1f} MB"
    )
    passed = all(b <= a * (1 + RSS_TOLERANCE) for a, b in growth)
    return Check(passed, detail), baseline, end, peak


def check_fds(before: Sample, after: Sample) -> Check:
    """Idle at the end against idle after warm-up: the descriptors beside the store's within
    FD_SLACK, and those on the store within what the pools may keep."""
    other_before, other_after = before.fds - before.store_fds, after.fds - after.store_fds
    # Beside the supervisor and the writers: an upper bound, since multiprocessing's resource
    # tracker, when the supervisor has one, counts as a worker here.
    workers = max(1, len(after.pids) - len(after.helpers) - 1)
    # Each worker's pool, each writer's one connection, and the supervisor's (it migrates the store).
    store_limit = STORE_FILES * (POOL_KEPT * workers + len(after.helpers) + 1)
    other_limit = other_before + FD_SLACK
    return Check(
        other_after <= other_limit and after.store_fds <= store_limit,
        f"{after.fds} open when idle at the end vs {before.fds} when idle after warm-up; beside the "
        f"store {other_after} vs {other_before} (limit {other_limit}), on the store {after.store_fds} "
        f"vs {before.store_fds} (limit {store_limit} for {workers} workers' pools); "
        f"sockets {before.sockets} -> {after.sockets}",
    )


def judge_run(run: Run, strict: bool = False) -> SoakReport:
    tally, (before, after) = run.tally, run.idle
    rss, baseline, end, peak = check_rss(run.samples)
    fds = check_fds(before, after)
    completed = set(tally.completed_ids)
    missing = sorted(completed - set(run.rows))
    duplicated = sorted(rid for rid in completed if run.rows[rid] > 1)
    detail = f"{len(completed) - len(missing)} of {len(completed)} completed calls have their usage row"
    if missing:
        detail += f"; missing e.g. {missing[:5]}"
    if duplicated:
        detail += f"; {len(duplicated)} have more than one, e.g. {duplicated[:5]}"
    checks = {
        "rss": rss,
        "fds": fds,
        "usage": Check(bool(completed) and not missing and not duplicated, detail),
    }
    unclean = sum(n for outcome, n in tally.outcomes.items() if outcome in UNCLEAN)
    checks["clean"] = Check(  # reported either way; fails the run only with --strict
        not unclean and not run.log_errors,
        f"{unclean} calls ended without a whole answer; {len(run.log_errors)} error lines in the gateway log",
        enforced=strict,
    )
    load = [s for s in run.samples if s.phase in ("warmup", "load")]
    calls = sum(tally.outcomes.values())
    return SoakReport(
        duration=run.duration,
        warmup=run.warmup,
        concurrency=run.concurrency,
        seed=run.seed,
        calls=calls,
        calls_per_second=calls / run.duration,
        planned=dict(tally.planned),
        outcomes=dict(tally.outcomes),
        statuses=dict(tally.statuses),
        completed_by_surface=dict(tally.completed_by_surface),
        rss_baseline_mb=baseline,
        rss_end_mb=end,
        rss_peak_mb=peak,
        rss_idle_mb=(before.rss_mb, after.rss_mb),
        fds_idle=(before.fds, after.fds),
        sockets_idle=(before.sockets, after.sockets),
        fds_peak=max((s.fds for s in load), default=0),
        usage_rows_matched=len(completed) - len(missing),
        usage_rows_missing=missing,
        usage_rows_duplicated=duplicated,
        hung_up=tally.outcomes["hung-up"],
        hung_up_without_row=[f"{rid} {what}" for rid, what in tally.hung_up_ids.items() if not run.rows[rid]],
        pending_steps=run.pending_steps,
        gateway_log_errors=run.log_errors,
        unclean=tally.unclean,
        checks=checks,
        samples=run.samples,
    )


def usage_rows(db_path: Path, wanted: set[str], also: set[str]) -> Counter[str]:
    """Rows per request id, for `wanted` (waited for, while the usage writer flushes) and `also`."""
    deadline = time.monotonic() + USAGE_WAIT
    while True:
        try:
            with contextlib.closing(sqlite3.connect(db_path, timeout=5)) as db:
                ids = [rid for (rid,) in db.execute("SELECT request_id FROM usage_records")]
        except sqlite3.OperationalError:  # busy with a write: try again
            ids = []
        found = Counter(rid for rid in ids if rid in wanted or rid in also)
        if all(rid in found for rid in wanted) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def log_errors(log: Path) -> list[str]:
    """Lines of the gateway's log that tell of an unhandled exception or an error."""
    markers = ("Traceback", "Exception in ASGI application", " ERROR ")
    return [line for line in log.read_text(errors="replace").splitlines() if any(m in line for m in markers)]


def pending_steps(emulator_url: str) -> int:
    with urllib.request.urlopen(emulator_url + "/_emulator/health", timeout=5) as resp:
        return int(json.load(resp)["pending_steps"])


# ---------------------------------------------------------------- the run


def run_soak(
    duration: float = 600.0,
    concurrency: int = 32,
    seed: int = 1,
    workdir: Path | None = None,
    progress: bool = False,
    strict: bool = False,
    workers: int | None = None,
) -> SoakReport:
    """Start the emulator and the gateway, load the gateway for `duration` seconds, and judge it.

    `workers` is passed to `torouter serve --workers`; by default the gateway runs as it would
    in production, one worker per core, and all its processes are measured together."""
    if not Path("/proc/self/status").exists():
        raise RuntimeError("the soak test reads the gateway's memory and descriptors from /proc: Linux only")
    os.environ.setdefault("TOROUTER_SECRET_KEY", "soak-" + secrets.token_hex(16))  # both children seal alike
    warmup = max(10.0, duration * 0.2)
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="torouter-soak-")))
        emu_port, gw_port = free_port(), free_port()
        emulator_url, gateway_url = f"http://127.0.0.1:{emu_port}", f"http://127.0.0.1:{gw_port}"
        torouter = [sys.executable, "-m", "torouter"]
        emulator_cmd = [*torouter, "emulator", "--port", str(emu_port)]
        health = emulator_url + "/_emulator/health"
        stack.enter_context(running(emulator_cmd, health, workdir / "emulator.log", workdir))
        db_path, config_path, gw_log = workdir / "soak.db", workdir / "torouter.yaml", workdir / "gateway.log"
        config = gateway_config(emulator_url, db_path)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        keys = make_keys(config_path, [g["name"] for g in config["groups"]])
        gateway_cmd = [*torouter, "serve", "--config", str(config_path), "--port", str(gw_port)]
        if workers is not None:
            gateway_cmd += ["--workers", str(workers)]
        gateway = stack.enter_context(running(gateway_cmd, gateway_url + "/healthz", gw_log, workdir))
        driver = Driver(gateway_url, emulator_url, keys)
        sampler = Sampler(gateway.pid)
        fill = stored_responses_to_fill(workers)
        loaded, warmed, idle = asyncio.run(
            _load(driver, sampler, duration, warmup, concurrency, seed, fill, progress)
        )
        steps = pending_steps(emulator_url)
        tally = driver.tally
        rows = usage_rows(db_path, set(tally.completed_ids), set(tally.hung_up_ids))
        stop(gateway)  # the log is read after a clean stop, which flushes what is left
        errors = log_errors(gw_log)
        run = Run(loaded, warmed, concurrency, seed, tally, sampler.samples, idle, rows, steps, errors)
        return judge_run(run, strict)
    raise AssertionError("unreachable")  # the ExitStack swallows no exception


async def _load(
    driver: Driver,
    sampler: Sampler,
    duration: float,
    warmup: float,
    concurrency: int,
    seed: int,
    fill: int,
    progress: bool,
) -> tuple[float, float, tuple[Sample, Sample]]:
    """Prime, warm up (fill the caches, then mixed load), settle, load, settle.

    Returns the seconds of load (warm-up included) and of warm-up, and the two idle samples."""
    await driver.prime()
    sampler.started = time.monotonic()
    tasks = [asyncio.create_task(sampler.run())]
    if progress:
        tasks.append(asyncio.create_task(_progress(sampler, driver.tally)))
    try:
        await driver.fill(fill, concurrency)
        left = warmup - (time.monotonic() - sampler.started)
        await driver.phase(max(left, MIXED_WARMUP), concurrency, seed)
        warmed = time.monotonic() - sampler.started
        sampler.phase = "settle-1"
        before = await sampler.settle()
        sampler.phase = "load"
        measured = time.monotonic()
        # The measured load takes what the warm-up left of the duration, but never too little.
        await driver.phase(max(duration - warmed, duration * MEASURED_SHARE, 30.0), concurrency, seed + 1)
        measured = time.monotonic() - measured
        sampler.phase = "settle-2"
        after = await sampler.settle()
    finally:
        for task in tasks:
            task.cancel()
    return warmed + measured, warmed, (before, after)


async def _progress(sampler: Sampler, tally: Tally) -> None:
    while True:
        await asyncio.sleep(30)
        if sampler.samples:
            s, calls = sampler.samples[-1], sum(tally.outcomes.values())
            print(f"[{s.t:5.0f} s] {s.phase}: RSS {s.rss_mb:.1f} MB, {s.fds} fds, {calls} calls", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A bounded soak test of ToRouter (see bench/README.md).")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load, warm-up included")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight at once")
    parser.add_argument("--workers", type=int, default=None, help="gateway workers (default: one per core)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the mix of calls (timing still varies)")
    parser.add_argument(
        "--report", type=Path, default=None, help="write the report, samples included, as JSON"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep the config, store and logs here")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="also fail when a call ends unclean or the gateway logs an error",
    )
    args = parser.parse_args(argv)
    if args.duration < 20:
        parser.error("--duration must be at least 20 seconds: a 10 s warm-up, then the measured load")
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    report = run_soak(
        args.duration,
        args.concurrency,
        args.seed,
        args.workdir,
        progress=True,
        strict=args.strict,
        workers=args.workers,
    )
    print(report.summary())
    if args.report is not None:
        args.report.write_text(json.dumps(asdict(report), indent=2))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
