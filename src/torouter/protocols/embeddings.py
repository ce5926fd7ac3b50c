"""Embeddings between OpenAI's /v1/embeddings and Gemini's embedContent / batchEmbedContents."""

from __future__ import annotations

import base64
import struct
from typing import Any

from torouter.accounting.tokens import text_tokens
from torouter.errors import GatewayError


def check_openai(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise GatewayError("invalid_request", "The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise GatewayError("invalid_request", "you must provide a model parameter", param="model")
    value = body.get("input")
    if value is None:
        raise GatewayError(
            "invalid_request",
            "Missing required parameter: 'input'.",
            param="input",
            code="missing_required_parameter",
        )
    if not isinstance(value, (str, list)) or (isinstance(value, list) and not value):
        raise GatewayError(
            "invalid_request",
            "'input' must be a string or a non-empty array.",
            param="input",
            code="invalid_type",
        )
    dims = body.get("dimensions")
    if dims is not None and (not isinstance(dims, int) or isinstance(dims, bool)):
        raise GatewayError(
            "invalid_request",
            "Invalid type for 'dimensions': expected an integer.",
            param="dimensions",
            code="invalid_type",
        )
    fmt = body.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise GatewayError(
            "invalid_request",
            f"'{fmt}' is not one of ['float', 'base64'] - 'encoding_format'",
            param="encoding_format",
        )
    return body


def openai_texts(body: dict[str, Any]) -> list[str]:
    """The texts of an OpenAI embeddings input; token-id arrays cannot be read by another vendor."""
    value = body["input"]
    items = [value] if isinstance(value, str) else value
    if not all(isinstance(t, str) for t in items):
        raise GatewayError(
            "invalid_request",
            "Token-id inputs can only go to OpenAI-protocol platforms; send the text instead.",
            param="input",
        )
    return items


def to_gemini(texts: list[str], model: str, dimensions: int | None) -> tuple[str, dict[str, Any]]:
    """(action, body) for Gemini: one text is embedContent, several are batchEmbedContents."""

    def one(text: str) -> dict[str, Any]:
        req: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
        if dimensions:
            req["outputDimensionality"] = dimensions
        return req

    if len(texts) == 1:
        return "embedContent", one(texts[0])
    return "batchEmbedContents", {"requests": [{"model": f"models/{model}", **one(t)} for t in texts]}


def gemini_vectors(body: Any) -> list[list[float]]:
    if isinstance(body, dict) and isinstance(body.get("embedding"), dict):
        return [list(body["embedding"].get("values") or [])]
    if isinstance(body, dict) and isinstance(body.get("embeddings"), list):
        return [list(e.get("values") or []) for e in body["embeddings"] if isinstance(e, dict)]
    raise ValueError("not an embeddings answer")


def encode_vector(values: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":  # little-endian float32, as OpenAI sends it
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    return values


def openai_answer(vectors: list[list[float]], model: str, texts: list[str], encoding: str) -> dict[str, Any]:
    tokens = sum(text_tokens(t) for t in texts)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode_vector(v, encoding)}
            for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def gemini_texts(body: Any, batch: bool) -> tuple[list[str], int | None]:
    """The texts (and outputDimensionality) of a Gemini embedContent or batchEmbedContents call."""
    if not isinstance(body, dict):
        raise GatewayError("invalid_request", "The request body must be a JSON object.")
    requests = body.get("requests") if batch else [body]
    if not isinstance(requests, list) or not requests:
        raise GatewayError("invalid_request", "requests must be a non-empty list.")
    texts: list[str] = []
    dims: int | None = None
    for r in requests:
        content = r.get("content") if isinstance(r, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list):
            raise GatewayError("invalid_request", "content.parts is required.")
        texts.append(
            "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
        )
        dims = r.get("outputDimensionality") or r.get("output_dimensionality") or dims
        if dims is not None and (not isinstance(dims, int) or isinstance(dims, bool)):
            raise GatewayError("invalid_request", "outputDimensionality must be a whole number.")
    return texts, dims


def openai_vectors(body: Any) -> list[list[float]]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ValueError("not an embeddings answer")
    ordered = sorted((d for d in data if isinstance(d, dict)), key=lambda d: d.get("index", 0))
    out = []
    for d in ordered:
        emb = d.get("embedding")
        if isinstance(emb, str):  # base64 from an upstream that ignored encoding_format
            raw = base64.b64decode(emb)
            emb = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        out.append(list(emb or []))
    return out


def gemini_answer(vectors: list[list[float]], batch: bool) -> dict[str, Any]:
    if batch:
        return {"embeddings": [{"values": v} for v in vectors]}
    return {"embedding": {"values": vectors[0] if vectors else []}}
