"""Runs the real `torouter serve` in a subprocess on a free loopback port, with a config of the test's choosing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

SRC = Path(__file__).resolve().parents[1] / "src"
CLI_LOG: Path | None = None  # set for the session by conftest: the CLI's stderr is a log the final scan reads


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torouter_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TOROUTER_CONFIG", None)
    return env


def run_cli(*args: str, config: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torouter", *args]
    if config is not None:
        cmd += ["--config", str(config)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=torouter_env(), timeout=60)
    if CLI_LOG is not None and proc.stderr:
        # stdout is output (`keys create` prints the new key once, by design); stderr is a log.
        with CLI_LOG.open("a", encoding="utf-8") as f:
            f.write(f"--- torouter {' '.join(args[:2])} (exit {proc.returncode})\n{proc.stderr}\n")
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


class GatewayServer:
    """One `torouter serve` process. `config` is the YAML mapping to write (database_url included)."""

    def __init__(
        self,
        workdir: Path,
        config: dict[str, Any],
        workers: int | None = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        # One unless a test is about workers (most check one process's state); None: serve's default.
        self.workers = workers
        self.extra_env = env or {}  # on top of the environment at each start
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "torouter.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> GatewayServer:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("this gateway is running already: a second start would orphan it")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torouter",
                "serve",
                "--config",
                str(self.config_path),
                "--port",
                str(self.port),
                *(["--workers", str(self.workers)] if self.workers else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**torouter_env(), **self.extra_env},
            cwd=self.workdir,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"torouter serve exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"torouter serve did not become ready:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, config=self.config_path, check=check)

    def create_key(self, group: str, *extra: str) -> str:
        out = self.cli("keys", "create", "--group", group, *extra).stdout
        return out.strip().splitlines()[-1]

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
