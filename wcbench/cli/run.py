"""`wcbench run`: search -> genotype -> retrain -> scores for each seed, then a summary."""

from __future__ import annotations

from pathlib import Path

from wcbench.cli.app import app, console, console_err, print_json
from wcbench.cli.options import SEED_DEFAULT, option
from wcbench.config import parse_overrides


@app.command("run")
def run_cmd(
    searcher: str = option("--searcher", ...),
    dataset: str | None = option(
        "--dataset", None, "Searched on (default: cifar10, the paper's; digits with a CPU preset)."
    ),
    preset: str = option("--preset", "paper"),
    seeds: str = option("--seeds", str(SEED_DEFAULT)),
    scorers: str | None = option("--scorers", None, "Default: what the paper reports for the dataset."),
    runs_dir: Path = option("--runs-dir", Path("runs"), file_okay=False),
    space: str = option("--space", "darts"),
    overrides: list[str] | None = option(
        "--set",
        None,
        "Stages: search., retrain. and the scorers, e.g. --set search.epochs=2 --set clean.batch_size=256.",
        metavar="STAGE.KEY=VALUE",
    ),
    device: str | None = option("--device"),
    data_root: str | None = option("--data-root"),
    download: bool = option("--download", False),
    executor: str = option("--executor", "local"),
    partition: str | None = option("--partition"),
    gpus: int = option("--gpus", 1),
    cpus: int = option("--cpus", 8),
    time_min: int = option("--time-min", 1440),
    no_progress: bool = option("--no-progress", False),
    dry_run: bool = option("--dry-run", False),
    as_json: bool = option(
        "--json", False, "Here: the run folders, each stage's status and the scores (logs go to stderr)."
    ),
    force: list[str] | None = option("--force", None, "", metavar="STAGE"),
    rehearse: int | None = option("--rehearse", None, "", min=1),
    rehearse_examples: int = option("--rehearse-examples", 64, "", min=1),
    log: str | None = option("--log"),
) -> None:
    """Search, retrain and score SEARCHER for each seed; rerun the same command to resume."""
    from wcbench.errors import ConfigError
    from wcbench.pipeline import SlurmOptions, make_plan, preflight, run

    if executor not in ("local", "slurm", "submitit-local"):  # before any work, --dry-run included
        raise ConfigError(f"unknown --executor {executor!r}; choose local, slurm or submitit-local")
    plan = make_plan(
        searcher,
        dataset,
        preset,
        seeds,
        scorers,
        runs_dir,
        space,
        parse_overrides(overrides),
        device=device,
        data_root=data_root,
        download=download,
        progress=not no_progress,
        log=log,
        force=[f for item in force or [] for f in item.split(",") if f.strip()],
    )
    if dry_run:
        print_json(preflight(plan))
        return
    if rehearse is not None:
        from wcbench.cli.rehearsal import print_rehearsal
        from wcbench.rehearsal import rehearse as run_rehearsal

        report = run_rehearsal(
            plan, rehearse, rehearse_examples, log=lambda m: console.print(m, markup=False)
        )
        print_rehearsal(report)
        return
    shown = console_err if as_json else console
    dirs = run(
        plan,
        executor,
        SlurmOptions(partition, gpus, cpus, time_min),
        log=lambda m: shown.print(m, markup=False),
    )
    from wcbench.cli.summary import print_run_summary, print_search_summary, run_record

    if as_json:
        print_json(run_record(plan, dirs))
        return
    console.print(f"finished {len(dirs)} seed(s) under {runs_dir}")
    print_search_summary(dirs)
    print_run_summary(runs_dir, plan)
