"""Many open streams at once: does one ToRouter worker hold them in little memory, and finish them all?

Starts the vendor emulator (its own process) answering every streamed chat call slowly, one
ToRouter worker in front of it (SQLite, auth, an rpm limit and usage accounting on), then opens
`--streams` streaming calls at once and reads each to its `[DONE]`. The gateway's resident memory
is sampled throughout. It passes when every stream finishes and the peak stays under the budget.

    .venv/bin/python bench/streams.py                      # 5,000 streams, 1 GiB budget
    .venv/bin/python bench/streams.py --streams 1000 --budget-mib 512
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
MODEL = "gpt-4o-mini"
TOROUTER = [sys.executable, "-m", "torouter"]


@dataclass
class Report:
    streams: int
    finished: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    peak_open: int = 0
    baseline_rss_mib: float = 0.0
    peak_rss_mib: float = 0.0
    rss_per_stream_kib: float = 0.0
    seconds: float = 0.0
    budget_mib: float = 1024.0

    @property
    def passed(self) -> bool:
        # All of them open at the same moment, all finished, and the peak within the budget.
        return (
            self.finished == self.streams
            and self.peak_open == self.streams
            and self.peak_rss_mib < self.budget_mib
        )

    def lines(self) -> list[str]:
        return [
            f"streams asked {self.streams}, finished {self.finished}, failed {self.failed} {self.errors or ''}",
            f"peak open at once {self.peak_open}",
            f"gateway RSS: idle {self.baseline_rss_mib:.0f} MiB, peak {self.peak_rss_mib:.0f} MiB "
            f"({self.rss_per_stream_kib:.1f} KiB per open stream); budget {self.budget_mib:.0f} MiB",
            f"took {self.seconds:.1f} s: {'PASS' if self.passed else 'FAIL'}",
        ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


async def one_stream(
    session: aiohttp.ClientSession, url: str, key: str, state: dict[str, int], report: Report
) -> None:
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "slowly"}]}
    opened = False
    try:
        async with session.post(url, json=body, headers={"authorization": f"Bearer {key}"}) as r:
            if r.status != 200:
                raise RuntimeError(f"status {r.status}")
            done = False
            async for line in r.content:
                if not opened:
                    opened = True
                    state["open"] += 1
                    report.peak_open = max(report.peak_open, state["open"])
                if line.startswith(b"data: [DONE]"):
                    done = True
            if not done:
                raise RuntimeError("ended without [DONE]")
        report.finished += 1
    except Exception as exc:
        report.failed += 1
        name = str(exc)[:60] or type(exc).__name__
        report.errors[name] = report.errors.get(name, 0) + 1
    finally:
        if opened:
            state["open"] -= 1


async def load(url: str, key: str, pid: int, report: Report, ramp: float) -> None:
    state = {"open": 0}
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=600, sock_connect=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def sample() -> None:
            while True:
                report.peak_rss_mib = max(report.peak_rss_mib, rss_mib(pid))
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        tasks = []
        for i in range(report.streams):
            tasks.append(asyncio.create_task(one_stream(session, url, key, state, report)))
            if i % 100 == 99:
                await asyncio.sleep(ramp / max(1, report.streams / 100))  # spread the opening a little
        await asyncio.gather(*tasks)
        sampler.cancel()
    if report.peak_open:
        report.rss_per_stream_kib = (report.peak_rss_mib - report.baseline_rss_mib) * 1024 / report.peak_open


def run(streams: int, seconds: float, budget_mib: float, ramp: float = 5.0) -> Report:
    raise_fd_limit(4 * streams + 1024)
    report = Report(streams=streams, budget_mib=budget_mib)
    workdir = Path(tempfile.mkdtemp(prefix="torouter-streams-"))
    env = {**os.environ, "TOROUTER_SECRET_KEY": os.environ.get("TOROUTER_SECRET_KEY", "bench-streams")}
    emu_port, gw_port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        log = (workdir / "emulator.log").open("wb")
        emu = subprocess.Popen(
            [*TOROUTER, "emulator", "--port", str(emu_port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        procs.append(emu)
        wait_ready(f"http://127.0.0.1:{emu_port}/_emulator/requests", emu)
        # Every streamed chat answer: 20 pieces, `seconds` long in all, so they are all open together.
        words = " ".join(f"w{i}" for i in range(20))
        step = {
            "match": {"path": "chat/completions", "stream": True},
            "times": streams + 10,
            "text": words,
            "chunk_delay": seconds / 20,
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{emu_port}/_emulator/script",
            data=json.dumps({"steps": [step]}).encode(),
            headers={"content-type": "application/json"},
        )
        urllib.request.urlopen(request).close()
        config = {
            "database_url": f"sqlite+aiosqlite:///{workdir / 'streams.db'}",
            "upstreams": [
                {
                    "name": "emu",
                    "platform": "openai",
                    "base_url": f"http://127.0.0.1:{emu_port}/v1",
                    "api_key": "sk-emulator",
                }
            ],
            "groups": [{"name": "streams", "platform": "openai", "upstreams": ["emu"]}],
        }
        config_path = workdir / "torouter.yaml"
        config_path.write_text(yaml.safe_dump(config))
        at = ["--config", str(config_path)]
        created = subprocess.run(
            [*TOROUTER, "keys", "create", "--group", "streams", "--rpm", str(100 * streams), *at],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        key = created.stdout.strip().splitlines()[-1]
        gw_log = (workdir / "gateway.log").open("wb")
        gw = subprocess.Popen(
            [*TOROUTER, "serve", "--config", str(config_path), "--port", str(gw_port), "--workers", "1"],
            stdout=gw_log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        procs.append(gw)
        wait_ready(f"http://127.0.0.1:{gw_port}/healthz", gw)
        report.baseline_rss_mib = rss_mib(gw.pid)
        started = time.monotonic()
        asyncio.run(load(f"http://127.0.0.1:{gw_port}/v1/chat/completions", key, gw.pid, report, ramp))
        report.seconds = time.monotonic() - started
        return report
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each stream lasts")
    parser.add_argument("--budget-mib", type=float, default=1024.0)
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args(argv)
    report = run(args.streams, args.seconds, args.budget_mib)
    for line in report.lines():
        print(line)
    if args.json:
        args.json.write_text(json.dumps({**asdict(report), "passed": report.passed}, indent=2))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
