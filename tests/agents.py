"""The coding-agent CLIs (Claude Code, Codex, Gemini CLI), installed from npm into tests/clients by .ci/run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.services import required

BIN = Path(__file__).resolve().parent / "clients" / "node_modules" / ".bin"


def agent_path(name: str) -> Path:
    path = BIN / name
    if path.exists():
        return path
    if required():
        pytest.fail(f"{name} is not installed in {BIN}; run: npm ci --prefix tests/clients")
    pytest.skip(f"{name} is not installed (npm ci --prefix tests/clients)")


def run_agent(
    name: str, args: list[str], env: dict[str, str], home: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run an agent non-interactively in an empty home, with only the environment a test gives it."""
    home.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TERM", "TMPDIR")}
    base.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "CI": "1", "NO_COLOR": "1"})
    base.update(env)
    return subprocess.run(
        [str(agent_path(name)), *args],
        cwd=home,
        env=base,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
