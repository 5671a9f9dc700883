"""`wcbench leaderboard`: one board per benchmark of the paper, from the run tree, with the paper's
reported numbers beside the reproductions (see :mod:`wcbench.report`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from wcbench.cli.app import app, console, print_json
from wcbench.cli.options import option
from wcbench.errors import ConfigError
from wcbench.stats import TESTS


@app.command("leaderboard")
def leaderboard_cmd(
    benchmark: str | None = option("--benchmark", None, "", "-b"),
    fmt: str = option("--format", "table", "table | md | csv | json | html.", "-f"),
    as_json: bool = option("--json", False, "Here: the same as --format json."),
    out: Path | None = option(
        "--out",
        None,
        "Here: OUT/generated/<benchmark>.<md|csv|json> or OUT/index.html; without it, stdout.",
        file_okay=False,
    ),
    paper: bool = option("--paper", False, "In --format table (md, csv, json and html always show them)."),
    runs_dir: Path = option("--runs-dir", Path("runs"), file_okay=False),
    test: str = option("--test", "welch"),
    alpha: float = option("--alpha", 0.05),
) -> None:
    """Boards of your finished runs per benchmark of the paper, with t-tests (and the paper's numbers)."""
    from wcbench import report
    from wcbench.results import collect_runs

    if as_json:
        if fmt not in ("table", "json"):
            raise ConfigError(f"give --json or --format {fmt}, not both")
        fmt = "json"
    if fmt not in report.FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(report.FORMATS)}")
    if test not in TESTS:
        raise ConfigError(f"unknown test {test!r}; choose one of {', '.join(TESTS)}")
    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha must be in (0, 1), got {alpha}")
    names = None if benchmark is None else [benchmark]
    if benchmark is not None:
        report.check_benchmark(benchmark)  # did-you-mean and the list of known boards

    df = collect_runs(runs_dir)
    boards = report.build_boards(df, names, test=test, alpha=alpha, runs_dir=str(runs_dir))
    note = None if len(df) else f"No runs found under {runs_dir}: showing the paper's reported numbers only."

    if out is not None:
        if fmt == "table":
            raise ConfigError("--out writes files: give --format md, csv, json or html with it")
        written = report.write_boards(boards, out, [fmt])
        if note:
            print(note, file=sys.stderr)
        shown = written[0].parent if len(written) > 1 else written[0]
        print(f"wrote {len(written)} file(s) under {shown}" if fmt != "html" else f"wrote {written[-1]}")
        return

    if fmt == "table":
        # a terminal gets its own width; a pipe or file gets wide lines rather than folded numbers
        term = console if console.is_terminal else Console(width=max(console.width, 200))
        _print_tables(term, boards, report, paper=paper or not len(df), note=note)
    elif fmt == "md":
        text = "\n".join(report.to_markdown(b) for b in boards)
        sys.stdout.write((f"> {note}\n\n" if note else "") + text)
    elif fmt == "csv":
        for i, b in enumerate(boards):
            text = report.to_csv(b)
            sys.stdout.write(text if i == 0 else text.split("\n", 1)[1])
    elif fmt == "json":
        print_json(
            {
                "runs_dir": str(runs_dir),
                "runs_found": bool(len(df)),
                "message": note,
                "boards": [report.board_to_dict(b) for b in boards],
            }
        )
    else:  # html: the page on stdout
        sys.stdout.write(report.to_html(boards))


def _print_tables(term: Console, boards: list, report: Any, paper: bool, note: str | None) -> None:
    """Your runs first, board by board (boards without your runs are skipped); the paper's reported
    numbers only with --paper (or when there are no runs at all), after all of your rows."""
    if note:
        term.print(f"[yellow]{note}[/yellow]")
    mine = [b for b in boards if b.rows]
    for b in mine:
        term.print(report.to_table(b, paper=False))
        term.print()
    if paper:
        for b in boards:
            if b.paper:
                term.print(report.to_table(b, runs=False))
                term.print()
    elif any(b.paper for b in boards):
        term.print(f"The paper's reported numbers for {len(boards)} board(s): add --paper.")
