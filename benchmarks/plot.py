"""Turn a benchmark results JSON into a PNG bar chart.

The JSON holds a list of rows (``{"label": ..., "value": ...}`` objects, other keys ignored),
either at the top level or under ``"results"``. Usage from a script::

    from plot import plot_results
    plot_results(results, "decode.png", value_key="images_per_s", title="JPEG decode")

or from the shell: ``python benchmarks/plot.py results.json out.png --value images_per_s``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Mapping, Sequence


def _rows(results: Any) -> Sequence[Mapping[str, Any]]:
    if isinstance(results, Mapping):
        results = results.get("results", [])
    if not isinstance(results, Sequence):
        raise ValueError("results must be a list of rows or a mapping with a 'results' list")
    return results


def plot_results(
    results: Any,
    output: str | Path,
    *,
    label_key: str = "label",
    value_key: str = "value",
    title: str = "",
    ylabel: str | None = None,
    value_format: str = "%.0f",
) -> Path:
    """Draws one bar per row and writes a PNG.

    Args:
        results: A list of row mappings, or a mapping with a ``"results"`` list.
        output: Path of the PNG to write.
        label_key: Row key holding the bar's label.
        value_key: Row key holding the bar's height.
        title: Chart title.
        ylabel: Y axis label; defaults to ``value_key``.
        value_format: printf-style format of the value printed on each bar (``"%.2f"`` for
            ratios).

    Returns:
        The path of the written PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in _rows(results) if r.get(value_key) is not None]
    labels = [str(r[label_key]) for r in rows]
    values = [float(r[value_key]) for r in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(rows) + 2), 4.0))
    bars = ax.bar(range(len(rows)), values, color="#4c72b0")
    ax.bar_label(bars, fmt=value_format, fontsize=8)
    ax.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel or value_key)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="results JSON")
    parser.add_argument("output", type=Path, help="PNG to write")
    parser.add_argument("--label", default="label", help="row key for bar labels")
    parser.add_argument("--value", default="value", help="row key for bar heights")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    print(
        plot_results(
            results, args.output, label_key=args.label, value_key=args.value, title=args.title
        )
    )


if __name__ == "__main__":
    main()
