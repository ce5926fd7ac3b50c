"""OpenAI Responses API (`POST /v1/responses`), answer and event stream as in the lingua captures."""

from __future__ import annotations

import time
from typing import Any

from torouter.emulator._call import Answer, Call, VendorError, json_answer, sse_answer
from torouter.emulator._common import Reply, dumps, plan_reply, random_id, split_chunks, split_fragments
from torouter.emulator._openai import missing, require_model


def _hex_id(prefix: str) -> str:
    return random_id(prefix, 48, "0123456789abcdef")


def _input_texts(value: Any) -> tuple[str, str, bool]:
    """(last user text, all input text, whether a user message is last) from the `input` field."""
    if isinstance(value, str):
        return value, value, True
    last_user = ""
    user_last = False
    everything: list[str] = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict):
            continue
        content = item.get("content", item.get("output", ""))
        if isinstance(content, list):
            text = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        else:
            text = content if isinstance(content, str) else ""
        everything.append(text)
        user_last = item.get("role") == "user" and item.get("type", "message") == "message"
        if user_last:
            last_user = text
    return last_user, " ".join(everything), user_last


def _reply(call: Call, body: dict[str, Any]) -> Reply:
    last_user, prompt, user_last = _input_texts(body["input"])
    if isinstance(body.get("instructions"), str):
        prompt = body["instructions"] + " " + prompt
    tools = [
        (t["name"], t.get("parameters"))
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("type") == "function" and "name" in t
    ]
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
    effort = reasoning.get("effort")
    text_cfg = body.get("text") if isinstance(body.get("text"), dict) else {}
    fmt = text_cfg.get("format") if isinstance(text_cfg.get("format"), dict) else {}
    schema = (
        (fmt.get("schema") or {})
        if fmt.get("type") == "json_schema"
        else ({} if fmt.get("type") == "json_object" else None)
    )
    return plan_reply(
        call.step,
        last_user_text=last_user,
        prompt_text=prompt,
        tools=tools,
        thinking=bool(effort) and effort != "none",
        json_schema=schema,
        user_turn_last=user_last,
    )


def _output_items(reply: Reply) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.thinking is not None or reply.reasoning_tokens:
        items.append({"id": _hex_id("rs_"), "type": "reasoning", "summary": []})
    if reply.text or not reply.tool_calls:
        items.append(
            {
                "id": _hex_id("msg_"),
                "type": "message",
                "status": "completed",
                "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": reply.text}],
                "role": "assistant",
            }
        )
    for tool_call in reply.tool_calls:
        items.append(
            {
                "id": _hex_id("fc_"),
                "type": "function_call",
                "status": "completed",
                "arguments": tool_call.arguments_json,
                "call_id": tool_call.id or random_id("call_"),
                "name": tool_call.name,
            }
        )
    return items


def _response(body: dict[str, Any], model: str, reply: Reply, output: list[dict[str, Any]]) -> dict[str, Any]:
    incomplete = {
        "max_tokens": "max_output_tokens",
        "content_filter": "content_filter",
        "refusal": "content_filter",
    }
    reason = incomplete.get(reply.stop_reason)
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
    return {
        "id": _hex_id("resp_"),
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if reason else "completed",
        "background": False,
        "error": None,
        "incomplete_details": {"reason": reason} if reason else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": None,
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": 0,
        "top_p": body.get("top_p", 1),
        "truncation": "disabled",
        "usage": {
            "input_tokens": reply.input_tokens,
            "input_tokens_details": {"cached_tokens": reply.cached_tokens},
            "output_tokens": reply.output_tokens,
            "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
            "total_tokens": reply.input_tokens + reply.output_tokens,
        },
        "user": None,
        "metadata": body.get("metadata") or {},
    }


async def responses(call: Call) -> Answer:
    body = call.body if isinstance(call.body, dict) else {}
    model = require_model(body)
    if "input" not in body:
        raise missing("input")
    if not isinstance(body["input"], str | list):
        raise VendorError(400, "Invalid type for 'input': expected a string or an array.", param="input")
    reply = _reply(call, body)
    response = _response(body, model, reply, _output_items(reply))
    if body.get("stream"):
        return sse_answer(_events(response))
    return json_answer(response)


def _events(final: dict[str, Any]) -> list[bytes]:
    frames: list[bytes] = []

    def emit(event_type: str, **fields: Any) -> None:
        payload = {"type": event_type, "sequence_number": len(frames), **fields}
        frames.append(b"event: " + event_type.encode() + b"\ndata: " + dumps(payload) + b"\n\n")

    start = dict(final, status="in_progress", output=[], usage=None, incomplete_details=None)
    emit("response.created", response=start)
    emit("response.in_progress", response=start)
    for index, item in enumerate(final["output"]):
        kind = item["type"]
        if kind == "reasoning":
            emit("response.output_item.added", output_index=index, item=item)
            emit("response.output_item.done", output_index=index, item=item)
        elif kind == "message":
            _message_events(emit, index, item)
        else:
            _function_call_events(emit, index, item)
    terminal = "response.completed" if final["status"] == "completed" else "response.incomplete"
    emit(terminal, response=final)
    return frames


def _message_events(emit: Any, index: int, item: dict[str, Any]) -> None:
    part = item["content"][0]
    ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
    emit("response.output_item.added", output_index=index, item=dict(item, status="in_progress", content=[]))
    emit("response.content_part.added", **ids, part=dict(part, text=""))
    for piece in split_chunks(part["text"]):
        emit("response.output_text.delta", **ids, delta=piece, logprobs=[])
    emit("response.output_text.done", **ids, text=part["text"], logprobs=[])
    emit("response.content_part.done", **ids, part=part)
    emit("response.output_item.done", output_index=index, item=item)


def _function_call_events(emit: Any, index: int, item: dict[str, Any]) -> None:
    emit(
        "response.output_item.added", output_index=index, item=dict(item, status="in_progress", arguments="")
    )
    for fragment in split_fragments(item["arguments"]):
        emit("response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=fragment)
    emit(
        "response.function_call_arguments.done",
        item_id=item["id"],
        output_index=index,
        arguments=item["arguments"],
    )
    emit("response.output_item.done", output_index=index, item=item)
