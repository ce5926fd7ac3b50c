"""A faithful fake OpenAI / Anthropic / Gemini upstream for tests and demos.

It shares no code with `torouter.protocols` or the hub: every wire format is written here on its
own, from the vendors' specs and recorded examples, so a codec bug cannot hide behind the same bug.
"""

from __future__ import annotations

from pathlib import Path

from torouter.emulator._app import create_app, find_specs_dir

__all__ = ["create_app", "find_specs_dir", "serve"]


def serve(host: str = "127.0.0.1", port: int = 9100, specs_dir: Path | None = None) -> None:
    """Run the emulator with uvicorn until interrupted (no access log)."""
    import uvicorn

    uvicorn.run(
        create_app(specs_dir), host=host, port=port, access_log=False, lifespan="off", log_level="warning"
    )
