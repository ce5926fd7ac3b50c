"""What every benchmark here needs: servers it starts and stops, free ports, the static nginx
upstream from shared/bench, and wrk (run it, read its figures).

`bench/run.py` (the quick ToRouter-vs-floor check) and `bench/compare.py` (the side-by-side suite)
both build on this module.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "bench"
NGINX_CONF = "/tmp/torouter-bench-nginx.conf"
NGINX_PIDFILE = Path("/tmp/torouter-bench-nginx.pid")  # written by start-upstream.sh's nginx.conf
JSON_UPSTREAM = "http://127.0.0.1:9901"
SSE_UPSTREAM = "http://127.0.0.1:9902"
# nginx lives in /usr/sbin, which is not on every user's PATH.
TOOL_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])

T = TypeVar("T")


class BenchError(Exception):
    """A problem that stops the whole run (missing tool, upstream that will not start)."""


class Stopped(Exception):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C so the servers get stopped."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class TargetError(Exception):
    """A problem with one target for one scenario: reported as n/a, the run goes on."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def stop_on_sigterm() -> None:
    """Turn SIGTERM/SIGHUP into an exception so the finally blocks stop the servers."""

    def handler(signum: int, _frame: object) -> None:
        raise Stopped(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def guarded(work: Callable[[], T]) -> T | int:
    """Run `work`; if the run has to stop, say why and return the exit code instead.

    The servers are already stopped by then (the finally blocks inside `work`). `work` must not
    itself return an int: callers tell the two outcomes apart by type.
    """
    try:
        return work()
    except BenchError as exc:
        say(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        say("interrupted: servers stopped")
        return 130
    except Stopped as exc:
        say(f"stopped by {exc}: servers stopped")
        return 128 + exc.signum


# ---------------------------------------------------------------- processes and ports


class Processes:
    """The servers this run started; stop_all() ends exactly those, by their own handles."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self, name: str, argv: list[str], env: Mapping[str, str], cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.logdir / f"{name}.log").open("wb")
        # A new session keeps the terminal's Ctrl-C away from the servers: we stop them in order.
        proc = subprocess.Popen(
            argv, env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.started.append((name, proc))
        return proc

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.logdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """Stop one server and the workers it forked (they share its session, hence its group)."""
        self._signal(proc)
        self._reap(proc)
        self.started = [(n, p) for n, p in self.started if p is not proc]

    def stop_all(self) -> None:
        # Signal every server before waiting on any, so they shut down side by side, not in turn.
        for _name, proc in reversed(self.started):
            self._signal(proc)
        for _name, proc in reversed(self.started):
            self._reap(proc)
        self.started.clear()

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)

    @staticmethod
    def _reap(proc: subprocess.Popen[bytes]) -> None:
        """Wait for a signalled server; kill its group if it takes more than 15 s."""
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return 200 <= r.status < 300
    except (OSError, urllib.error.URLError):
        return False


def wait_ready(
    check: Callable[[], bool],
    what: str,
    proc: subprocess.Popen[bytes],
    procs: Processes,
    name: str,
    timeout: float = 30,
) -> None:
    """Poll until the server answers; fail early, with its log, if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TargetError(f"{what} exited with code {proc.returncode}: {procs.log_tail(name, 5)}")
        if check():
            return
        time.sleep(0.1)
    raise TargetError(f"{what} did not answer within {timeout:.0f} s: {procs.log_tail(name, 5)}")


# ---------------------------------------------------------------- ToRouter keys


def create_key(
    argv_prefix: list[str], config: Path, group: str, limits: list[str], env: dict[str, str] | None = None
) -> str:
    """`torouter keys create` for one group, with `limits` (e.g. --rpm N) after --name; the new key."""
    argv = [*argv_prefix, "keys", "create", "--group", group, "--name", "bench", *limits]
    argv += ["--config", str(config)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise TargetError(
            f"torouter keys create --group {group} failed: {(done.stderr or done.stdout).strip()}"
        )
    return lines[-1].strip()  # the new key is alone on the last line


# ---------------------------------------------------------------- the static upstream


def check_tools() -> None:
    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool, path=TOOL_PATH) is None]
    if missing:
        raise BenchError(
            f"{' and '.join(missing)} not found; install them with: apt-get install -y nginx wrk"
        )
    if not (SHARED / "start-upstream.sh").exists():
        raise BenchError(
            f"{SHARED} not found: the shared bench files must sit beside the repo, at <repo>/../shared"
        )


def nginx_running() -> bool:
    """Same test as start-upstream.sh: a live pid in its pidfile."""
    try:
        pid = int(NGINX_PIDFILE.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError) as exc:
        return isinstance(exc, PermissionError)  # alive, but someone else's
    return True


@contextlib.contextmanager
def static_upstream() -> Iterator[None]:
    """Start the nginx upstream unless it already runs; stop it afterwards only if we started it."""
    was_running = nginx_running()
    env = {**os.environ, "PATH": TOOL_PATH}
    if not was_running:
        done = subprocess.run(
            ["bash", str(SHARED / "start-upstream.sh")], env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise BenchError(f"start-upstream.sh failed: {(done.stderr or done.stdout).strip()}")
    try:
        for url in (JSON_UPSTREAM, SSE_UPSTREAM):
            port = urlsplit(url).port or 80
            if not wait_for_port(port, timeout=5):
                raise BenchError(
                    f"static upstream {url} does not answer; see /tmp/torouter-bench-nginx-error.log"
                )
        yield
    finally:
        if not was_running:
            subprocess.run(["nginx", "-s", "stop", "-c", NGINX_CONF], env=env, capture_output=True)


# ---------------------------------------------------------------- wrk


@dataclass(frozen=True, slots=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_LATENCY = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ", re.M)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse_wrk(output: str) -> WrkResult:
    """Pull calls/s, p50, p99 (in ms), non-2xx and socket errors out of `wrk --latency` output."""
    rps = _RPS.search(output)
    latency = {pct: float(value) * _UNIT_MS[unit] for pct, value, unit in _LATENCY.findall(output)}
    requests = _REQUESTS.search(output)
    if not rps or "50" not in latency or "99" not in latency or not requests:
        raise TargetError(f"could not parse wrk output: {output.strip()[-300:]}")
    non_2xx = _NON_2XX.search(output)
    sockets = _SOCKET.search(output)
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=latency["50"],
        p99_ms=latency["99"],
        requests=int(requests.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def run_wrk(
    script: Path,
    url: str,
    env: Mapping[str, str],
    connections: int,
    seconds: int,
    timeout_s: int | None = None,
) -> str:
    """One `wrk -t1 --latency` run; returns its output. `timeout_s` is wrk's per-call timeout."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if timeout_s:
        argv.append(f"--timeout={timeout_s}s")
    argv += ["-s", str(script), url]
    done = subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=seconds + 60
    )
    if done.returncode != 0:
        raise TargetError(f"wrk exited with {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout


# ---------------------------------------------------------------- run description


def command_line() -> str:
    exe = Path(sys.executable)
    with contextlib.suppress(ValueError):
        exe = exe.relative_to(Path.cwd())
    return shlex.join([str(exe), *sys.argv])


def tool_version(argv: list[str], pattern: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PATH": TOOL_PATH})
    except OSError:
        return "?"
    found = re.search(pattern, done.stdout + done.stderr)
    return found.group(1) if found else "?"


def git_revision() -> str:
    def git(*argv: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *argv], capture_output=True, text=True).stdout.strip()

    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    return (git("rev-parse", "--short", "HEAD") or "?") + dirty


def now_iso() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def machine_summary() -> str:
    wrk = tool_version(["wrk", "-v"], r"wrk (?:debian/)?(\S+)")
    nginx = tool_version(["nginx", "-v"], r"nginx/(\S+)")
    return (
        f"nproc {len(os.sched_getaffinity(0))}, {platform.system()} {platform.machine()},"
        f" Python {platform.python_version()}, wrk {wrk}, nginx {nginx}"
    )


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def markdown_table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    """A padded Markdown table; the first `text_columns` columns are left-aligned, the rest right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [
            cell.ljust(w) if i < text_columns else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join(
        "-" * w if i < text_columns else "-" * (w - 1) + ":" for i, w in enumerate(widths)
    )
    return "\n".join([line(header), rule + " |", *(line(r) for r in rows)])
