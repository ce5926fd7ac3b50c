"""docs/benchmarks.md: the run's machine and versions, the targets with PASS/FAIL, the charts, one
table per scenario, time to first token, and what each peer cannot do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import WrkResult, markdown_table

from suite.goals import Check
from suite.runner import Cell, Results
from suite.scenarios import Scenario
from suite.targets import Target
from suite.ttft import Ttft


@dataclass(slots=True)
class RunInfo:
    command: str
    date: str
    machine: list[str]  # "- ..." lines
    versions: list[str]
    method: list[str]
    charts: list[tuple[str, str]]  # (title, path relative to the Markdown file)


PEER_NOTES = [
    "**nginx direct** is the static upstream itself (`shared/bench/upstream/nginx.conf`, one nginx"
    " worker): the ceiling. It has nothing to translate, so it appears in pass-through scenarios only.",
    "**The floor** (`shared/bench/floor/asgi_floor.py`) is uvicorn + uvloop + httptools with an aiohttp"
    " client and no auth, parsing or accounting: the least any Python gateway can cost. It cannot"
    " translate, so translated scenarios are compared with the pass-through floor of the same client"
    " protocol. It reads a whole SSE answer and returns it in one piece, while gateways relay events"
    " as they come; its streaming figures are a lower bound on cost, not the same work.",
    "**ToRouter** runs with auth, limits and usage accounting on: every call is authenticated with a"
    " key from the store, admitted against the key's rpm, tpm and budget limits (set far above what"
    " a run reaches, so they never bind), priced, and its usage written to SQLite in batches."
    " Translated calls use a key of a group on the other platform.",
    "**LiteLLM** runs from its own virtual environment with the master key (checked in memory) and no"
    " database, so it does no per-key limits or spend tracking here: it does less than ToRouter."
    " `--num_workers` sets its processes. `/v1/messages` to an OpenAI model goes to the Responses API"
    " unless `use_chat_completions_url_for_anthropic_messages` is set; the static upstream serves"
    " Chat Completions only, so the bench sets it.",
    "**Portkey** (the open-source gateway, Node) is one process with no worker option; its all-cores"
    " figures do not exist and it is compared with one ToRouter worker. It has no client auth, limits"
    " or accounting of its own. It routes on `x-portkey-provider` and `x-portkey-custom-host`."
    ' It cannot answer `/v1/messages` for an OpenAI provider ("messages is not supported by openai"),'
    " so Anthropic clients on an OpenAI upstream are not measured for it. Its streams need"
    " `@hono/node-server` below 1.14 (Portkey-AI/gateway#1389): the bench pins 1.13.8.",
]


def _cell_text(cell: Cell | None) -> tuple[str, str, str]:
    """calls/s, p50, p99 for a table; flagged when the cell had errors."""
    if cell is None:
        return "", "", ""
    if cell.result is None:
        return "n/a", "", ""  # the reason is listed under the table
    r: WrkResult = cell.result
    if r.non_2xx:
        return f"INVALID: {r.non_2xx:,} non-2xx", "", ""
    if not r.requests:
        return "no call completed", "", ""
    rps = f"{r.rps:,.0f}" + (f" ⚠ {r.socket_errors:,} socket errors" if r.socket_errors else "")
    return rps, f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}"


def scenario_table(s: Scenario, targets: list[Target], cs: list[int], results: Results) -> str:
    header = ["target", "workers"]
    for c in cs:
        header += [f"c={c} calls/s", f"c={c} p50 ms", f"c={c} p99 ms"]
    rows = []
    for t in targets:
        if (s.name, t.id) in results.skipped:
            continue
        row = [t.label, t.workers_text.split(" (")[0]]
        for c in cs:
            row += list(_cell_text(results.cells.get((s.name, c, t.id))))
        rows.append(row)
    if not rows:
        return "_No target measured._"
    return markdown_table(header, rows, text_columns=2)


def summary_table(
    scenarios: list[Scenario], targets: list[Target], c: int, pick: str, results: Results
) -> str:
    """One row per scenario, one column per target: calls/s or a latency at one concurrency."""
    rows = []
    for s in scenarios:
        row = [s.name]
        for t in targets:
            cell = results.cells.get((s.name, c, t.id))
            if cell is None:
                row.append("—")
            elif not cell.clean:
                row.append("n/a" if cell.result is None else "⚠")
            else:
                value = getattr(cell.result, pick)
                row.append(f"{value:,.0f}" if pick == "rps" else f"{value:.3f}")
        rows.append(row)
    return markdown_table(["scenario", *(t.label for t in targets)], rows)


def skipped_lines(s: Scenario, targets: list[Target], results: Results) -> list[str]:
    lines = []
    for t in targets:
        why = results.skipped.get((s.name, t.id))
        if why:
            lines.append(f"- {t.label}: not measured: {' '.join(why.split())[:300]}")
        for c in (c for (sn, c, tid) in results.cells if sn == s.name and tid == t.id):
            cell = results.cells[s.name, c, t.id]
            if cell.error:
                lines.append(f"- {t.label}, c={c}: {' '.join(cell.error.split())[:300]}")
    return lines


def ttft_table(scenarios: list[Scenario], targets: list[Target], results: Results) -> str:
    rows = []
    for s in scenarios:
        floor = results.ttft.get((s.passthrough_twin.name, "floor/1"))
        for t in targets:
            v = results.ttft.get((s.name, t.id))
            if v is None:
                continue
            if isinstance(v, Ttft):
                added = (
                    f"{v.p50_ms - floor.p50_ms:+.3f}" if isinstance(floor, Ttft) and t.kind != "floor" else ""
                )
                rows.append([s.name, t.label, f"{v.p50_ms:.3f}", f"{v.p99_ms:.3f}", added, str(v.calls)])
            else:
                rows.append([s.name, t.label, "error", "", "", " ".join(v.split())[:120]])
    if not rows:
        return ""
    header = ["scenario", "target", "p50 ms", "p99 ms", "p50 over the floor, ms", "calls"]
    return markdown_table(header, rows, text_columns=2)


def goals_summary(checks: list[Check]) -> str:
    """One row per goal: how many cells pass, fail or were not measured."""
    rows = []
    for goal in dict.fromkeys(c.goal for c in checks):
        of = [c for c in checks if c.goal == goal]
        counts = [sum(1 for c in of if c.ok is v) for v in (True, False, None)]
        failed = ", ".join(f"{c.scenario} ({c.workers})" for c in of if c.ok is False)
        rows.append([goal, of[0].wanted, failed or "—", *(str(n) for n in counts)])
    header = ["target", "goal", "failing", "pass", "fail", "n/a"]
    return markdown_table(header, rows, text_columns=3)


def checks_table(checks: list[Check]) -> str:
    rows = [[c.goal, c.scenario, c.workers, c.measured, c.wanted, f"**{c.verdict}**"] for c in checks]
    return markdown_table(
        ["target", "scenario", "workers", "measured", "goal", "verdict"], rows, text_columns=6
    )


def render(
    info: RunInfo,
    scenarios: list[Scenario],
    targets: list[Target],
    cs: list[int],
    results: Results,
    checks: list[Check],
) -> str:
    counts = {v: sum(1 for c in checks if c.verdict == v) for v in ("PASS", "FAIL", "N/A")}
    parts = [
        "# Benchmarks",
        "",
        "ToRouter beside the floor (the least a Python gateway can cost), the static upstream itself,"
        " the LiteLLM proxy and Portkey's gateway: all in one run, on one machine, in front of the same"
        " static nginx upstream that answers like the OpenAI and Anthropic APIs. Compare figures within"
        " this page, as ratios: the machine is shared and noisy, and absolute figures move between runs.",
        "",
        "Made by one command, which installs the peers on first use (into git-ignored directories),"
        " starts everything, measures, writes this page and its charts, and stops what it started:",
        "",
        "```sh",
        info.command,
        "```",
        "",
        "See [bench/README.md](../bench/README.md) for options (a subset of targets, scenarios,"
        " concurrencies or worker counts).",
        "",
        "## This run",
        "",
        f"- date: {info.date}",
        *info.machine,
        *info.versions,
        *info.method,
        "",
        "## Targets",
        "",
        f"{counts['PASS']} pass, {counts['FAIL']} fail, {counts['N/A']} not measured.",
        "",
        goals_summary(checks) if checks else "_No target could be checked with this selection._",
        "",
        *(["Each check:", "", checks_table(checks), ""] if checks else []),
    ]
    summaries = [(32, "rps", "calls/s at c=32"), (1, "p50_ms", "p50 latency at c=1, ms")]
    for c, pick, title in summaries:
        if c in cs:
            parts += [f"## Summary: {title}", "", summary_table(scenarios, targets, c, pick, results), ""]
    parts += [
        "— not run (the target cannot serve the scenario, see the notes below); n/a not measured (the"
        " reason is under the scenario's table); ⚠ errors during the run, not counted.",
        "",
    ]
    if info.charts:
        parts += ["## Charts", ""]
        for title, path in info.charts:
            parts += [f"![{title}]({path})", ""]
    parts += [
        "## Results",
        "",
        "calls/s from wrk (`-t1`, one connection per concurrent call); latency of whole answers in"
        " milliseconds; each figure the median of the cell's rounds. A cell with non-2xx answers is"
        " marked INVALID and never counted; one with socket errors (timeouts, resets) is marked ⚠ and"
        " kept out of the targets. At c=256 every target but nginx is saturated: calls queue, and the"
        " p99 there measures mostly the queue.",
        "",
    ]
    for s in scenarios:
        parts += [f"### {s.title} (`{s.name}`)", "", scenario_table(s, targets, cs, results), ""]
        skipped = skipped_lines(s, targets, results)
        if skipped:
            parts += [*skipped, ""]
    ttft = ttft_table(scenarios, targets, results)
    if ttft:
        parts += [
            "## Time to first token",
            "",
            "One client, one call at a time (aiohttp), timing each streamed call from sending it to"
            " reading the first whole SSE event. The static upstream sends its whole stream at once, so"
            " this is the cost of the path, not of a model. The floor returns the stream in one piece.",
            "",
            ttft,
            "",
        ]
    parts += ["## What each target does and cannot do", "", *(f"- {n}" for n in PEER_NOTES), ""]
    return "\n".join(parts)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
