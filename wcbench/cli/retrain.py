"""`wcbench retrain`: train a genotype from scratch (paper Appendix D.2, Tables 33-36)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from wcbench.cli.app import app, console, console_err
from wcbench.config import parse_overrides

FAMILY_HELP = (
    "Which paper table to follow: darts (Table 33), pdarts | pcdarts (Table 34), prdarts (Table 35), "
    "imagenet (Table 36). Default: the one the search recorded in genotype.json, or the published "
    "name's, else darts."
)


@app.command("retrain")
def retrain_cmd(
    genotype: str = typer.Option(
        ..., "--genotype", help="Published name (DARTS_V2), genotype file, run dir or DARTS string."
    ),
    dataset: str = typer.Option(
        ..., "--dataset", help="digits | cifar10 | cifar100 | stl10 | imagefolder:<path> ..."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Retrain directory (checkpoint.pt, model.pt, history.jsonl)."
    ),
    preset: str = typer.Option(
        "paper", "--preset", help="paper (Tables 33-36) | quick (CPU, minutes) | smoke (CPU, seconds; tests)."
    ),
    family: str | None = typer.Option(None, "--family", help=FAMILY_HELP),
    seed: int = typer.Option(0, "--seed", min=0, max=2**31 - 1, help="Random seed."),
    overrides: list[str] | None = typer.Option(None, "--set", help="Override a setting: --set epochs=10."),
    data_root: str | None = typer.Option(None, "--data-root", help="Data root (default $WCBENCH_DATA)."),
    download: bool = typer.Option(False, "--download", help="Download the dataset if the library can."),
    device: str | None = typer.Option(
        None, "--device", help="cpu | cuda | cuda:N (default: cuda if available)."
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
) -> None:
    """Retrain GENOTYPE from scratch on DATASET; rerun the same command to resume after a kill."""
    from wcbench.stages import retrain_stage

    result = retrain_stage(
        genotype,
        dataset,
        out,
        preset=preset,
        family=family,
        seed=seed,
        settings=parse_overrides(overrides),
        settings_as_typed=list(overrides or []),
        data_root=data_root,
        download=download,
        device=device,
        progress=False if no_progress else None,
    ).result
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return
    last = result.history[-1] if result.history else {}
    if result.finished and result.resumed_from >= result.epochs_done and result.resumed_from > 0:
        console_err.print(f"{out}: already finished ({result.epochs_done} epochs); nothing to do")
    summary = f"retrained {result.epochs_done} epochs into {out}"
    if "valid_acc" in last:
        summary += f"; {last.get('valid_split')} accuracy {last['valid_acc']:.2f}%"
    console.print(summary)
