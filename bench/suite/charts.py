"""Draw the suite's PNG charts from its JSON results.

Runs in the bench's own virtual environment (bench/.venvs/charts, which has matplotlib), not in
the project's: `charts.py RESULTS.json OUTDIR` prints the files it wrote, one a line.
Only clean cells (no non-2xx answer, no socket error) are drawn.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLOURS = {
    "nginx": "#7f7f7f",
    "floor": "#1f77b4",
    "torouter": "#2ca02c",
    "litellm": "#d62728",
    "portkey": "#9467bd",
}


def clean(cell: dict[str, Any]) -> bool:
    return bool(cell.get("requests")) and not cell.get("non_2xx") and not cell.get("socket_errors")


def style(target: dict[str, Any]) -> dict[str, Any]:
    many = target["workers"] > 1
    return {
        "color": COLOURS.get(target["kind"], "#333333"),
        "hatch": "//" if many else None,
        "alpha": 0.75 if many else 1,
    }


def cell_map(data: dict[str, Any]) -> dict[tuple[str, int, str], dict[str, Any]]:
    return {(c["scenario"], c["c"], c["target"]): c for c in data["cells"] if clean(c)}


def throughput(data: dict[str, Any], out: Path, c: int) -> Path | None:
    cells = cell_map(data)
    scenarios = [s["name"] for s in data["scenarios"]]
    targets = [t for t in data["targets"] if any((s, c, t["id"]) in cells for s in scenarios)]
    if not targets:
        return None
    fig, ax = plt.subplots(figsize=(max(9, 1.6 * len(scenarios)), 5.5))
    width = 0.85 / len(targets)
    for i, t in enumerate(targets):
        xs, ys = [], []
        for j, s in enumerate(scenarios):
            cell = cells.get((s, c, t["id"]))
            if cell:
                xs.append(j + (i - (len(targets) - 1) / 2) * width)
                ys.append(cell["rps"])
        bars = ax.bar(xs, ys, width, label=t["label"], edgecolor="white", **style(t))
        ax.bar_label(bars, [f"{y:,.0f}" for y in ys], fontsize=6, rotation=90, padding=2)
    ax.set_yscale("log")
    ax.set_xticks(range(len(scenarios)), scenarios, rotation=20, ha="right")
    ax.set_ylabel("calls/s (log scale)")
    ax.set_ylim(top=ax.get_ylim()[1] * 3)  # room for the labels
    ax.set_title(f"Throughput at c={c} (wrk -t1; higher is better)")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return save(fig, out / f"throughput-c{c}.png")


def latency(data: dict[str, Any], out: Path, c: int) -> Path | None:
    cells = cell_map(data)
    scenarios = [s["name"] for s in data["scenarios"] if any(k[0] == s["name"] and k[1] == c for k in cells)]
    if not scenarios:
        return None
    cols = min(4, len(scenarios))
    rows = (len(scenarios) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, s in zip(axes.flat, scenarios, strict=False):
        targets = [t for t in data["targets"] if (s, c, t["id"]) in cells]
        labels = [t["label"] for t in targets]
        p50 = [cells[s, c, t["id"]]["p50_ms"] for t in targets]
        p99 = [cells[s, c, t["id"]]["p99_ms"] for t in targets]
        ys = range(len(targets))
        ax.barh(
            [y + 0.2 for y in ys],
            p99,
            0.4,
            color=[style(t)["color"] for t in targets],
            alpha=0.45,
            label="p99",
        )
        ax.barh([y - 0.2 for y in ys], p50, 0.4, color=[style(t)["color"] for t in targets], label="p50")
        ax.set_yticks(list(ys), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_title(s, fontsize=10)
        ax.grid(axis="x", which="both", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    for ax in list(axes.flat)[len(scenarios) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"Latency at c={c}, ms (log scale; dark p50, light p99; lower is better)")
    return save(fig, out / f"latency-c{c}.png")


def scaling(data: dict[str, Any], out: Path) -> Path | None:
    cells = cell_map(data)
    cs = data["concurrencies"]
    scenarios = [s["name"] for s in data["scenarios"]]
    if len(cs) < 2 or not cells:
        return None
    cols = min(4, len(scenarios))
    rows = (len(scenarios) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False, sharey=True)
    for ax, s in zip(axes.flat, scenarios, strict=False):
        for t in data["targets"]:
            points = [(c, cells[s, c, t["id"]]["rps"]) for c in cs if (s, c, t["id"]) in cells]
            if points:
                st = style(t)
                ax.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    marker="o",
                    color=st["color"],
                    linestyle="--" if t["workers"] > 1 else "-",
                    label=t["label"],
                )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(cs, [str(c) for c in cs])
        ax.set_title(s, fontsize=10)
        ax.grid(which="both", alpha=0.3)
    for ax in list(axes.flat)[len(scenarios) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel("calls/s (log)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(8, len(labels)), fontsize=8)
    fig.suptitle("calls/s by concurrency (dashed: all cores)")
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    return save(fig, out / "scaling.png", tight=False)


def ttft(data: dict[str, Any], out: Path) -> Path | None:
    rows = [t for t in data["ttft"] if t.get("p50_ms") is not None]
    if not rows:
        return None
    by_id = {t["id"]: t for t in data["targets"]}
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    targets = [t for t in data["targets"] if any(r["target"] == t["id"] for r in rows)]
    fig, ax = plt.subplots(figsize=(max(8, 2.2 * len(scenarios)), 5))
    width = 0.85 / len(targets)
    for i, t in enumerate(targets):
        xs, p50, err = [], [], []
        for j, s in enumerate(scenarios):
            r = next((r for r in rows if r["scenario"] == s and r["target"] == t["id"]), None)
            if r:
                xs.append(j + (i - (len(targets) - 1) / 2) * width)
                p50.append(r["p50_ms"])
                err.append(r["p99_ms"] - r["p50_ms"])
        st = style(by_id[t["id"]])
        ax.bar(
            xs, p50, width, yerr=[[0] * len(err), err], capsize=2, label=t["label"], edgecolor="white", **st
        )
    ax.set_yscale("log")
    ax.set_xticks(range(len(scenarios)), scenarios, rotation=15, ha="right")
    ax.set_ylabel("ms to the first SSE event (log; bar p50, whisker p99)")
    ax.set_title("Time to first token at c=1 (lower is better)")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return save(fig, out / "ttft.png")


def save(fig: Any, path: Path, tight: bool = True) -> Path:
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    data = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    cs = data["concurrencies"]
    written = [
        throughput(data, out, 32 if 32 in cs else max(cs)),
        latency(data, out, 1 if 1 in cs else min(cs)),
        scaling(data, out),
        ttft(data, out),
    ]
    for path in written:
        if path:
            print(path)


if __name__ == "__main__":
    main()
