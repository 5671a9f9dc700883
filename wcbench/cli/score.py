"""`wcbench score` (a retrained or an external model) and `wcbench evaluate` (retrain, then score)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from wcbench.cli.app import app, console, print_json
from wcbench.cli.options import SEED_DEFAULT, deprecated, option, warn_deprecated
from wcbench.config import parse_overrides, split_settings
from wcbench.errors import ConfigError


def _scorer_list(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise ConfigError("no scorer given: --scorers clean,cost,attacks (see `wcbench list scorers`)")
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
    scorers: str | None = option("--scorers", None, "Required."),
    model: str | None = option("--model"),
    genotype: str | None = option(
        "--genotype", None, "Without --model: for scorers that need no weights (cost)."
    ),
    dataset: str | None = option("--dataset", None, "With --genotype or an external model."),
    preset: str = option("--preset", "paper", "With --genotype: the retrain preset sizing the network."),
    family: str | None = option("--family"),
    overrides: list[str] | None = option(
        "--set", None, "Stages: the scorers, e.g. --set attacks.num_examples=500.", metavar="STAGE.KEY=VALUE"
    ),
    scores_dir: Path | None = option("--scores-dir", None, file_okay=False),
    data_root: str | None = option("--data-root"),
    download: bool = option("--download", False),
    device: str | None = option("--device"),
    seed: int | None = option("--seed", None, "Here: the retrain's seed unless given."),
    as_json: bool = option("--json", False),
    no_progress: bool = option("--no-progress", False),
    scorer: str | None = deprecated("--scorer"),
    weights: Path | None = option("--weights"),
    model_dir: Path | None = option("--model-dir"),
    num_classes: int | None = option("--num-classes"),
    input_size: int | None = option("--input-size"),
    mean: str | None = option("--mean"),
    std: str | None = option("--std"),
    runs_dir: Path = option(
        "--runs-dir",
        Path("runs"),
        "Here: external models' scores (<dataset>/external-<name>/).",
        file_okay=False,
    ),
) -> None:
    """Score a retrained model (--model DIR) or an external one (--model SPEC) with one or more scorers;
    writes scores/<scorer>.json."""
    from evaluators.common import ScoreContext
    from wcbench.stages import external_score_context, genotype_score_context, score_stage

    if scorer is not None:
        warn_deprecated("--scorer", "--scorers")
    if scorers is None and scorer is None:
        raise ConfigError("no scorer given: --scorers clean,cost,attacks (see `wcbench list scorers`)")
    names = _scorer_list(",".join(s for s in (scorers, scorer) if s))
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
            seed=SEED_DEFAULT if seed is None else seed,
            progress=not no_progress,
        )
    _show(score_stage(ctx, names, settings), as_json)


@app.command("evaluate")
def evaluate_cmd(
    genotype: str = option("--genotype", ...),
    dataset: str = option("--dataset", ..., "Retrained and scored on."),
    scorers: str = option("--scorers", "clean,cost"),
    out: Path = option(
        "--out", ..., "Here: retrain/<dataset>/ and scores/; rerunning resumes.", file_okay=False
    ),
    preset: str = option("--preset", "paper"),
    family: str | None = option("--family"),
    seed: int = option("--seed", SEED_DEFAULT),
    overrides: list[str] | None = option(
        "--set",
        None,
        "Stages: retrain. and the scorers, e.g. --set retrain.epochs=10 --set attacks.num_examples=500.",
        metavar="STAGE.KEY=VALUE",
    ),
    data_root: str | None = option("--data-root"),
    download: bool = option("--download", False),
    device: str | None = option("--device"),
    as_json: bool = option("--json", False),
    no_progress: bool = option("--no-progress", False),
    score_overrides: list[str] | None = deprecated("--score-set"),
    log: str | None = option("--log"),
) -> None:
    """Retrain GENOTYPE on DATASET (resuming if interrupted), then run each scorer on it."""
    from evaluators.common import ScoreContext
    from wcbench.runs import dataset_dir
    from wcbench.stages import retrain_stage, score_stage

    names = _scorer_list(scorers)
    if score_overrides:
        warn_deprecated("--score-set SCORER.KEY=V", "--set SCORER.KEY=V")
    typed = [*(overrides or []), *(score_overrides or [])]
    stage = split_settings(parse_overrides(typed), None, names, ("retrain",))  # checked before the retrain
    model_dir = out / "retrain" / dataset_dir(dataset)  # the layout `wcbench run` uses
    retrain_stage(
        genotype,
        dataset,
        model_dir,
        preset=preset,
        family=family,
        seed=seed,
        settings=stage.pop("retrain"),
        data_root=data_root,
        download=download,
        device=device,
        progress=False if no_progress else None,
        log=log,
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
    _show(score_stage(ctx, names, stage), as_json)
