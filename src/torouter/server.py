"""Running the app under uvicorn with the fast loop and HTTP parser, in one process or several.

With several workers, uvicorn's supervisor binds the port once and starts that many processes that
accept on it; it restarts one that dies, and passes SIGTERM on for a graceful stop. This process
prepares the store first (migrations, the config's accounts and groups) so that the workers don't
race to do it. Each worker then loads the same settings from the same file and environment.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import tempfile

import uvicorn

from torouter.app import create_app
from torouter.config import Settings, load_settings
from torouter.event_loop import new_event_loop

log = logging.getLogger("torouter")
WORKER_APP = "torouter.server:worker_app"
_STORE_READY = "TOROUTER_STORE_PREPARED"  # set by the supervisor for its workers only


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_count(settings: Settings, asked: int | None = None) -> int:
    """--workers, else the config's `workers`, else one per core (0 means that too)."""
    n = asked if asked is not None else settings.workers
    return n if n > 0 else cpu_cores()


def run(settings: Settings, workers: int = 1) -> None:
    configure_logging(settings.log_level)
    options = {
        "host": settings.host,
        "port": settings.port,
        # uvloop, accepting a burst of connections in shares among the workers: see event_loop.
        "loop": functools.partial(new_event_loop, max(workers, 1)),
        # httptools, with an answer's writes of one loop step sent together: see http_protocol.
        "http": "torouter.http_protocol:HttpProtocol",
        "access_log": False,  # it would print ?key= query strings
        # X-Forwarded-For is read only where the address is used: see client_address.py.
        "proxy_headers": False,
        # No "server: uvicorn" on every answer: it names the stack, and the vendors' own say
        # nothing of the kind either.
        "server_header": False,
        "log_level": settings.log_level,
        "lifespan": "on",
        "timeout_graceful_shutdown": settings.shutdown_grace,
    }
    if workers <= 1:
        uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]
        return
    _prepare_store(settings)
    metrics_dir = tempfile.mkdtemp(prefix="torouter-metrics-")
    _hand_over(settings, metrics_dir)
    log.info("starting %d workers", workers)
    try:
        uvicorn.run(WORKER_APP, factory=True, workers=workers, **options)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def worker_app() -> object:
    """Each worker's app: the settings the supervisor handed over, the store already prepared."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings, store_ready=os.environ.get(_STORE_READY) == "1")


def _prepare_store(settings: Settings) -> None:
    from torouter.gateway import prepare_store
    from torouter.store.db import make_engine, sessionmaker

    async def prepare() -> None:
        engine = make_engine(settings.database_url)
        try:
            await prepare_store(engine, sessionmaker(engine), settings)
        finally:
            await engine.dispose()

    asyncio.run(prepare())


def _hand_over(settings: Settings, metrics_dir: str) -> None:
    """Workers are new interpreters: they read the same file, with the CLI's options as overrides."""
    env = os.environ
    if settings.source != "<defaults>":
        env["TOROUTER_CONFIG"] = os.path.abspath(settings.source)
    else:
        env.pop("TOROUTER_CONFIG", None)
    env["TOROUTER_HOST"] = settings.host
    env["TOROUTER_PORT"] = str(settings.port)
    env["TOROUTER_LOG_LEVEL"] = settings.log_level
    env[_STORE_READY] = "1"
    # Counters and histograms of every worker add up in one scrape (prometheus_client's multiprocess mode).
    env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
