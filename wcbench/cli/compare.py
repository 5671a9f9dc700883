"""`wcbench compare A B --metric M`: a t-test of two searchers' per-seed scores (:mod:`wcbench.report`)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from wcbench.cli.app import app, console, print_json
from wcbench.cli.options import deprecated, option, warn_deprecated


@app.command("compare")
def compare_cmd(
    a: str = typer.Argument(..., help="Searcher A, e.g. ours-pdarts (darts2nd+s1 for a run in space S1)."),
    b: str = typer.Argument(..., help="Searcher B, e.g. pdarts."),
    metric: list[str] = option("--metric", ..., "Several: Holm over them.", "-m"),
    dataset: str | None = option(
        "--dataset",
        None,
        "Here: the search dataset (runs/<dataset>/), needed when both ran on several.",
        "-d",
    ),
    scorers: str | None = option("--scorers", None, "Here: only these scorers' metrics (e.g. clean)."),
    eval_dataset: str | None = option("--eval-dataset"),
    space: str | None = option("--space", None, "Here: the space of both runs."),
    test: str = option("--test", "welch"),
    alpha: float = option("--alpha", 0.05),
    runs_dir: Path = option("--runs-dir", Path("runs"), file_okay=False),
    as_json: bool = option("--json", False, "Here: p-values at full precision."),
    scorer: str | None = deprecated("--scorer"),
    allow_different: bool = option("--allow-different", False),
) -> None:
    """Compare two searchers' per-seed scores with a t-test: n per side, mean ± std, t, p, Cohen's d."""
    from rich.table import Table

    from wcbench.report import TEST_DESCRIPTIONS, compare_runs, format_p
    from wcbench.results import collect_runs

    if scorer is not None:
        warn_deprecated("--scorer", "--scorers")
        scorers = scorer
    rep = compare_runs(
        collect_runs(runs_dir),
        a,
        b,
        metric,
        dataset=dataset,
        scorer=scorers,
        eval_dataset=eval_dataset,
        space=space,
        test=test,
        alpha=alpha,
        runs_dir=str(runs_dir),
        allow_different=allow_different,
    )
    for m in rep.metrics:
        for w in m.warnings:
            print(f"warning: {m.metric}: {w}", file=sys.stderr)
    if as_json:
        print_json(rep.to_dict())
        return
    console.print(
        f"[bold]{a}[/bold] vs [bold]{b}[/bold], searched on {rep.dataset}"
        + (f" (space {rep.space})" if rep.space != "darts" else "")
        + f": {TEST_DESCRIPTIONS[rep.test]}"
    )
    for m in rep.metrics:
        res = m.result
        table = Table(title=f"{m.metric} ({m.scorer} on {m.eval_dataset}, {m.unit or 'no unit'})")
        for h in ("searcher", "n", "mean ± std", "seeds", "values"):
            table.add_column(h)
        for name, n, mean, std, seeds, values in (
            (a, res.n_a, res.mean_a, res.std_a, m.seeds_a, m.values_a),
            (b, res.n_b, res.mean_b, res.std_b, m.seeds_b, m.values_b),
        ):
            ms = f"{mean:.4g}" + (f" ± {std:.3g}" if std == std else "")
            table.add_row(name, str(n), ms, ",".join(map(str, seeds)), ", ".join(f"{v:g}" for v in values))
        console.print(table)
        for w in m.warnings:
            console.print(f"[bold yellow]WARNING: {w}[/bold yellow]", highlight=False)
        if res.degenerate:
            console.print(f"[yellow]no test: {res.message}[/yellow]")
            continue
        line = f"t = {res.statistic:.4f}, p = {format_p(res.pvalue)} ({res.pvalue!r})"
        if len(rep.metrics) > 1:
            line += f", Holm-adjusted p = {format_p(res.p_holm)} over {len(rep.metrics)} metrics"
        line += f", Cohen's d = {res.cohens_d:+.3f}" if res.cohens_d == res.cohens_d else ", Cohen's d = n/a"
        console.print(line, highlight=False)
        colour = "green" if m.reject else "white"
        console.print(f"[{colour}]{rep.verdict(m)}[/{colour}]", highlight=False)
