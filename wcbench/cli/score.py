"""`wcbench score` (a retrained or an external model) and `wcbench evaluate` (retrain, then score)."""

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


def _is_spec(model: str) -> bool:
    """An external model spec (``kind:name``), not a directory."""
    return ":" in model and not Path(model).is_dir()


def _floats(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(
            f"{option} takes numbers separated by commas, e.g. 0.5,0.5,0.5, not {text!r}"
        ) from None


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
    model: str | None = typer.Option(
        None,
        "--model",
        help="A retrain directory (`wcbench retrain --out`), or an external model: timm:<arch>, "
        "torchvision:<arch>, robustbench:<dataset>/<threat>/<name>, package.module:function.",
    ),
    weights: Path | None = typer.Option(
        None, "--weights", help="External timm/torchvision/module model: a state dict (else random init)."
    ),
    model_dir: Path | None = typer.Option(
        None, "--model-dir", help="RobustBench: the local model directory (<dataset>/<threat>/<name>.pt)."
    ),
    num_classes: int | None = typer.Option(
        None, "--num-classes", help="External timm/torchvision model: head size (default: the dataset's)."
    ),
    input_size: int | None = typer.Option(
        None, "--input-size", help="External model: input resolution (default: what the model declares)."
    ),
    mean: str | None = typer.Option(None, "--mean", help="External model: its input mean, e.g. 0.5,0.5,0.5."),
    std: str | None = typer.Option(None, "--std", help="External model: its input std, e.g. 0.25,0.25,0.25."),
    runs_dir: Path = typer.Option(
        Path("runs"),
        "--runs-dir",
        help="External model: runs tree (<dataset>/external-<name>/seed-N/scores).",
    ),
    genotype: str | None = typer.Option(
        None, "--genotype", help="Without --model: a genotype, for scorers that need no weights (cost)."
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", help="With --genotype or an external model: cifar10 | digits | imagenet ..."
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
        None, "--seed", help="Seed for subsets and random starts (default: the retrain's)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the score records as JSON."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
) -> None:
    """Score a retrained model (--model DIR) or an external one (--model SPEC) with one or more scorers;
    writes scores/<scorer>.json."""
    from evaluators.common import ScoreContext
    from wcbench.stages import external_score_context, genotype_score_context, score_stage

    names = _scorer_list(scorer)
    settings = split_settings(parse_overrides(overrides), "score", names)
    if model is not None and genotype is not None:
        raise ConfigError("give --model DIR or --genotype G, not both")
    if model is not None and _is_spec(model):
        ctx = external_score_context(
            model,
            dataset,
            weights=weights,
            model_dir=model_dir,
            num_classes=num_classes,
            input_size=input_size,
            mean=_floats(mean, "--mean"),
            std=_floats(std, "--std"),
            runs_dir=runs_dir,
            scores_dir=scores_dir,
            data_root=data_root,
            download=download,
            device=device,
            seed=seed or 0,
            progress=not no_progress,
        )
        ext = ctx.external
        if ext is not None and not as_json:
            notes = "; ".join(ext.notes) or f"weights {ext.weights}"
            console.print(f"{ext.label} ({ext.spec}): {notes}; scores in {ctx.scores_dir}")
    elif model is not None:
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
    seed: int = typer.Option(0, "--seed", help="Random seed."),
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
