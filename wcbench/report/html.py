"""All boards as one static HTML page: the tables, and a bar plot per board (inline SVG, no scripts)."""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Sequence

from wcbench.report.boards import Column
from wcbench.report.build import Board, split_strategy
from wcbench.report.grids import Grid, paper_grid, runs_grid, summary_lines, tests_grid

__all__ = ["to_html"]


_COLOURS = {"": "#1f77b4", "plain": "#1f77b4", "spcl": "#ff7f0e", "dihcl": "#2ca02c", "ours": "#d62728"}
_OTHER_COLOUR = "#7f7f7f"


def _colour(searcher: str) -> str:
    return _COLOURS.get(split_strategy(searcher)[0], _OTHER_COLOUR) if searcher else _OTHER_COLOUR


def _plot_series(board: Board, col: Column) -> list[tuple[str, str, float, float, str]]:
    """(label, kind, value, err, colour) bars for one column: runs (with the paper's matched number
    beside each), or, with no runs, the paper's rows that wcbench implements (else all of them)."""
    bars: list[tuple[str, str, float, float, str]] = []
    if board.rows:
        for r in board.rows:
            c = r.cells.get(col.key)
            if c is None or not math.isfinite(c.mean):
                continue
            name = r.label if len({x.dataset for x in board.rows}) == 1 else f"{r.label}\n({r.dataset})"
            err = c.std if math.isfinite(c.std) else 0.0
            bars.append((name, "run", c.mean, err, _colour(r.searcher)))
            rep = r.reported.get(col.key)
            if rep:
                pv = rep[0]
                bars.append(
                    ("", "reported", pv.value, pv.std if math.isfinite(pv.std) else 0.0, _colour(r.searcher))
                )
        return bars
    prs = [p for p in board.paper if col.key in p.cells]
    mine = [p for p in prs if p.searcher]
    for p in (mine or prs)[:24]:
        pv = p.cells[col.key]
        name = p.row if not p.dataset else f"{p.row}\n({p.dataset})"
        colour = _colour(p.searcher) if p.searcher else _colour(_table4_searcher(p.method))
        bars.append((name, "reported", pv.value, pv.std if math.isfinite(pv.std) else 0.0, colour))
    return bars


def _table4_searcher(method: str) -> str:
    return {"Ours": "ours-x", "SPCL": "spcl-x", "DARTS": "darts"}.get(method, "")


_STRATEGY_NAMES = {
    "plain": "plain (the algorithm alone)",
    "spcl": "spcl (self-paced curriculum)",
    "dihcl": "dihcl (dynamic instance hardness)",
    "ours": "ours (worst-case validation, the paper)",
}


def _strategy_legend(bars: Sequence[tuple[str, str, float, float, str]]) -> list[tuple[str, str]]:
    """(colour, name) of every strategy whose colour is on the chart, in the order above."""
    shown = {b[4] for b in bars}
    entries = [(_COLOURS[k], name) for k, name in _STRATEGY_NAMES.items() if _COLOURS[k] in shown]
    if _OTHER_COLOUR in shown:
        entries.append((_OTHER_COLOUR, "other"))
    return entries


def _board_svg(board: Board) -> str | None:
    """Horizontal bars with error bars (mean ± std over seeds) per column, one label per row on the
    y axis (labels never share a line, however many rows); the reported number hatched below each
    run's bar; a legend naming each strategy's colour."""
    import textwrap

    import matplotlib
    from matplotlib.colors import to_rgb
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    series = [(c, _plot_series(board, c)) for c in board.spec.columns]
    series = [(c, s) for c, s in series if s]
    if not board.rows:  # the paper's numbers only: its headline columns
        series = series[:3]
    if not series:
        return None
    labels_of = [[name for name, kind, *_ in bars if kind == "run" or not board.rows] for _, bars in series]
    longest = max(len(line) for labels in labels_of for name in labels for line in name.split("\n"))
    ncols = min(len(series), 3 if longest <= 24 else 2)
    nrows = math.ceil(len(series) / ncols)
    # each row of panels as tall as its longest list of labels needs (text lines, and the reported
    # bar under each run's)
    lines = [sum(name.count("\n") + 1 for name in labels) for labels in labels_of]
    heights = [
        0.9
        + 0.2 * max(lines[r * ncols : (r + 1) * ncols])
        + (0.12 * len(labels_of[0]) if board.rows else 0.0)
        for r in range(nrows)
    ]
    width = min(14.0, 1.0 + ncols * (2.6 + 0.065 * longest))
    all_bars = [b for _, bars in series for b in bars]
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 8, "svg.hashsalt": "wcbench"}):
        fig = Figure(figsize=(width, sum(heights) + 0.8), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw={"height_ratios": heights})
        for ax in axes.flat[len(series) :]:
            ax.set_visible(False)
        for ax, (col, bars) in zip(axes.flat, series):
            ys, ticks, labels = [], [], []
            y = -1.0
            for name, kind, _, _, _ in bars:
                if kind == "run" or not board.rows:
                    y += 1.0
                    ticks.append(y)
                    labels.append(name)
                    ys.append(y - (0.2 if board.rows else 0.0))
                else:  # the paper's number for the run above it
                    ys.append(y + 0.2)
            height = 0.38 if board.rows else 0.6
            for yi, (_, kind, value, err, colour) in zip(ys, bars):
                reported = kind == "reported"
                # reported: a pale face with hatch lines in the full colour; runs: the full colour
                face = tuple(1 - 0.35 * (1 - c) for c in to_rgb(colour)) if reported else to_rgb(colour)
                ax.barh(
                    yi, value, height=height, xerr=err if err > 0 else None, capsize=2.5, color=face,
                    hatch="///" if reported else None, edgecolor=colour, linewidth=0.8,
                    error_kw={"elinewidth": 1, "ecolor": "#333333"},
                )  # fmt: skip
            ax.set_yticks(ticks, labels)
            ax.set_ylim(len(ticks) - 0.5, -0.5)  # first row on top, as in the tables
            ax.set_title("\n".join(textwrap.wrap(f"{board.label(col)} {col.arrow}", 38)), fontsize=9)
            ax.grid(axis="x", alpha=0.3)
            ax.set_axisbelow(True)
            ax.tick_params(axis="x", labelsize=7)
        handles = [Patch(color=c, label=name) for c, name in _strategy_legend(all_bars)]
        if board.rows:
            handles.append(
                Patch(color="#555555", alpha=0.9, label="solid: wcbench runs, mean ± std over seeds")
            )
        handles.append(
            Patch(
                facecolor="#cccccc", hatch="///", edgecolor="#555555", label="hatched: reported in the paper"
            )
        )
        fig.legend(handles=handles, loc="outside lower center", ncols=min(3, len(handles)), frameon=False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    # several inline SVGs share one page: make their ids (clip paths, hatches) unique per board
    prefix = f"{board.name}-"
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', svg)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;color:#222;
background:#fff;max-width:1400px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;margin:36px 0 6px;border-bottom:2px solid #ddd;padding-bottom:3px}
h3{font-size:14px;margin:16px 0 4px;color:#444} p.meta,p.desc{color:#555;font-size:13px;margin:3px 0}
nav{font-size:13px;margin:8px 0 12px} nav a{margin-right:10px;color:#1f5fa8}
table{border-collapse:collapse;font-size:12px;margin:6px 0 10px} th,td{border:1px solid #ddd;padding:3px 7px;
text-align:left;vertical-align:top} th{background:#f3f5f8} td.best{font-weight:bold;background:#e7f5e7}
td.sig{font-weight:bold}
p.note{color:#555;font-size:12px;margin:0 0 3px;max-width:1100px}
table.reported td,table.reported th{color:#555} table.reported{background:#fafafa}
.badge{display:inline-block;font-size:11px;background:#fff3cd;border:1px solid #e0c36c;border-radius:3px;
padding:0 5px;margin-left:6px;color:#6b5200} .fig svg{max-width:100%;height:auto}
"""


def _html_grid(grid: Grid, cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in grid.headers)
    body = []
    for row in grid.rows:
        tds = "".join(
            f'<td class="best">{html.escape(c.text)}</td>' if c.bold else f"<td>{html.escape(c.text)}</td>"
            for c in row
        )
        body.append(f"<tr>{tds}</tr>")
    cls_attr = f' class="{cls}"' if cls else ""
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in grid.footnotes)
    return f"<table{cls_attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{notes}"


def _html_board(board: Board, with_plot: bool = True) -> str:
    spec = board.spec
    ref = f"paper {spec.table_ref}" if spec.tables else "not in the paper"
    parts = [f'<section id="{spec.name}"><h2>{html.escape(board.title)} <small>({ref})</small></h2>']
    for line in summary_lines(board):
        parts.append(f'<p class="desc">{html.escape(line)}</p>')
    if with_plot:
        svg = _board_svg(board)
        if svg:
            parts.append(f'<div class="fig">{svg}</div>')
    if board.rows:
        runs = runs_grid(board)
        parts.append(f"<h3>{html.escape(runs.title)}</h3>{_html_grid(runs)}")
        if board.comparisons:
            tests = tests_grid(board)
            parts.append(f"<h3>{html.escape(tests.title)}</h3>{_html_grid(tests)}")
    if board.paper:
        paper = paper_grid(board)
        parts.append(
            f'<h3>{html.escape(paper.title)}<span class="badge">reported</span></h3>'
            + _html_grid(paper, "reported")
        )
    parts.append("</section>")
    return "\n".join(parts)


def to_html(boards: Sequence[Board], title: str = "wcbench leaderboards") -> str:
    """All boards as one static, self-contained HTML page (inline CSS and SVG plots, no scripts)."""
    import wcbench

    runs_found = any(b.runs_found for b in boards)
    runs_dir = boards[0].runs_dir if boards else "runs"
    nav = " ".join(f'<a href="#{b.name}">{html.escape(b.title)}</a>' for b in boards)
    meta = (
        f"wcbench {wcbench.__version__}; runs from <code>{html.escape(runs_dir)}</code>"
        + ("" if runs_found else " — <strong>no runs found</strong>: the paper's reported numbers only")
        + ". Reported numbers come from <code>wcbench/leaderboards/paper/*.csv</code>"
        + " and are labelled as such."
    )
    body = "\n".join(_html_board(b) for b in boards)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        f'<h1>{html.escape(title)}</h1><p class="meta">{meta}</p><nav>{nav}</nav>\n{body}\n</body></html>\n'
    )
