"""Scripted steps and the request log: the emulator's control state, shared by all vendors."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any

from starlette.requests import Request

from torouter.emulator._encoding import ENCODINGS

STOP_REASONS = ("end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal", "content_filter")


class StepError(ValueError):
    """A scripted step that cannot be understood; the control API answers 400 with it."""


@dataclass(slots=True)
class Step:
    """One scripted answer, queued with `POST /_emulator/script {"steps": [...]}`.

    match {path: substring, model: exact, stream: bool, credential: exact} picks requests; times N applies it to N of them.
    status/error/headers answer an error in the vendor's shape; raw sends any body; replay sends a
    file from the specs folder. text/tool_calls/thinking/usage/stop_reason shape a normal answer.
    Usage keys are totals as OpenAI counts them: input_tokens includes cached_tokens and
    cache_creation_tokens (Anthropic's input_tokens gets the rest); output_tokens includes
    reasoning_tokens (Gemini's candidatesTokenCount gets the rest).
    delay, chunk_delay, tail_delay (between the last frame and the end of the body), drop_after,
    drop_before_headers and malformed_at shape the delivery. content_encoding (gzip, deflate, br)
    compresses the body; drip re-cuts it into pieces of that many bytes, chunk_delay apart.
    """

    match: dict[str, str] = field(default_factory=dict)
    times: int = 1
    status: int | None = None
    error: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    thinking: str | None = None
    usage: dict[str, int] | None = None
    stop_reason: str | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    tail_delay: float = 0.0
    drop_after: int | None = None
    drop_before_headers: bool = False
    malformed_at: int | None = None
    raw: dict[str, Any] | None = None
    replay: str | None = None
    content_encoding: str | None = None
    drip: int | None = None

    @classmethod
    def parse(cls, data: Any) -> Step:
        if not isinstance(data, dict):
            raise StepError("each step must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StepError(f"unknown step field(s) {unknown}; known fields are {sorted(known)}")
        step = cls(**data)
        if step.stop_reason is not None and step.stop_reason not in STOP_REASONS:
            raise StepError(f"stop_reason must be one of {list(STOP_REASONS)}")
        if step.tool_calls is not None and not all(
            isinstance(t, dict) and "name" in t for t in step.tool_calls
        ):
            raise StepError("tool_calls items need a name")
        if step.raw is not None and "body" not in step.raw:
            raise StepError("raw needs at least a body")
        if step.content_encoding is not None and step.content_encoding not in ENCODINGS:
            raise StepError(f"content_encoding must be one of {list(ENCODINGS)}")
        if step.drip is not None and step.drip < 1:
            raise StepError("drip must be at least 1 byte")
        if step.times < 1:
            raise StepError("times must be at least 1")
        return step

    def fits(self, path: str, model: str | None, stream: bool = False, credential: str | None = None) -> bool:
        wanted_path = self.match.get("path")
        wanted_model = self.match.get("model")
        wanted_stream = self.match.get("stream")
        wanted_key = self.match.get("credential")  # tells a gateway's upstream accounts apart
        if wanted_path is not None and wanted_path not in path:
            return False
        if wanted_key is not None and wanted_key != credential:
            return False
        if wanted_stream is not None and bool(wanted_stream) != stream:
            return False
        return wanted_model is None or wanted_model == model

    @property
    def overrides_answer(self) -> bool:
        """True when the step replaces the whole answer, so the request is not validated."""
        return self.status is not None or self.raw is not None or self.replay is not None


class ControlState:
    """The FIFO of steps and the log of received requests; guarded by a lock for threaded tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: list[Step] = []
        self._records: list[dict[str, Any]] = []

    def add_steps(self, steps: list[Step]) -> None:
        with self._lock:
            self._steps.extend(steps)

    def take_step(
        self, path: str, model: str | None, stream: bool = False, credential: str | None = None
    ) -> Step | None:
        with self._lock:
            for index, step in enumerate(self._steps):
                if step.fits(path, model, stream, credential):
                    step.times -= 1
                    if step.times <= 0:
                        del self._steps[index]
                    return step
        return None

    def pending(self) -> int:
        with self._lock:
            return len(self._steps)

    def record(self, request: Request, raw_body: bytes, body: Any) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            # Repeated headers (e.g. anthropic-beta) are joined as HTTP allows.
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": headers,
            "body": body if body is not None else (raw_body.decode("utf-8", "replace") or None),
            "received_at": time.time(),
            "disconnected": False,
            "disconnected_at": None,
        }
        with self._lock:
            self._records.append(entry)
        return entry

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._records)

    def reset(self) -> None:
        with self._lock:
            self._steps.clear()
            self._records.clear()
