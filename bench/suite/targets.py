"""Our own targets: the static nginx upstream called directly, the floor and ToRouter.

A target is one server set-up (a kind and a worker count). It starts on first use and answers
`endpoint(scenario)`: where to send a scenario's calls and with which key, model and headers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from harness import SHARED, Processes, TargetError, create_key, free_port, http_ok, port_open, wait_ready

from suite.scenarios import ANTHROPIC, MODELS, OPENAI, Scenario

# The bench key carries limits, so the limit code runs on every call; they never bind.
KEY_RPM = 100_000_000
KEY_TPM = 100_000_000_000
KEY_BUDGET_USD = 1_000_000_000
KEY_LIMITS = ["--rpm", str(KEY_RPM), "--tpm", str(KEY_TPM), "--budget", str(KEY_BUDGET_USD)]
# Children talk to 127.0.0.1 only: keep any proxy settings of the shell out of their way.
LOCAL_ENV = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    key: str
    model: str
    headers: tuple[tuple[str, str], ...] = ()


class Target:
    """Base: a kind of server with a worker count, started on first use."""

    kind = ""
    title = ""

    def __init__(self, procs: Processes, workdir: Path, workers: int) -> None:
        self.procs = procs
        self.workdir = workdir
        self.workers = workers
        self._started = False
        self._start_error: str | None = None

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.workers}"

    single = False  # one set-up whatever the worker counts asked for

    @property
    def label(self) -> str:
        return self.title if self.single else f"{self.title} ×{self.workers}"

    @property
    def workers_text(self) -> str:
        return f"{self.workers} worker" + ("s" if self.workers > 1 else "")

    def unsupported(self, scenario: Scenario) -> str | None:
        """Why this target is not measured for a scenario, or None."""
        return None

    def endpoint(self, scenario: Scenario) -> Endpoint:
        if not self._started:
            self._started = True
            try:
                self.start()
            except TargetError as exc:
                self._start_error = str(exc)
        if self._start_error:
            raise TargetError(self._start_error)
        return self.route(scenario)

    def start(self) -> None:
        """Start the server(s); raise TargetError when they will not come up."""

    def route(self, scenario: Scenario) -> Endpoint:
        raise NotImplementedError

    def version(self) -> str:
        return ""

    def env(self) -> dict[str, str]:
        return {**os.environ, **LOCAL_ENV}


class Nginx(Target):
    """The static upstream itself, called directly: the ceiling for any gateway."""

    kind, title, single = "nginx", "nginx direct", True

    def unsupported(self, scenario: Scenario) -> str | None:
        if scenario.translated:
            return "nginx only answers; there is nothing to translate"
        return None

    @property
    def workers_text(self) -> str:
        return "1 worker (shared/bench/upstream/nginx.conf)"

    def route(self, scenario: Scenario) -> Endpoint:
        return Endpoint(scenario.origin + scenario.path, "sk-nginx-ignores-keys", MODELS[scenario.upstream])


class Floor(Target):
    """shared/bench/floor/asgi_floor.py under uvicorn: one server per upstream port."""

    kind, title = "floor", "floor"

    def __init__(self, procs: Processes, workdir: Path, workers: int) -> None:
        super().__init__(procs, workdir, workers)
        self.ports: dict[str, int] = {}

    def unsupported(self, scenario: Scenario) -> str | None:
        if scenario.translated:
            return "the floor forwards bytes and cannot translate; see the pass-through floor"
        return None

    def version(self) -> str:
        return "uvicorn + uvloop + httptools, aiohttp client"

    def route(self, scenario: Scenario) -> Endpoint:
        port = self.ports.get(scenario.origin) or self._serve(scenario.origin)
        return Endpoint(
            f"http://127.0.0.1:{port}{scenario.path}", "sk-floor-ignores-keys", MODELS[scenario.upstream]
        )

    def _serve(self, origin: str) -> int:
        port = free_port()
        name = f"floor-{self.workers}w-{origin.rsplit(':', 1)[-1]}"
        floor_dir = SHARED / "floor"
        argv = [sys.executable, "-m", "uvicorn", "asgi_floor:app", "--app-dir", str(floor_dir)]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(self.workers)]
        argv += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
        env = {**self.env(), "CLIENT": "aiohttp", "UPSTREAM": origin, "PYTHONDONTWRITEBYTECODE": "1"}
        proc = self.procs.start(name, argv, env, cwd=floor_dir)
        wait_ready(lambda: port_open(port), f"floor on :{port}", proc, self.procs, name)
        self.ports[origin] = port
        return port


def torouter_argv() -> list[str]:
    return [sys.executable, "-m", "torouter"]


def serve_takes_workers() -> bool:
    done = subprocess.run([*torouter_argv(), "serve", "--help"], capture_output=True, text=True)
    return "--workers" in done.stdout


def group_name(platform: str, stream: bool) -> str:
    return f"bench-{platform}-{'sse' if stream else 'json'}"


def torouter_config(db_path: Path) -> dict[str, object]:
    """One upstream account and one group per platform and upstream port (JSON or SSE)."""
    upstreams, groups = [], []
    for platform in (OPENAI, ANTHROPIC):
        for stream in (False, True):
            base = Scenario(platform, platform, stream).upstream_base
            name = group_name(platform, stream)
            upstreams.append({"name": name, "platform": platform, "base_url": base, "api_key": "sk-up"})
            groups.append({"name": name, "platform": platform, "upstreams": [name]})
    return {"database_url": f"sqlite+aiosqlite:///{db_path}", "upstreams": upstreams, "groups": groups}


class ToRouter(Target):
    """`python -m torouter serve --workers W` on a fresh SQLite store, with one key per group.

    A scenario uses the key of the group on its upstream's platform: a pass-through call when the
    client speaks that platform's protocol, a translated one when it does not.
    """

    kind, title = "torouter", "ToRouter"

    def __init__(self, procs: Processes, workdir: Path, workers: int) -> None:
        super().__init__(procs, workdir / f"torouter-{workers}w", workers)
        self.port = 0
        self.keys: dict[str, str] = {}

    def env(self) -> dict[str, str]:
        # A fixed secret keeps the run away from the user's ~/.config/torouter/secret.key.
        return {**super().env(), "TOROUTER_SECRET_KEY": "torouter-bench-only"}

    def version(self) -> str:
        from importlib.metadata import version

        return version("torouter")

    def start(self) -> None:
        if self.workers > 1 and not serve_takes_workers():
            raise TargetError("`torouter serve` has no --workers option yet")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = self.workdir / "torouter.yaml"
        self.config.write_text(yaml.safe_dump(torouter_config(self.workdir / "bench.db"), sort_keys=False))
        for platform in (OPENAI, ANTHROPIC):
            for stream in (False, True):
                group = group_name(platform, stream)
                self.keys[group] = create_key(torouter_argv(), self.config, group, KEY_LIMITS, self.env())
        self._serve()

    def route(self, scenario: Scenario) -> Endpoint:
        key = self.keys[group_name(scenario.upstream, scenario.stream)]
        return Endpoint(f"http://127.0.0.1:{self.port}{scenario.path}", key, MODELS[scenario.upstream])

    def _serve(self) -> None:
        self.port = free_port()
        name = f"torouter-{self.workers}w"
        argv = [*torouter_argv(), "serve", "--config", str(self.config), "--port", str(self.port)]
        argv += ["--log-level", "warning"]
        if serve_takes_workers():
            argv += ["--workers", str(self.workers)]
        proc = self.procs.start(name, argv, self.env())
        health = f"http://127.0.0.1:{self.port}/healthz"
        wait_ready(lambda: http_ok(health), f"torouter on :{self.port}", proc, self.procs, name, timeout=60)
