"""`wcbench run`: search -> genotype -> retrain -> scores for each seed, then a summary."""

from __future__ import annotations

from pathlib import Path

import typer

from wcbench.cli.app import app, console
from wcbench.config import parse_overrides


@app.command("run")
def run_cmd(
    searcher: str = typer.Option(
        ..., "--searcher", help="<strategy>-<algorithm>, e.g. ours-pdarts, or pdarts."
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", help="Search dataset (default: cifar10, the paper's; digits with a CPU preset)."
    ),
    preset: str = typer.Option(
        "paper", "--preset", help="paper | quick (CPU, minutes, digits) | smoke (CPU, seconds; tests)."
    ),
    seeds: str = typer.Option("1", "--seeds", help="1-10, 1,3,5 or 0."),
    scorers: str | None = typer.Option(
        None, "--scorers", help="Comma-separated scorers (default: what the paper reports for the dataset)."
    ),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Root of the runs tree."),
    space: str = typer.Option("darts", "--space", help="darts | s1 | s2 | s3 | s4 (RobustDARTS, Table 4)."),
    overrides: list[str] | None = typer.Option(
        None,
        "--set",
        help="Stage setting: --set search.epochs=2, --set retrain.epochs=1, --set clean.batch_size=256.",
    ),
    device: str | None = typer.Option(
        None, "--device", help="cpu | cuda | cuda:N (default: cuda if available)."
    ),
    data_root: str | None = typer.Option(None, "--data-root", help="Data root (default $WCBENCH_DATA)."),
    download: bool = typer.Option(False, "--download", help="Download datasets the library can fetch."),
    executor: str = typer.Option("local", "--executor", help="local | slurm | submitit-local."),
    partition: str | None = typer.Option(None, "--partition", help="SLURM partition."),
    gpus: int = typer.Option(1, "--gpus", help="GPUs per SLURM task."),
    cpus: int = typer.Option(8, "--cpus", help="CPUs per SLURM task."),
    time_min: int = typer.Option(1440, "--time-min", help="SLURM time limit per task, minutes."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
    force: list[str] | None = typer.Option(
        None,
        "--force",
        help="Redo a finished stage whose settings differ: search, retrain, score or a scorer's name "
        "(repeatable; what depends on it is redone too).",
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Resolve every setting and check every input (data, settings, runs dir), print the plan as "
        "JSON, and exit without creating anything.",
    ),
) -> None:
    """Search, retrain and score SEARCHER for each seed; rerun the same command to resume."""
    from wcbench.pipeline import SlurmOptions, make_plan, preflight, run

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
        force=[f for item in force or [] for f in item.split(",") if f.strip()],
    )
    if dry_run:
        from wcbench.cli.app import print_json

        print_json(preflight(plan))
        return
    dirs = run(
        plan,
        executor,
        SlurmOptions(partition, gpus, cpus, time_min),
        log=lambda m: console.print(m, markup=False),
    )
    console.print(f"finished {len(dirs)} seed(s) under {runs_dir}")
    from wcbench.cli.summary import print_run_summary

    print_run_summary(runs_dir, plan)
