"""Run the vendor emulator on a free loopback port for a test, and drive its control API."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from torouter.emulator import create_app
from torouter.emulator import find_specs_dir as _find_specs_dir

TEST_KEY = "sk-emulator-test"  # any non-empty key passes unless the server expects one


def find_specs_dir() -> Path:
    """The shared/specs folder (env TOROUTER_SPECS_DIR, else searched upwards); fails loudly if absent."""
    found = _find_specs_dir()
    if found is None:
        raise RuntimeError("shared/specs not found: set TOROUTER_SPECS_DIR")
    return found


class EmulatorServer:
    """`with EmulatorServer() as emu:` starts uvicorn in a thread with its own event loop."""

    def __init__(self, specs_dir: Path | None = None, expected_key: str | None = None) -> None:
        self.app = create_app(specs_dir, expected_key=expected_key)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.openai_base_url = self.url + "/v1"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, lifespan="off", access_log=False, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"emulator-{self.port}", daemon=True)
        self._http = httpx.Client(base_url=self.url, timeout=10)

    def _run(self) -> None:
        asyncio.run(self._server.serve())

    def start(self) -> EmulatorServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("emulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._http.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def script(self, *steps: dict[str, Any]) -> None:
        """Queue steps (see torouter.emulator docs); each vendor request takes the first that matches."""
        response = self._http.post("/_emulator/script", json={"steps": list(steps)})
        response.raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        response = self._http.get("/_emulator/requests")
        response.raise_for_status()
        return response.json()["requests"]

    def reset(self) -> None:
        self._http.post("/_emulator/reset").raise_for_status()
