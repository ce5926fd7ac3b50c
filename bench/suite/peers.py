"""The peers: the LiteLLM proxy and Portkey's gateway, each installed on first use into its own
git-ignored directory (bench/.venvs/litellm, bench/.portkey) and kept there between runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import venv
from pathlib import Path

import yaml
from harness import REPO, Processes, TargetError, free_port, http_ok, port_open, say, wait_ready

from suite.scenarios import ANTHROPIC, MODELS, OPENAI, Scenario
from suite.targets import Endpoint, Target

LITELLM_VENV = REPO / "bench" / ".venvs" / "litellm"
LITELLM_SPEC = "litellm[proxy]"
LITELLM_KEY = "sk-bench"

PORTKEY_DIR = REPO / "bench" / ".portkey"
PORTKEY_VERSION = "1.15.2"
# @hono/node-server 1.14 and later hand Portkey immutable response headers, and every streamed
# call then fails with "TypeError: immutable" (Portkey-AI/gateway#1389, #1550). 1.13.8 streams.
HONO_NODE_SERVER = "1.13.8"
PORTKEY_PACKAGE = {
    "private": True,
    "dependencies": {"@portkey-ai/gateway": PORTKEY_VERSION},
    "overrides": {"@hono/node-server": HONO_NODE_SERVER},
}


def stream_model(scenario: Scenario) -> str:
    """The model name LiteLLM routes: the upstream's model, on the SSE port when streaming."""
    return MODELS[scenario.upstream] + ("-stream" if scenario.stream else "")


def litellm_config() -> dict[str, object]:
    models = []
    for platform in (OPENAI, ANTHROPIC):
        for stream in (False, True):
            s = Scenario(platform, platform, stream)
            provider_model = f"{platform}/{MODELS[platform]}"
            params = {"model": provider_model, "api_base": s.upstream_base, "api_key": "sk-up"}
            models.append({"model_name": stream_model(s), "litellm_params": params})
    return {
        "model_list": models,
        "litellm_settings": {
            "drop_params": True,
            "telemetry": False,
            # Without it, /v1/messages to an OpenAI model goes to the Responses API (/v1/responses),
            # which the static upstream (and many OpenAI-compatible servers) does not serve.
            "use_chat_completions_url_for_anthropic_messages": True,
        },
        "general_settings": {"master_key": LITELLM_KEY},
    }


class LiteLLM(Target):
    """`litellm --config … --num_workers W` from its own virtual environment."""

    kind, title = "litellm", "LiteLLM"

    def __init__(self, procs: Processes, workdir: Path, workers: int) -> None:
        super().__init__(procs, workdir, workers)
        self.port = 0

    @staticmethod
    def install() -> None:
        if (LITELLM_VENV / "bin" / "litellm").exists():
            return
        say(f"installing {LITELLM_SPEC} into {LITELLM_VENV.relative_to(REPO)} (once; kept between runs)")
        venv.create(LITELLM_VENV, with_pip=True, clear=True)
        pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "-q", LITELLM_SPEC]
        done = subprocess.run(pip, capture_output=True, text=True)
        if done.returncode != 0:
            raise TargetError(f"pip install {LITELLM_SPEC} failed: {done.stderr.strip()[-300:]}")

    def version(self) -> str:
        python = LITELLM_VENV / "bin" / "python"
        if not python.exists():
            return "not installed"
        code = "from importlib.metadata import version; print(version('litellm'))"
        return subprocess.run([str(python), "-c", code], capture_output=True, text=True).stdout.strip()

    def env(self) -> dict[str, str]:
        # No fetch of the model price map from GitHub at start-up; errors only in the log.
        return {**super().env(), "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}

    def start(self) -> None:
        self.install()
        config = self.workdir / f"litellm-{self.workers}w.yaml"
        config.write_text(yaml.safe_dump(litellm_config(), sort_keys=False))
        self.port = free_port()
        name = f"litellm-{self.workers}w"
        argv = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config)]
        argv += ["--host", "127.0.0.1", "--port", str(self.port), "--num_workers", str(self.workers)]
        proc = self.procs.start(name, argv, self.env(), cwd=self.workdir)
        ready = f"http://127.0.0.1:{self.port}/health/liveliness"
        wait_ready(lambda: http_ok(ready), f"litellm on :{self.port}", proc, self.procs, name, timeout=180)

    def route(self, scenario: Scenario) -> Endpoint:
        return Endpoint(f"http://127.0.0.1:{self.port}{scenario.path}", LITELLM_KEY, stream_model(scenario))


class Portkey(Target):
    """Portkey's open-source gateway (Node, one process); it routes on x-portkey-* headers."""

    kind, title, single = "portkey", "Portkey", True

    def __init__(self, procs: Processes, workdir: Path, workers: int = 1) -> None:
        super().__init__(procs, workdir, 1)
        self.port = 0

    @property
    def workers_text(self) -> str:
        return "1 process (Node; no worker option)"

    @staticmethod
    def server_js() -> Path:
        return PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"

    @classmethod
    def install(cls) -> None:
        package = PORTKEY_DIR / "package.json"
        wanted = json.dumps(PORTKEY_PACKAGE, indent=2) + "\n"
        if cls.server_js().exists() and package.exists() and package.read_text() == wanted:
            return
        if shutil.which("npm") is None:
            raise TargetError("npm not found: Portkey's gateway needs Node.js and npm")
        say(f"installing @portkey-ai/gateway@{PORTKEY_VERSION} into {PORTKEY_DIR.relative_to(REPO)} (once)")
        PORTKEY_DIR.mkdir(parents=True, exist_ok=True)
        package.write_text(wanted)
        done = subprocess.run(
            ["npm", "install", "--prefix", str(PORTKEY_DIR)], capture_output=True, text=True
        )
        if done.returncode != 0 or not cls.server_js().exists():
            raise TargetError(f"npm install @portkey-ai/gateway failed: {done.stderr.strip()[-300:]}")

    def version(self) -> str:
        path = self.server_js().parent.parent / "package.json"
        return json.loads(path.read_text())["version"] if path.exists() else "not installed"

    def start(self) -> None:
        self.install()
        self.port = free_port()
        argv = ["node", str(self.server_js()), f"--port={self.port}", "--headless"]
        proc = self.procs.start("portkey", argv, self.env(), cwd=PORTKEY_DIR)
        wait_ready(lambda: port_open(self.port), f"portkey on :{self.port}", proc, self.procs, "portkey")

    def route(self, scenario: Scenario) -> Endpoint:
        # Portkey's providers put /v1 in their base URL, Anthropic's too.
        headers = (
            ("x-portkey-provider", scenario.upstream),
            ("x-portkey-custom-host", scenario.origin + "/v1"),
        )
        url = f"http://127.0.0.1:{self.port}{scenario.path}"
        return Endpoint(url, "sk-up", MODELS[scenario.upstream], headers)
