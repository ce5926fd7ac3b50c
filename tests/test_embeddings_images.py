"""Embeddings and image generation through the OpenAI surface, and Gemini embeddings on OpenAI groups."""

from __future__ import annotations

import base64
import struct

import openai
import pytest
from google import genai
from google.genai import types

from tests.conftest import World


def oa(world: World, group: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=world.keys[group], base_url=world.gateway.openai_base_url, max_retries=0)


@pytest.mark.parametrize("group", ["openai", "compat"])
def test_embeddings_pass_through_with_both_encodings(world: World, group: str) -> None:
    c = oa(world, group)
    floats = c.embeddings.create(
        model="text-embedding-3-small", input=["alpha", "beta"], encoding_format="float"
    )
    assert [d.index for d in floats.data] == [0, 1] and all(
        isinstance(x, float) for x in floats.data[0].embedding
    )
    raw = c.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="alpha", encoding_format="base64"
    )
    b64 = raw.http_response.json()["data"][0]["embedding"]
    assert isinstance(b64, str)
    decoded = list(struct.unpack(f"<{len(base64.b64decode(b64)) // 4}f", base64.b64decode(b64)))
    assert decoded == pytest.approx(floats.data[0].embedding, rel=1e-6)
    sent = [r for r in world.emulator.requests() if r["path"] == "/v1/embeddings"][-1]
    assert sent["body"]["encoding_format"] == "base64"


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings_on_a_gemini_group_are_translated(world: World, encoding: str) -> None:
    c = oa(world, "gemini")
    one = c.embeddings.create(model="gemini-embedding-001", input="single text", encoding_format="float")
    many = c.embeddings.create(model="gemini-embedding-001", input=["first", "second", "third"], dimensions=4)
    assert len(one.data) == 1 and len(one.data[0].embedding) > 0
    assert [d.index for d in many.data] == [0, 1, 2] and all(len(d.embedding) == 4 for d in many.data)
    assert one.usage.prompt_tokens > 0
    paths = [r["path"] for r in world.emulator.requests()]
    assert "/v1beta/models/gemini-embedding-001:embedContent" in paths
    assert "/v1beta/models/gemini-embedding-001:batchEmbedContents" in paths
    raw = c.embeddings.with_raw_response.create(
        model="gemini-embedding-001", input="enc", encoding_format=encoding
    )
    value = raw.http_response.json()["data"][0]["embedding"]
    assert isinstance(value, str if encoding == "base64" else list)


def test_gemini_embed_content_reaches_an_openai_group(world: World) -> None:
    c = genai.Client(
        api_key=world.keys["gemini-on-openai"],
        http_options=types.HttpOptions(base_url=world.gateway.url, api_version="v1beta"),
    )
    result = c.models.embed_content(model="gemini-embedding-001", contents=["one", "two"])
    assert len(result.embeddings) == 2 and len(result.embeddings[0].values) > 0
    sent = [r for r in world.emulator.requests() if r["path"] == "/v1/embeddings"][-1]["body"]
    assert sent["model"] == "text-embedding-3-small" and sent["input"] == ["one", "two"]


def test_images_generate_passes_through_to_openai(world: World) -> None:
    img = oa(world, "openai").images.generate(
        model="gpt-image-1", prompt="a lighthouse at dusk", size="1024x1024"
    )
    assert img.data and (img.data[0].b64_json or img.data[0].url)
    assert [r for r in world.emulator.requests() if r["path"] == "/v1/images/generations"][-1]["body"][
        "prompt"
    ] == "a lighthouse at dusk"


def test_images_on_other_platforms_get_a_clear_400(world: World) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        oa(world, "gpt-on-anthropic").images.generate(model="gpt-image-1", prompt="x")
    assert "anthropic" in exc.value.message and exc.value.code == "unsupported_platform"
