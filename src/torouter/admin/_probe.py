"""The upstream connection test: list an account's models with its credential, and say what went wrong."""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from pydantic import BaseModel, Field

from torouter.catalog import Account
from torouter.upstreams.call import scrub
from torouter.upstreams.platforms import ANTHROPIC_VERSION, auth_headers, url_for


class TestResult(BaseModel):
    ok: bool
    status: int = Field(description="The upstream's HTTP status; 0 when it did not answer")
    latency_ms: float
    error: str | None = Field(description="Scrubbed of the credential and the host")
    models: list[str]


_MODEL_LISTS = {"anthropic": "/v1/models", "gemini": "/v1beta/models"}


async def list_models(session: aiohttp.ClientSession, account: Account) -> TestResult:
    """GET the platform's model list with the account's credential, as its SDK would."""
    url = url_for(account, _MODEL_LISTS.get(account.platform, "/models"))
    headers = auth_headers(account)
    if account.platform == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
    timeout = aiohttp.ClientTimeout(total=30, connect=min(account.connect_timeout, 30))
    started = time.perf_counter()
    try:
        async with session.get(url, headers=headers, timeout=timeout) as response:
            status, body = response.status, await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        ms = (time.perf_counter() - started) * 1000
        return TestResult(ok=False, status=0, latency_ms=ms, error=_failure(exc, account), models=[])
    ms = (time.perf_counter() - started) * 1000
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if not 200 <= status < 300:
        return TestResult(
            ok=False, status=status, latency_ms=ms, error=_error_text(doc, body, account), models=[]
        )
    return TestResult(ok=True, status=status, latency_ms=ms, error=None, models=_model_ids(doc))


def _failure(exc: BaseException, account: Account) -> str:
    """Why no answer came, with no credential, host name, address or port in it."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno = exc.os_error.errno
        text = f"cannot connect: {os.strerror(errno) if errno else type(exc.os_error).__name__}"
    elif isinstance(exc, TimeoutError):
        text = "timed out"
    else:
        text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    url = urlsplit(account.base_url)
    for part in (url.netloc, url.hostname, str(url.port or "")):
        if part:
            text = text.replace(part, "upstream")
    return scrub(text, account)


def _model_ids(doc: Any) -> list[str]:
    """OpenAI and Anthropic list `data[].id`; Gemini lists `models[].name` as models/{id}."""
    if not isinstance(doc, dict):
        return []
    items = doc.get("data") if isinstance(doc.get("data"), list) else doc.get("models")
    ids = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            model = item.get("id") or item.get("name")
            if isinstance(model, str):
                ids.append(model.removeprefix("models/"))
    return ids


def _error_text(doc: Any, body: bytes, account: Account) -> str:
    """The vendor's error message when its body has one, else the start of the body."""
    message = None
    if isinstance(doc, dict):
        err = doc.get("error")
        message = err.get("message") if isinstance(err, dict) else err if isinstance(err, str) else None
    text = message if isinstance(message, str) and message else body[:500].decode("utf-8", "replace")
    return scrub(text, account) or "no body"
