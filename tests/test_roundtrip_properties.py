"""Property tests: generated conversations survive Anthropic -> hub -> OpenAI Chat -> hub -> Anthropic,
and the reverse, with nothing lost that both formats can express."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torouter.protocols import anthropic_codec, gemini_request, openai_chat_request

PNG = base64.b64encode(
    bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")
    + bytes.fromhex("1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
).decode()

words = st.text(alphabet=st.characters(categories=["L", "N", "Zs", "P"]), min_size=1, max_size=40).filter(
    lambda t: t.strip() != ""
)
ids = st.from_regex(r"\Atoolu_[A-Za-z0-9]{8,16}\Z")
names = st.sampled_from(["get_weather", "search_docs", "run_shell"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
tool_inputs = st.dictionaries(st.sampled_from(["city", "query", "limit", "flags"]), json_values, max_size=3)
TOOLS = [
    {
        "name": n,
        "description": f"The {n} tool",
        "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}},
    }
    for n in ("get_weather", "search_docs", "run_shell")
]


@st.composite
def anthropic_requests(draw: st.DrawFn, with_thinking: bool) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    pending: list[str] = []
    for turn in range(draw(st.integers(1, 4))):
        user: list[dict[str, Any]] = []
        for tool_id in pending:
            content: Any = draw(
                st.one_of(
                    words, st.lists(words.map(lambda t: {"type": "text", "text": t}), min_size=1, max_size=2)
                )
            )
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id, "content": content}
            if draw(st.booleans()):
                result["is_error"] = True
            user.append(result)
        for _ in range(draw(st.integers(0 if pending else 1, 2))):
            kind = draw(st.sampled_from(["text", "text", "image_b64", "image_url"]))
            if kind == "text":
                user.append({"type": "text", "text": draw(words)})
            elif kind == "image_b64":
                user.append(
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
                )
            else:
                user.append(
                    {"type": "image", "source": {"type": "url", "url": f"https://example.com/{turn}.png"}}
                )
        messages.append({"role": "user", "content": user})
        if turn == 3 or not draw(st.booleans()):
            break
        assistant: list[dict[str, Any]] = []
        if with_thinking and draw(st.booleans()):
            assistant.append(
                {
                    "type": "thinking",
                    "thinking": draw(words),
                    "signature": draw(st.from_regex(r"\A[A-Za-z0-9+/]{16,40}\Z")),
                }
            )
        if draw(st.booleans()):
            assistant.append({"type": "text", "text": draw(words)})
        # Tool ids are unique across a conversation, as Anthropic requires.
        used = {
            b["id"]
            for m in messages
            for b in m["content"]
            if isinstance(b, dict) and b.get("type") == "tool_use"
        }
        pending = draw(st.lists(ids.filter(lambda i, used=used: i not in used), max_size=2, unique=True))
        for tool_id in pending:
            assistant.append(
                {"type": "tool_use", "id": tool_id, "name": draw(names), "input": draw(tool_inputs)}
            )
        if not assistant:
            assistant.append({"type": "text", "text": draw(words)})
        messages.append({"role": "assistant", "content": assistant})
    if messages[-1]["role"] == "assistant" and pending:
        messages.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": t, "content": "ok"} for t in pending],
            }
        )
    body: dict[str, Any] = {
        "model": "claude-opus-4-7",
        "max_tokens": draw(st.integers(1, 8192)),
        "messages": messages,
    }
    if draw(st.booleans()):
        body["system"] = draw(
            st.one_of(
                words, st.lists(words.map(lambda t: {"type": "text", "text": t}), min_size=1, max_size=3)
            )
        )
    if draw(st.booleans()):
        body["tools"] = TOOLS
        body["tool_choice"] = draw(
            st.sampled_from(
                [{"type": "auto"}, {"type": "any"}, {"type": "none"}, {"type": "tool", "name": "run_shell"}]
            )
        )
    if draw(st.booleans()):
        body["temperature"] = draw(st.floats(0, 1).map(lambda f: round(f, 2)))
    if draw(st.booleans()):
        body["top_p"] = draw(st.floats(0, 1).map(lambda f: round(f, 2)))
    if draw(st.booleans()):
        body["stop_sequences"] = draw(st.lists(words, min_size=1, max_size=4, unique=True))
    if draw(st.booleans()):
        body["metadata"] = {"user_id": draw(words)}
    if draw(st.booleans()):
        body["stream"] = True
    return body


def semantic_anthropic(body: dict[str, Any], keep_thinking: bool) -> dict[str, Any]:
    """What both formats can express, in one canonical form."""
    system = body.get("system")
    if isinstance(system, list):
        system = "\n\n".join(b["text"] for b in system)
    turns = []
    for m in body["messages"]:
        content = m["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        canon = []
        for b in blocks:
            if b["type"] == "thinking" and not keep_thinking:
                continue
            if b["type"] == "tool_result":
                c = b.get("content")
                text = c if isinstance(c, str) else "".join(x["text"] for x in c or [])
                canon.append(("tool_result", b["tool_use_id"], text, bool(b.get("is_error"))))
            elif b["type"] == "text":
                canon.append(("text", b["text"]))
            elif b["type"] == "tool_use":
                canon.append(
                    ("tool_use", b["id"], b["name"], orjson.dumps(b["input"], option=orjson.OPT_SORT_KEYS))
                )
            elif b["type"] == "image":
                canon.append(("image", orjson.dumps(b["source"], option=orjson.OPT_SORT_KEYS)))
            elif b["type"] == "thinking":
                canon.append(("thinking", b["thinking"], b["signature"]))
        turns.append((m["role"], canon))
    merged: list[tuple[str, list[Any]]] = []
    for role, canon in turns:  # consecutive same-role turns mean the same as one turn
        if merged and merged[-1][0] == role:
            merged[-1][1].extend(canon)
        else:
            merged.append((role, canon))
    keep = {
        k: body.get(k)
        for k in (
            "model",
            "max_tokens",
            "temperature",
            "top_p",
            "stop_sequences",
            "metadata",
            "tools",
            "tool_choice",
        )
    }
    keep["stream"] = bool(body.get("stream"))
    return {"system": system or None, "turns": merged, **keep}


def through_openai(body: dict[str, Any], platform: str) -> dict[str, Any]:
    chat = openai_chat_request.encode_request(anthropic_codec.decode_request(body), platform)
    chat = orjson.loads(orjson.dumps(chat))  # over the wire and back
    return anthropic_codec.encode_request(openai_chat_request.decode_request(chat))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(anthropic_requests(with_thinking=False))
def test_anthropic_conversations_survive_a_round_trip_through_openai(body: dict[str, Any]) -> None:
    assert semantic_anthropic(through_openai(body, "openai"), False) == semantic_anthropic(body, False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(anthropic_requests(with_thinking=True))
def test_thinking_signatures_survive_a_round_trip_through_openrouter(body: dict[str, Any]) -> None:
    assert semantic_anthropic(through_openai(body, "openrouter"), True) == semantic_anthropic(body, True)


@st.composite
def openai_requests(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": draw(st.sampled_from(["system", "developer"])), "content": draw(words)})
    pending: list[str] = []
    for turn in range(draw(st.integers(1, 4))):
        for call_id in pending:
            messages.append({"role": "tool", "tool_call_id": call_id, "content": draw(words)})
        if not pending or draw(st.booleans()):
            parts = draw(st.lists(words, min_size=1, max_size=2))
            if draw(st.booleans()):
                messages.append({"role": "user", "content": parts[0]})
            else:
                content: list[dict[str, Any]] = [{"type": "text", "text": p} for p in parts]
                if draw(st.booleans()):
                    content.append(
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
                    )
                messages.append({"role": "user", "content": content})
        if turn == 3 or not draw(st.booleans()):
            break
        pending = [
            f"call_{draw(st.from_regex(r'[A-Za-z0-9]{12}', fullmatch=True))}"
            for _ in range(draw(st.integers(0, 2)))
        ]
        pending = list(dict.fromkeys(pending))
        msg: dict[str, Any] = {
            "role": "assistant",
            "content": draw(words) if (not pending or draw(st.booleans())) else None,
        }
        if pending:
            msg["tool_calls"] = [
                {
                    "id": c,
                    "type": "function",
                    "function": {"name": draw(names), "arguments": orjson.dumps(draw(tool_inputs)).decode()},
                }
                for c in pending
            ]
        messages.append(msg)
    if pending and messages[-1]["role"] == "assistant":
        messages.extend({"role": "tool", "tool_call_id": c, "content": "done"} for c in pending)
    body: dict[str, Any] = {"model": "gpt-4o", "messages": messages}
    if draw(st.booleans()):
        body["max_completion_tokens"] = draw(st.integers(1, 8192))
    if draw(st.booleans()):
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t["description"],
                    "parameters": t["input_schema"],
                },
            }
            for t in TOOLS
        ]
        body["tool_choice"] = draw(
            st.sampled_from(
                ["auto", "none", "required", {"type": "function", "function": {"name": "search_docs"}}]
            )
        )
    if draw(st.booleans()):
        body["temperature"] = draw(st.floats(0, 1).map(lambda f: round(f, 2)))
    if draw(st.booleans()):
        body["stop"] = draw(st.lists(words, min_size=1, max_size=4, unique=True))
    if draw(st.booleans()):
        body["user"] = draw(words)
    return body


def semantic_openai(body: dict[str, Any]) -> dict[str, Any]:
    system = [m["content"] for m in body["messages"] if m["role"] in ("system", "developer")]
    turns: list[tuple[str, list[Any]]] = []
    for m in body["messages"]:
        role = m["role"]
        if role in ("system", "developer"):
            continue
        content = m.get("content")
        items: list[Any] = []
        if isinstance(content, str):
            items.append(("text", content))
        elif isinstance(content, list):
            for part in content:
                items.append(
                    ("text", part["text"]) if part["type"] == "text" else ("image", part["image_url"]["url"])
                )
        if role == "tool":
            items = [("tool", m["tool_call_id"], content)]
            role = "user"
        for call in m.get("tool_calls") or []:
            items.append(
                ("call", call["id"], call["function"]["name"], orjson.loads(call["function"]["arguments"]))
            )
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(items)
        else:
            turns.append((role, items))
    for _, items in turns:  # a user turn's tool results come first, whatever the order of the parts
        items.sort(key=lambda item: item[0] != "tool")
    keep = {k: body.get(k) for k in ("model", "temperature", "stop", "user", "tool_choice", "tools")}
    keep["max_tokens"] = body.get("max_completion_tokens") or body.get("max_tokens")
    return {"system": "\n\n".join(system) or None, "turns": turns, **keep}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(openai_requests())
def test_openai_conversations_survive_a_round_trip_through_anthropic(body: dict[str, Any]) -> None:
    wire = orjson.loads(
        orjson.dumps(anthropic_codec.encode_request(openai_chat_request.decode_request(body)))
    )
    back = openai_chat_request.encode_request(anthropic_codec.decode_request(wire), "openai")
    expected = semantic_openai(body)
    if expected["max_tokens"] is None:
        expected["max_tokens"] = (
            anthropic_codec.DEFAULT_MAX_TOKENS
        )  # Anthropic requires one: the default is added
    assert semantic_openai(back) == expected


def canonical_ids(semantic: dict[str, Any]) -> dict[str, Any]:
    """Tool ids by order of first appearance: Gemini 2.x carries no ids, so the gateway mints them."""
    names: dict[str, str] = {}
    turns = []
    for role, items in semantic["turns"]:
        out = []
        for item in items:
            if item[0] in ("tool_use", "tool_result"):
                item = (item[0], names.setdefault(item[1], f"id{len(names)}"), *item[2:])
            out.append(item)
        turns.append((role, out))
    return {**semantic, "turns": turns}


def through_gemini(body: dict[str, Any]) -> dict[str, Any]:
    request = anthropic_codec.decode_request(body)
    wire = orjson.loads(orjson.dumps(gemini_request.encode_request(request)))
    back = gemini_request.decode_request(wire, body["model"])
    back.stream = request.stream  # Gemini says "stream" with the URL, not the body
    return anthropic_codec.encode_request(back)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(anthropic_requests(with_thinking=False))
def test_anthropic_conversations_survive_a_round_trip_through_gemini(body: dict[str, Any]) -> None:
    got = canonical_ids(semantic_anthropic(through_gemini(body), False))
    want = canonical_ids(semantic_anthropic(body, False))
    want["metadata"] = None  # Gemini has no end-user field
    assert got == want
