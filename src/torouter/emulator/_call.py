"""What a vendor handler receives (`Call`) and returns (`Answer`), and the vendor interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import Request

from torouter.emulator._common import dumps
from torouter.emulator._script import Step


class VendorError(Exception):
    """An error answer; each vendor renders it in its own shape, filling defaults per status."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.details = details


@dataclass(slots=True)
class Answer:
    """A body split into frames (one frame when not streaming)."""

    frames: list[bytes]
    content_type: str = "application/json"
    status: int = 200
    streaming: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def json_answer(value: Any, status: int = 200) -> Answer:
    return Answer([dumps(value)], status=status)


def sse_answer(frames: list[bytes]) -> Answer:
    return Answer(frames, content_type="text/event-stream; charset=utf-8", streaming=True)


@dataclass(slots=True)
class Call:
    request: Request
    body: Any
    step: Step | None
    request_id: str
    specs_dir: Path | None

    @property
    def query(self) -> Any:
        return self.request.query_params

    @property
    def path_params(self) -> dict[str, Any]:
        return self.request.path_params


class Vendor(Protocol):
    """The few things the shared dispatcher needs to know about a vendor."""

    name: str

    def credential(self, request: Request) -> str | None: ...

    def auth_error(self, key: str | None) -> VendorError: ...

    def malformed_json_error(self) -> VendorError: ...

    def new_request_id(self) -> str: ...

    def headers(self, request_id: str) -> dict[str, str]: ...

    def error_body(self, error: VendorError, request_id: str) -> bytes: ...

    def model_of(self, request: Request, body: Any) -> str | None: ...


def bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    if value[:7].lower() == "bearer ":
        return value[7:].strip() or None
    return None
