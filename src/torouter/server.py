"""Running the app under uvicorn with the fast loop and HTTP parser."""

from __future__ import annotations

import logging

import uvicorn

from torouter.app import create_app
from torouter.config import Settings


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run(settings: Settings) -> None:
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level=settings.log_level,
        lifespan="on",
        timeout_graceful_shutdown=settings.shutdown_grace,
    )
