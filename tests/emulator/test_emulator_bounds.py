"""Sizes a client picks (images, embedding dimensions) are bounded as the vendors bound them.

An unbounded `n` or `dimensions` once let a fuzzed request make the emulator build a billion
items in the test process's memory.
"""

from __future__ import annotations

import httpx
import pytest

from emulator_harness import TEST_KEY as KEY
from emulator_harness import EmulatorServer

OPENAI = {"authorization": f"Bearer {KEY}"}


@pytest.mark.parametrize("n", [0, 11, 10**9, 2.5, "3", True])
def test_image_count_outside_1_to_10_is_a_400(emulator: EmulatorServer, n: object) -> None:
    r = httpx.post(
        emulator.openai_base_url + "/images/generations",
        headers=OPENAI,
        json={"model": "dall-e-2", "prompt": "a cat", "n": n},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "n"


@pytest.mark.parametrize("dimensions", [0, 3073, 10**9, "8"])
def test_embedding_dimensions_outside_what_models_offer_is_a_400(
    emulator: EmulatorServer, dimensions: object
) -> None:
    r = httpx.post(
        emulator.openai_base_url + "/embeddings",
        headers=OPENAI,
        json={"model": "text-embedding-3-small", "input": "hi", "dimensions": dimensions},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "dimensions"
    g = httpx.post(
        emulator.url + "/v1beta/models/gemini-embedding-001:embedContent",
        headers={"x-goog-api-key": KEY},
        json={"content": {"parts": [{"text": "hi"}]}, "outputDimensionality": dimensions},
    )
    assert g.status_code == 400 and g.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_sizes_within_bounds_still_work(emulator: EmulatorServer) -> None:
    r = httpx.post(
        emulator.openai_base_url + "/embeddings",
        headers=OPENAI,
        json={"model": "text-embedding-3-small", "input": "hi", "dimensions": 3072},
    )
    assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 3072
    images = httpx.post(
        emulator.openai_base_url + "/images/generations",
        headers=OPENAI,
        json={"model": "dall-e-2", "prompt": "a cat", "n": 10},
    )
    assert images.status_code == 200 and len(images.json()["data"]) == 10
