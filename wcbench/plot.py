"""Cell diagrams of a genotype, as DARTS's visualize.py draws them (matplotlib, no graphviz binary).

DARTS lays its cells out with graphviz, which keeps edge labels clear of the drawing; here each op label
is placed the same way by measuring: along its own edge, at the first spot (in a fixed order of
candidates) whose text box, as the renderer draws it, meets no node, no other label and no other edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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
NODE_SIZE = 900  # scatter marker area, points^2: a circle of radius 15 pt
_RAD = 0.12  # the edges' arc3 curvature
# where on its edge a label may sit (fraction of the edge), in this order, and how far off it (pixels)
_ALONG = (0.5, 0.4, 0.6, 0.32, 0.68, 0.25, 0.75, 0.45, 0.55, 0.2, 0.8)
_ACROSS = (0.0, 11.0, -11.0, 20.0, -20.0, 30.0, -30.0)


@dataclass
class CellDrawing:
    """What :func:`draw_cell` drew, in pixels: the op labels (each on the edge ``label_edges[i]``),
    each node's centre and radius, and each edge's curve as points."""

    labels: list[Any] = field(default_factory=list)  # matplotlib Text
    label_edges: list[int] = field(default_factory=list)
    nodes: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    curves: list[np.ndarray] = field(default_factory=list)


def _positions(steps: int) -> dict[str, tuple[float, float]]:
    pos = {"c_{k-2}": (0.0, 0.8), "c_{k-1}": (0.0, 0.2)}
    for i in range(steps):
        pos[str(i)] = (1.0 + i, 0.95 - 0.9 * i / max(steps - 1, 1))
    pos["c_{k}"] = (steps + 1.0, 0.5)
    return pos


def _curve(p0: np.ndarray, p1: np.ndarray, n: int = 40) -> np.ndarray:
    """Points of matplotlib's ``arc3,rad=_RAD`` connection from p0 to p1 (display coordinates): the
    quadratic Bezier whose control point is the midpoint moved by rad x the perpendicular."""
    d = p1 - p0
    ctrl = (p0 + p1) / 2 + _RAD * np.array([d[1], -d[0]])
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * ctrl + t**2 * p1


def _darker(colour: str) -> str:
    """The edge's colour, darkened for text on white (the pale ops stay readable)."""
    from matplotlib.colors import to_hex, to_rgb

    return to_hex(tuple(0.7 * c for c in to_rgb(colour)))


def _hits(box: Any, points: np.ndarray) -> int:
    inside = (
        (points[:, 0] >= box.x0)
        & (points[:, 0] <= box.x1)
        & (points[:, 1] >= box.y0)
        & (points[:, 1] <= box.y1)
    )
    return int(inside.sum())


def draw_cell(ax: Any, genotype: Genotype, cell: str = "normal") -> CellDrawing:
    """Draw one cell: input nodes, intermediate nodes, op-labelled edges, and the concat output.

    The axes' figure must be final in size: labels are placed by measuring them with its renderer.
    """
    pairs = genotype.normal if cell == "normal" else genotype.reduce
    concat = genotype.normal_concat if cell == "normal" else genotype.reduce_concat
    steps = len(pairs) // 2
    pos = _positions(steps)
    names = ["c_{k-2}", "c_{k-1}"] + [str(i) for i in range(steps)]
    ax.set_title(f"{cell} cell", fontsize=11)
    ax.set_xlim(-0.5, steps + 1.5)
    ax.set_ylim(-0.08, 1.08)
    ax.axis("off")

    edges = [(names[inp], str(k // 2), OP_COLOURS.get(op, "black"), op) for k, (op, inp) in enumerate(pairs)]
    edges += [(names[node], "c_{k}", "#bbbbbb", None) for node in concat]
    for a, b, colour, _ in edges:
        ax.annotate(
            "",
            xy=pos[b],
            xytext=pos[a],
            arrowprops=dict(
                arrowstyle="-|>",
                color=colour,
                lw=1.6,
                shrinkA=15,
                shrinkB=15,
                connectionstyle=f"arc3,rad={_RAD}",
            ),
        )
    drawing = CellDrawing()
    for name, (x, y) in pos.items():
        is_input = name.startswith("c_{k-")
        colour = "#a6dba0" if is_input else ("#fee08b" if name == "c_{k}" else "#9ecae1")
        ax.scatter([x], [y], s=NODE_SIZE, c=colour, edgecolors="black", zorder=3)
        label = f"${name}$" if name.startswith("c_") else name
        ax.text(x, y, label, ha="center", va="center", zorder=4, fontsize=9)

    fig = ax.figure
    fig.canvas.draw()  # the layout (tight/constrained) settles the axes before anything is measured
    renderer = fig.canvas.get_renderer()
    to_px = ax.transData.transform
    radius = np.sqrt(NODE_SIZE) / 2 * fig.dpi / 72
    drawing.nodes = {n: (*to_px(p), radius) for n, p in pos.items()}
    curves = [_curve(to_px(pos[a]), to_px(pos[b])) for a, b, _, _ in edges]
    placed: list[Any] = []
    for i, (_, _, colour, op) in enumerate(edges):
        if op is None:
            continue
        curve = curves[i]
        others = np.concatenate([c for j, c in enumerate(curves) if j != i])
        best: tuple[int, Any] | None = None
        for t in _ALONG:
            k = int(round(t * (len(curve) - 1)))
            tangent = curve[min(k + 1, len(curve) - 1)] - curve[max(k - 1, 0)]
            normal = np.array([-tangent[1], tangent[0]]) / (np.linalg.norm(tangent) or 1.0)
            for off in _ACROSS:
                xy = ax.transData.inverted().transform(curve[k] + off * normal)
                text = ax.text(
                    *xy, op, fontsize=7, color=_darker(colour), ha="center", va="center", zorder=5,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.9),
                )  # fmt: skip
                box = text.get_window_extent(renderer).expanded(1.06, 1.15)
                nodes_hit = sum(
                    box.x0 - r < x < box.x1 + r and box.y0 - r < y < box.y1 + r
                    for x, y, r in drawing.nodes.values()
                )
                labels_hit = sum(box.overlaps(p.get_window_extent(renderer)) for p in placed)
                cost = 100 * (nodes_hit + labels_hit) + _hits(box, others)
                if best is None or cost < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (cost, text)
                else:
                    text.remove()
                if cost == 0:
                    break
            if best is not None and best[0] == 0:
                break
        assert best is not None
        placed.append(best[1])
        drawing.label_edges.append(i)
    drawing.labels = placed
    drawing.curves = curves
    return drawing


def cell_figure(genotype: Genotype, title: str | None = None) -> tuple[Any, list[CellDrawing]]:
    """The normal and reduction cells side by side: the figure and what each panel drew."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 5.2), dpi=120)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    fig.suptitle(title or f"genotype {genotype.hash()} (space {genotype.space})", fontsize=12)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.86, bottom=0.02, wspace=0.04)
    drawings = [draw_cell(axes[0], genotype, "normal"), draw_cell(axes[1], genotype, "reduce")]
    return fig, drawings


def plot_genotype(genotype: Genotype, out: str | Path, title: str | None = None) -> Path:
    """Write the normal and reduction cells side by side to a .png, .svg or .pdf file (atomically)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".png", ".svg", ".pdf"):
        raise ConfigError(f"cannot draw to {out.name!r}: give an output file ending in .png, .svg or .pdf")
    fig, _ = cell_figure(genotype, title)
    from wcbench.files import atomic_writer

    with atomic_writer(out) as fh:
        fig.savefig(fh, dpi=120, format=suffix[1:])
    return out
