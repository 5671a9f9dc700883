"""`wcbench retrain`: train a genotype from scratch (paper Appendix D.2, Tables 33-36)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from wcbench.cli.app import app, console, console_err
from wcbench.config import parse_overrides
from wcbench.genotype import load_genotype

FAMILY_HELP = (
    "Which paper table to follow: darts (Table 33), pdarts | pcdarts (Table 34), prdarts (Table 35), "
    "imagenet (Table 36). Default: from the genotype's searcher or published name, else darts."
)


def run_retrain(
    genotype: str,
    dataset: str,
    out: Path,
    *,
    preset: str = "paper",
    family: str | None = None,
    seed: int = 0,
    overrides: list[str] | None = None,
    data_root: str | None = None,
    download: bool = False,
    device: str | None = None,
    progress: bool | None = None,
):
    """Resolve the preset and run (or resume) the retrain; shared by `retrain` and `evaluate`."""
    from evaluators.retrain import family_for, load_retrain_config, retrain

    g = load_genotype(genotype)
    fam = family or family_for(genotype, dataset)
    config = load_retrain_config(fam, preset, dataset.partition(":")[0], parse_overrides(overrides))
    return retrain(
        g,
        dataset,
        out,
        config,
        seed=seed,
        data_root=data_root,
        download=download,
        device=device,
        progress=progress,
        preset={"family": fam, "preset": preset, "overrides": list(overrides or [])},
        genotype_source=str(genotype),
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
    preset: str = typer.Option("paper", "--preset", help="paper (Tables 33-36) | quick (a minute on a CPU)."),
    family: str | None = typer.Option(None, "--family", help=FAMILY_HELP),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    overrides: list[str] | None = typer.Option(None, "--set", help="Override a setting: --set epochs=10."),
    data_root: str | None = typer.Option(None, "--data-root", help="Data root (default $WCBENCH_DATA)."),
    download: bool = typer.Option(False, "--download", help="Download the dataset if the library can."),
    device: str | None = typer.Option(
        None, "--device", help="cpu | cuda | cuda:N (default: cuda if available)."
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
) -> None:
    """Retrain GENOTYPE from scratch on DATASET; rerun the same command to resume after a kill."""
    result = run_retrain(
        genotype,
        dataset,
        out,
        preset=preset,
        family=family,
        seed=seed,
        overrides=overrides,
        data_root=data_root,
        download=download,
        device=device,
        progress=False if no_progress else None,
    )
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return
    last = result.history[-1] if result.history else {}
    if result.finished and result.resumed_from >= result.epochs_done and result.resumed_from > 0:
        console_err.print(f"{out}: already finished ({result.epochs_done} epochs); nothing to do")
    summary = f"retrained {result.epochs_done} epochs into {out}"
    if "valid_acc" in last:
        summary += f"; {last.get('valid_split')} accuracy {last['valid_acc']:.2f}%"
    console.print(summary)
