"""Cell diagrams of a genotype, as DARTS's visualize.py draws them (matplotlib, no graphviz binary)."""

from __future__ import annotations

from pathlib import Path

from wcbench.errors import ConfigError
from wcbench.genotype import Genotype

OP_COLOURS = {
    "skip_connect": "#7f7f7f",
    "sep_conv_3x3": "#1f77b4",
    "sep_conv_5x5": "#17becf",
    "dil_conv_3x3": "#2ca02c",
    "dil_conv_5x5": "#98df8a",
    "max_pool_3x3": "#d62728",
    "avg_pool_3x3": "#ff7f0e",
    "noise": "#9467bd",
}


def _positions(steps: int) -> dict[str, tuple[float, float]]:
    pos = {"c_{k-2}": (0.0, 0.75), "c_{k-1}": (0.0, 0.25)}
    for i in range(steps):
        pos[str(i)] = (1.0 + i, 0.9 - 0.8 * i / max(steps - 1, 1))
    pos["c_{k}"] = (steps + 1.0, 0.5)
    return pos


def draw_cell(ax, genotype: Genotype, cell: str = "normal") -> None:  # noqa: ANN001 - a matplotlib Axes
    """Draw one cell: input nodes, intermediate nodes, op-labelled edges, and the concat output."""
    pairs = genotype.normal if cell == "normal" else genotype.reduce
    concat = genotype.normal_concat if cell == "normal" else genotype.reduce_concat
    steps = len(pairs) // 2
    pos = _positions(steps)
    names = ["c_{k-2}", "c_{k-1}"] + [str(i) for i in range(steps)]

    def arrow(a: str, b: str, colour: str, label: str | None) -> None:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops=dict(
                arrowstyle="-|>",
                color=colour,
                lw=1.6,
                shrinkA=14,
                shrinkB=14,
                connectionstyle="arc3,rad=0.12",
            ),
        )
        if label:
            ax.text(
                (x0 + x1) / 2,
                (y0 + y1) / 2 + 0.03,
                label,
                fontsize=7,
                color=colour,
                ha="center",
                va="bottom",
                bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8),
            )

    for k, (op, inp) in enumerate(pairs):
        arrow(names[inp], str(k // 2), OP_COLOURS.get(op, "black"), op)
    for node in concat:
        arrow(names[node], "c_{k}", "#bbbbbb", None)
    for name, (x, y) in pos.items():
        is_input = name.startswith("c_{k-")
        colour = "#a6dba0" if is_input else ("#fee08b" if name == "c_{k}" else "#9ecae1")
        ax.scatter([x], [y], s=900, c=colour, edgecolors="black", zorder=3)
        ax.text(
            x,
            y,
            f"${name}$" if name.startswith("c_") else name,
            ha="center",
            va="center",
            zorder=4,
            fontsize=9,
        )
    ax.set_title(f"{cell} cell", fontsize=11)
    ax.set_xlim(-0.5, steps + 1.5)
    ax.set_ylim(-0.05, 1.05)
    ax.axis("off")


def plot_genotype(genotype: Genotype, out: str | Path, title: str | None = None) -> Path:
    """Write the normal and reduction cells side by side to a .png, .svg or .pdf file (atomically)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".png", ".svg", ".pdf"):
        raise ConfigError(f"cannot draw to {out.name!r}: give an output file ending in .png, .svg or .pdf")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(14, 4.2))
    draw_cell(axes[0], genotype, "normal")
    draw_cell(axes[1], genotype, "reduce")
    fig.suptitle(title or f"genotype {genotype.hash()} (space {genotype.space})", fontsize=12)
    fig.tight_layout()
    from wcbench.runs import atomic_writer

    try:
        with atomic_writer(out) as fh:
            fig.savefig(fh, dpi=120, format=suffix[1:])
    finally:
        plt.close(fig)
    return out
