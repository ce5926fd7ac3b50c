"""One emulator for the whole emulator suite; each test starts from a clean script and log."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds emulator_harness.py

from emulator_harness import EmulatorServer, find_specs_dir


@pytest.fixture(scope="session")
def specs_dir() -> Path:
    return find_specs_dir()


@pytest.fixture(scope="session")
def emulator_server(specs_dir: Path) -> Iterator[EmulatorServer]:
    with EmulatorServer(specs_dir) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> Iterator[EmulatorServer]:
    emulator_server.reset()
    yield emulator_server
    emulator_server.reset()
