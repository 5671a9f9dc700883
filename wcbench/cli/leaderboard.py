"""`wcbench leaderboard`: one board per benchmark of the paper, from the run tree, with the paper's
reported numbers beside the reproductions (see :mod:`wcbench.report`)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from wcbench.cli.app import app, console, print_json
from wcbench.errors import ConfigError
from wcbench.stats import TESTS


@app.command("leaderboard")
def leaderboard_cmd(
    benchmark: str | None = typer.Option(
        None,
        "--benchmark",
        "-b",
        help="One board (e.g. worst_case_cifar100, or other_scorers: the scorers no benchmark of the paper "
        "reads); all of them by default.",
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table | md | csv | json | html"),
    out: Path = typer.Option(
        Path("leaderboards"),
        "--out",
        help="Where the boards are written: OUT/generated/<benchmark>.<md|csv|json>, OUT/index.html.",
    ),
    write: bool = typer.Option(True, "--write/--no-write", help="Write the boards under --out."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="The run tree (runs/<dataset>/...)."),
    test: str = typer.Option("welch", "--test", help="welch | paired | one-sample"),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level for Holm's procedure."),
) -> None:
    """Leaderboards of the finished runs per benchmark of the paper, with t-tests and the paper's numbers."""
    from wcbench import report
    from wcbench.runs import collect_runs

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

    written: list[Path] = []
    if write and fmt != "table":
        written = report.write_boards(boards, out, [fmt])

    if fmt == "table":
        # a terminal gets its own width; a pipe or file gets wide lines rather than folded numbers
        term = console if console.is_terminal else Console(width=max(console.width, 200))
        if note:
            term.print(f"[yellow]{note}[/yellow]")
        for b in boards:
            term.print(report.to_table(b))
            term.print()
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
    elif not written:  # html with --no-write: the page on stdout
        sys.stdout.write(report.to_html(boards))
    else:
        if note:
            print(note)
        print(f"wrote {written[-1]}")
    if written and fmt != "html":
        shown = written[0].parent if len(written) > 1 else written[0]
        print(f"wrote {len(written)} file(s) under {shown}", file=sys.stderr)
