"""What each `anthropic-beta` value means when the upstream is not Anthropic.

A beta header never fails a call. On an Anthropic upstream every value passes through. On other
platforms a value is either *mapped* (the feature it unlocks is translated through the hub) or
*dropped* (logged at debug level), as this table says.
"""

from __future__ import annotations

import logging

log = logging.getLogger("torouter.betas")

# beta value -> (policy, what happens to the feature on a non-Anthropic upstream)
POLICY: dict[str, tuple[str, str]] = {
    "prompt-caching-2024-07-31": (
        "mapped",
        "cache_control is kept for openrouter (which forwards it) and removed for openai and openai_compatible, which cache on their own",
    ),
    "extended-cache-ttl-2025-04-11": (
        "dropped",
        "the 1-hour TTL has no equivalent; caching falls back to the target's own",
    ),
    "interleaved-thinking-2025-05-14": (
        "dropped",
        "reasoning models interleave reasoning and tool calls on their own",
    ),
    "context-management-2025-06-27": ("dropped", "the context_management field is removed from the request"),
    "effort-2025-11-24": ("mapped", "output_config.effort becomes the target's reasoning effort"),
    "output-128k-2025-02-19": ("mapped", "max_tokens passes as the target's max output tokens"),
    "fine-grained-tool-streaming-2025-05-14": ("mapped", "tool arguments stream as the target sends them"),
    "token-efficient-tools-2025-02-19": ("dropped", "tool encoding is the target's own"),
    "claude-code-20250219": ("dropped", "identifies Claude Code to Anthropic; nothing to map"),
    "oauth-2025-04-20": ("dropped", "ToRouter authenticates with its own key, not the client's OAuth token"),
    "advanced-tool-use-2025-11-20": ("dropped", "tool search and deferred tools are Anthropic features"),
    "thinking-token-count-2026-05-13": (
        "dropped",
        "thinking tokens are reported as the target's reasoning tokens",
    ),
    "files-api-2025-04-14": ("dropped", "file_id sources are rejected with a 400 naming the platform"),
    "code-execution-2025-08-25": ("dropped", "server tools are Anthropic's own"),
    "web-search-2025-03-05": ("dropped", "server tools are Anthropic's own"),
    "mcp-client-2025-04-04": ("dropped", "MCP servers are connected by Anthropic's API only"),
    "computer-use-2025-01-24": ("dropped", "computer use tools are Anthropic's own"),
}


def split(header_values: list[str]) -> list[str]:
    return [b.strip() for value in header_values for b in value.split(",") if b.strip()]


def note_for_platform(betas: list[str], platform: str) -> list[str]:
    """Log what happens to each beta on a non-Anthropic platform; returns the dropped ones."""
    dropped = []
    for beta in betas:
        policy, what = POLICY.get(beta, ("dropped", "unknown to ToRouter"))
        if policy == "dropped":
            dropped.append(beta)
        log.debug("anthropic-beta %s on %s: %s (%s)", beta, platform, policy, what)
    return dropped
