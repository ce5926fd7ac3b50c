"""ToRouter: an LLM API gateway for the OpenAI, Anthropic and Gemini APIs."""

from __future__ import annotations

__version__ = "0.1.0"
