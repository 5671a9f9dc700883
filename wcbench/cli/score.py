"""`wcbench score` (score a retrained model) and `wcbench evaluate` (retrain, then score)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from wcbench.cli.app import app, console, print_json
from wcbench.cli.retrain import FAMILY_HELP
from wcbench.config import parse_overrides, split_settings
from wcbench.errors import ConfigError


def _scorer_list(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise ConfigError("no scorer given: --scorer clean,cost,attacks (see `wcbench list scorers`)")
    from wcbench.registry import SCORERS

    for n in names:
        SCORERS.get(n)  # unknown names: one-line error with did-you-mean
    return names


def _show(records: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(records if len(records) != 1 else records[0])
        return
    for rec in records:
        table = Table(
            title=f"{rec['scorer']} v{rec['scorer_version']}: {rec['dataset']} {rec['split']} "
            f"({rec['num_examples']} examples, {rec['duration_s']:.1f} s)"
        )
        table.add_column("metric")
        table.add_column("value", justify="right")
        table.add_column("unit")
        for name, m in rec["metrics"].items():
            v = m.get("value")
            table.add_row(
                name, "-" if v is None else f"{v:,.4g}" if abs(v) < 1e5 else f"{v:,.0f}", m.get("unit", "")
            )
        console.print(table)


@app.command("score")
def score_cmd(
    scorer: str = typer.Option(
        ..., "--scorer", help="Scorer name(s), comma-separated (see `wcbench list scorers`)."
    ),
    model: Path | None = typer.Option(None, "--model", help="A retrain directory (`wcbench retrain --out`)."),
    genotype: str | None = typer.Option(
        None, "--genotype", help="Without --model: a genotype, for scorers that need no weights (cost)."
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", help="With --genotype: cifar10 | cifar100 | imagenet ..."
    ),
    preset: str = typer.Option(
        "paper", "--preset", help="With --genotype: the retrain preset sizing the network."
    ),
    family: str | None = typer.Option(None, "--family", help=FAMILY_HELP),
    overrides: list[str] | None = typer.Option(
        None, "--set", help="Scorer setting: --set num_examples=500 or --set attacks.num_examples=500."
    ),
    scores_dir: Path | None = typer.Option(
        None, "--scores-dir", help="Where to write <scorer>.json (default: <run>/scores or DIR/scores)."
    ),
    data_root: str | None = typer.Option(None, "--data-root", help="Data root (default $WCBENCH_DATA)."),
    download: bool = typer.Option(False, "--download", help="Download the dataset if the library can."),
    device: str | None = typer.Option(
        None, "--device", help="cpu | cuda | cuda:N (default: cuda if available)."
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        min=0,
        max=2**31 - 1,
        help="Seed for subsets and random starts (default: the retrain's).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the score records as JSON."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
) -> None:
    """Score a retrained model (--model DIR) with one or more scorers; writes scores/<scorer>.json."""
    from evaluators.common import ScoreContext
    from wcbench.stages import genotype_score_context, score_stage

    names = _scorer_list(scorer)
    settings = split_settings(parse_overrides(overrides), "score", names)
    if model is not None:
        if genotype is not None:
            raise ConfigError("give --model DIR or --genotype G, not both")
        ctx = ScoreContext.from_model_dir(
            model,
            scores_dir=scores_dir,
            data_root=data_root,
            download=download,
            device=device,
            seed=seed,
            progress=not no_progress,
        )
    else:
        if genotype is None or dataset is None:
            raise ConfigError("give --model DIR (a retrain directory), or --genotype G --dataset D for cost")
        ctx = genotype_score_context(
            genotype,
            dataset,
            preset=preset,
            family=family,
            scores_dir=scores_dir,
            data_root=data_root,
            device=device,
            seed=seed or 0,
            progress=not no_progress,
        )
    _show(score_stage(ctx, names, settings), as_json)


@app.command("evaluate")
def evaluate_cmd(
    genotype: str = typer.Option(
        ..., "--genotype", help="Published name, genotype file, run dir or DARTS string."
    ),
    dataset: str = typer.Option(
        ..., "--dataset", help="digits | cifar10 | cifar100 | imagefolder:<path> ..."
    ),
    scorers: str = typer.Option("clean,cost", "--scorers", help="Comma-separated scorer names."),
    out: Path = typer.Option(..., "--out", help="Output directory: retrain/<dataset>/ and scores/ go here."),
    preset: str = typer.Option("paper", "--preset", help="paper | quick | smoke."),
    family: str | None = typer.Option(None, "--family", help=FAMILY_HELP),
    seed: int = typer.Option(0, "--seed", min=0, max=2**31 - 1, help="Random seed."),
    overrides: list[str] | None = typer.Option(None, "--set", help="Retrain setting: --set epochs=10."),
    score_overrides: list[str] | None = typer.Option(
        None, "--score-set", help="Scorer setting: --score-set attacks.num_examples=500."
    ),
    data_root: str | None = typer.Option(None, "--data-root", help="Data root (default $WCBENCH_DATA)."),
    download: bool = typer.Option(False, "--download", help="Download the dataset if the library can."),
    device: str | None = typer.Option(None, "--device", help="cpu | cuda | cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print the score records as JSON."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
) -> None:
    """Retrain GENOTYPE on DATASET (resuming if interrupted), then run each scorer on it."""
    from evaluators.common import ScoreContext
    from wcbench.runs import dataset_dir
    from wcbench.stages import retrain_stage, score_stage

    names = _scorer_list(scorers)
    settings = split_settings(parse_overrides(score_overrides), "score", names)  # checked before the retrain
    model_dir = out / "retrain" / dataset_dir(dataset)  # the layout `wcbench run` uses
    retrain_stage(
        genotype,
        dataset,
        model_dir,
        preset=preset,
        family=family,
        seed=seed,
        settings=parse_overrides(overrides),
        settings_as_typed=list(overrides or []),
        data_root=data_root,
        download=download,
        device=device,
        progress=False if no_progress else None,
    )
    ctx = ScoreContext.from_model_dir(
        model_dir,
        scores_dir=out / "scores",
        data_root=data_root,
        download=download,
        device=device,
        seed=seed,
        progress=not no_progress,
    )
    _show(score_stage(ctx, names, settings), as_json)
