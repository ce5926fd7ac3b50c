"""The emulator's ASGI app: vendor routes behind one dispatcher, plus the `/_emulator/` control API."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from torouter.emulator import _anthropic, _gemini, _openai, _openai_responses
from torouter.emulator._call import Answer, Call, Vendor, VendorError
from torouter.emulator._replay import replay_answer
from torouter.emulator._script import ControlState, Step, StepError
from torouter.emulator._stream import EmulatorResponse

Handler = Callable[[Call], Awaitable[Answer]]


def find_specs_dir() -> Path | None:
    """TOROUTER_SPECS_DIR, else a `shared/specs` or `../shared/specs` above the cwd or this package."""
    configured = os.environ.get("TOROUTER_SPECS_DIR")
    if configured:
        return Path(configured)
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            for candidate in (folder / "shared" / "specs", folder.parent / "shared" / "specs"):
                if candidate.is_dir():
                    return candidate
    return None


class Dispatcher:
    """Runs every vendor request the same way: record, authenticate, parse, take a step, answer."""

    def __init__(self, state: ControlState, specs_dir: Path | None, expected_key: str | None) -> None:
        self.state = state
        self.specs_dir = specs_dir
        self.expected_key = expected_key

    def route(self, vendor: Vendor, handler: Handler) -> Callable[[Request], Awaitable[EmulatorResponse]]:
        async def endpoint(request: Request) -> EmulatorResponse:
            return await self.handle(request, vendor, handler)

        return endpoint

    async def handle(self, request: Request, vendor: Vendor, handler: Handler) -> EmulatorResponse:
        raw = await request.body()
        body: Any = None
        bad_json = False
        if raw.strip():
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                bad_json = True
        record = self.state.record(request, raw, body)
        request_id = vendor.new_request_id()
        key = vendor.credential(request)
        if not key or (self.expected_key is not None and key != self.expected_key):
            return self._error(vendor, vendor.auth_error(key), request_id, record, None)
        if request.method == "POST" and (bad_json or body is None):
            return self._error(vendor, vendor.malformed_json_error(), request_id, record, None)
        streaming = ":streamGenerateContent" in request.url.path or (
            isinstance(body, dict) and body.get("stream") is True
        )
        step = self.state.take_step(request.url.path, vendor.model_of(request, body), streaming, key)
        try:
            answer = await self._answer(request, vendor, handler, body, step, request_id)
        except VendorError as error:
            return self._error(vendor, error, request_id, record, step)
        headers = {**vendor.headers(request_id), **answer.headers}
        return self._respond(answer, headers, record, step)

    async def _answer(
        self,
        request: Request,
        vendor: Vendor,
        handler: Handler,
        body: Any,
        step: Step | None,
        request_id: str,
    ) -> Answer:
        if step is not None and step.replay is not None:
            return replay_answer(self.specs_dir, step.replay, step.status)
        if step is not None and step.raw is not None:
            raw = step.raw
            return Answer(
                [str(raw["body"]).encode()],
                content_type=raw.get("content_type", "text/html; charset=utf-8"),
                status=int(raw.get("status", 200)),
            )
        if step is not None and step.status is not None:
            error = step.error or {}
            raise VendorError(
                step.status, error.get("message"), type=error.get("type"), code=error.get("code")
            )
        return await handler(Call(request, body, step, request_id, self.specs_dir))

    def _error(
        self, vendor: Vendor, error: VendorError, request_id: str, record: dict[str, Any], step: Step | None
    ) -> EmulatorResponse:
        record["error_status"] = error.status
        answer = Answer([vendor.error_body(error, request_id)], status=error.status)
        return self._respond(answer, vendor.headers(request_id), record, step)

    @staticmethod
    def _respond(
        answer: Answer, headers: dict[str, str], record: dict[str, Any], step: Step | None
    ) -> EmulatorResponse:
        record["status"] = answer.status
        if step is not None:
            headers = {**headers, **step.headers}
        return EmulatorResponse(
            status=answer.status,
            frames=answer.frames,
            content_type=answer.content_type,
            headers=headers,
            record=record,
            streaming=answer.streaming,
            delay=step.delay if step else 0.0,
            chunk_delay=step.chunk_delay if step else 0.0,
            tail_delay=step.tail_delay if step else 0.0,
            drop_after=step.drop_after if step else None,
            drop_before_headers=step.drop_before_headers if step else False,
            malformed_at=step.malformed_at if step else None,
            content_encoding=step.content_encoding if step else None,
            drip=step.drip if step else None,
        )


def _models_router(
    dispatcher: Dispatcher, openai: Handler, anthropic: Handler, gemini: Handler
) -> Callable[[Request], Awaitable[Any]]:
    """`/v1/models...` is shared by three vendors; the credential the client sends tells them apart.

    Gemini's v1 paths (`/v1/models/{m}:generateContent`) land here too: google-genai now defaults to v1.
    """

    async def endpoint(request: Request) -> EmulatorResponse:
        if request.method == "POST" or "x-goog-api-key" in request.headers or "key" in request.query_params:
            return await dispatcher.handle(request, _gemini.VENDOR, gemini)
        if "anthropic-version" in request.headers or "x-api-key" in request.headers:
            return await dispatcher.handle(request, _anthropic.VENDOR, anthropic)
        return await dispatcher.handle(request, _openai.VENDOR, openai)

    return endpoint


def _control_routes(state: ControlState) -> list[Route]:
    async def script(request: Request) -> Response:
        try:
            data = orjson.loads(await request.body())
            raw_steps = data["steps"] if isinstance(data, dict) else data
            steps = [Step.parse(s) for s in raw_steps]
        except (orjson.JSONDecodeError, KeyError, TypeError, StepError) as exc:
            return JSONResponse({"error": f"bad script: {exc}"}, status_code=400)
        state.add_steps(steps)
        return JSONResponse({"queued": len(steps), "pending": state.pending()})

    async def requests(request: Request) -> Response:
        return Response(orjson.dumps({"requests": state.records()}), media_type="application/json")

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "pending_steps": state.pending()})

    return [
        Route("/_emulator/script", script, methods=["POST"]),
        Route("/_emulator/requests", requests, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/health", health, methods=["GET"]),
    ]


def create_app(specs_dir: Path | None = None, expected_key: str | None = None) -> Starlette:
    """Build the emulator. `expected_key` (or env TOROUTER_EMULATOR_KEY) makes any other key fail auth."""
    specs = Path(specs_dir) if specs_dir is not None else find_specs_dir()
    key = expected_key if expected_key is not None else os.environ.get("TOROUTER_EMULATOR_KEY") or None
    state = ControlState()
    dispatch = Dispatcher(state, specs, key)
    oa, an, ge = _openai.VENDOR, _anthropic.VENDOR, _gemini.VENDOR
    list_models = (_openai.list_models, _anthropic.list_models, _gemini.list_models)
    get_model = (_openai.get_model, _anthropic.get_model, _gemini.models_target)
    routes = [
        *_control_routes(state),
        Route("/v1/chat/completions", dispatch.route(oa, _openai.chat_completions), methods=["POST"]),
        Route("/v1/responses", dispatch.route(oa, _openai_responses.responses), methods=["POST"]),
        Route("/v1/embeddings", dispatch.route(oa, _openai.embeddings), methods=["POST"]),
        Route("/v1/images/generations", dispatch.route(oa, _openai.images_generations), methods=["POST"]),
        Route("/v1/models", _models_router(dispatch, *list_models), methods=["GET"]),
        Route("/v1/models/{model_id:path}", _models_router(dispatch, *get_model), methods=["GET", "POST"]),
        Route("/v1/messages", dispatch.route(an, _anthropic.messages), methods=["POST"]),
        Route("/v1/messages/count_tokens", dispatch.route(an, _anthropic.count_tokens), methods=["POST"]),
        Route("/v1beta/models", dispatch.route(ge, _gemini.list_models), methods=["GET"]),
        Route(
            "/v1beta/models/{target:path}", dispatch.route(ge, _gemini.models_target), methods=["GET", "POST"]
        ),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = state
    app.state.specs_dir = specs
    return app
