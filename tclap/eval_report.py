"""The evaluation report: metrics.json, a markdown table, and histograms of T-Classify margins.

`metrics.json` keeps every number ({model: {metric: value}}). `table.md` has one row per model and
one column per percentage metric (1 decimal); item counts and per-fold accuracies stay in the JSON.
`margins.png` overlays, per model, the histogram of how far each positive beats its negative
(sim(a, t+) - sim(a, t-) and sim(a+, t) - sim(a-, t)): how confidently a model knows the order,
which an accuracy near 50% hides.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the headless backend
from torch import Tensor  # noqa: E402


def table_columns(results: dict[str, dict[str, float]]) -> list[str]:
    """Percentage metrics, in the order they first appear: floats, except per-fold and per-template
    scores and the zero-shot margin, a cosine (those stay in metrics.json)."""
    columns: dict[str, None] = {}
    for metrics in results.values():
        columns.update((k, None) for k, v in metrics.items()
                       if isinstance(v, float) and "_fold" not in k and "_phrasing[" not in k
                       and not k.endswith("_margin"))
    return list(columns)


def markdown_table(results: dict[str, dict[str, float]]) -> str:
    """One row per model; a metric a model lacks is shown as `-`.

    Args:
        results: {model name: {metric: value}}.
    """
    columns = table_columns(results)
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for model, metrics in results.items():
        cells = [f"{metrics[c]:.1f}" if c in metrics else "-" for c in columns]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_margins(margins: dict[str, dict[str, Tensor]], path: str | Path) -> None:
    """One panel per margin kind, one overlaid histogram per model, zero marked.

    Args:
        margins: {model name: {panel title: (N,) margins}}.
        path: PNG to write.
    """
    panels = list(dict.fromkeys(title for per_model in margins.values() for title in per_model))
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    for ax, title in zip(axes[0], panels):
        for model, per_model in margins.items():
            if title in per_model:
                ax.hist(per_model[title].numpy(), bins=30, alpha=0.5, label=model)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("margin (positive - negative similarity)")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("items")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_report(results: dict[str, dict[str, float]], margins: dict[str, dict[str, Tensor]],
                 out: str | Path) -> str:
    """Write metrics.json, table.md and (when there are margins) margins.png under `out`; returns the table.

    Args:
        results: {model name: {metric: value}}.
        margins: {model name: {panel title: (N,) margins}}; may be empty.
        out: report folder (created).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(results, indent=2))
    table = markdown_table(results)
    (out / "table.md").write_text(table)
    if any(margins.values()):
        plot_margins(margins, out / "margins.png")
    return table
