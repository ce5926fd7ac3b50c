"""The kinds of call the suite measures: each client protocol, pass-through and translated,
streaming and not."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from harness import JSON_UPSTREAM, SSE_UPSTREAM

OPENAI, ANTHROPIC = "openai", "anthropic"
PATHS = {OPENAI: "/v1/chat/completions", ANTHROPIC: "/v1/messages"}
LUA = {OPENAI: "wrk-openai-chat.lua", ANTHROPIC: "wrk-anthropic-messages.lua"}
# The model each client asks for. The upstream ignores it; LiteLLM routes by it.
MODELS = {OPENAI: "gpt-4o-mini", ANTHROPIC: "claude-opus-4-7"}
VENDORS = {OPENAI: "OpenAI", ANTHROPIC: "Anthropic"}


@dataclass(frozen=True, slots=True)
class Scenario:
    """A client protocol, the upstream's protocol and whether the answer streams."""

    client: str  # openai | anthropic: the surface the client calls
    upstream: str  # openai | anthropic: the protocol the static upstream answers in
    stream: bool

    @property
    def name(self) -> str:
        base = {OPENAI: "chat", ANTHROPIC: "messages"}[self.client]
        if self.translated:
            base += f"→{self.upstream}"
        return base + ("-stream" if self.stream else "")

    @property
    def title(self) -> str:
        client = {OPENAI: "OpenAI chat", ANTHROPIC: "Anthropic messages"}[self.client]
        how = f"translated to {VENDORS[self.upstream]}" if self.translated else "pass-through"
        return f"{client}, {how}" + (", streaming" if self.stream else "")

    @property
    def translated(self) -> bool:
        return self.client != self.upstream

    @property
    def path(self) -> str:
        return PATHS[self.client]

    @property
    def lua(self) -> str:
        return LUA[self.client]

    @property
    def origin(self) -> str:
        """The static upstream's scheme://host:port: JSON answers on one port, SSE on the other."""
        return SSE_UPSTREAM if self.stream else JSON_UPSTREAM

    @property
    def upstream_base(self) -> str:
        """The base URL an SDK of the upstream's vendor would take."""
        return self.origin + ("/v1" if self.upstream == OPENAI else "")

    @property
    def passthrough_twin(self) -> Scenario:
        """The pass-through scenario with the same client protocol and streaming."""
        return Scenario(self.client, self.client, self.stream)


SCENARIOS = [
    Scenario(client, upstream, stream)
    for client, upstream in (
        (OPENAI, OPENAI),
        (ANTHROPIC, ANTHROPIC),
        (OPENAI, ANTHROPIC),
        (ANTHROPIC, OPENAI),
    )
    for stream in (False, True)
]
BY_NAME = {s.name: s for s in SCENARIOS}
# ASCII spellings for the command line: chat->anthropic, chat-anthropic.
ALIASES = {s.name.replace("→", "->"): s for s in SCENARIOS} | {s.name.replace("→", "-"): s for s in SCENARIOS}


def select(spec: str) -> list[Scenario]:
    """--scenarios: names, or groups `all`, `passthrough`, `translated`, `stream`, `nostream`."""
    picked: list[Scenario] = []
    groups = {
        "all": SCENARIOS,
        "passthrough": [s for s in SCENARIOS if not s.translated],
        "translated": [s for s in SCENARIOS if s.translated],
        "stream": [s for s in SCENARIOS if s.stream],
        "nostream": [s for s in SCENARIOS if not s.stream],
    }
    for word in (w.strip() for w in spec.split(",") if w.strip()):
        found = groups.get(word) or [BY_NAME.get(word) or ALIASES.get(word)]
        if found == [None]:
            known = ", ".join([*groups, *ALIASES])
            raise ValueError(f"unknown scenario {word!r}; known: {known}")
        picked += [s for s in found if s is not None]
    if not picked:
        raise ValueError("no scenario selected")
    return list(dict.fromkeys(picked))


def parse_args_with_scenarios(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The parser's arguments, with --scenarios turned into Scenarios (a usage error if unknown)."""
    args = parser.parse_args(argv)
    try:
        args.scenarios = select(args.scenarios)
    except ValueError as exc:
        parser.error(str(exc))
    return args
