"""`wcbench search`: run one architecture search (``<strategy>-<algorithm>``) into a directory."""

from __future__ import annotations

from pathlib import Path

import typer

from wcbench.cli.app import app, console
from wcbench.config import parse_overrides


@app.command("search")
def search(
    searcher: str = typer.Option(
        ..., "--searcher", help="<strategy>-<algorithm>, e.g. darts2nd, spcl-pdarts."
    ),
    out: Path = typer.Option(..., "--out", help="Output directory; rerunning with the same one resumes."),
    dataset: str = typer.Option(
        None, "--dataset", help="Dataset searched on (default: cifar10, or digits with a CPU preset)."
    ),
    preset: str = typer.Option("paper", "--preset", help="paper | quick | smoke"),
    seed: int = typer.Option(
        0, "--seed", min=0, max=2**31 - 1, help="Seed of the search split, initialisation and data order."
    ),
    space: str = typer.Option("darts", "--space", help="darts | s1 | s2 | s3 | s4 (RobustDARTS)."),
    settings: list[str] = typer.Option(
        None, "--set", help="Override a preset value: key=value (strategy.key=value for the strategy)."
    ),
    epochs: int = typer.Option(None, "--epochs", help="Shorthand for --set epochs=N."),
    batch_size: int = typer.Option(None, "--batch-size", help="Shorthand for --set batch_size=N."),
    data_root: Path = typer.Option(None, "--data-root", help="Dataset root (default: $WCBENCH_DATA)."),
    download: bool = typer.Option(False, "--download", help="Download the dataset if it is missing."),
    device: str = typer.Option(None, "--device", help="cpu | cuda (default: cuda when available)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar (TTY only)."),
) -> None:
    """Search an architecture; writes genotype.json, history.jsonl, checkpoint.pt and config.json to OUT."""
    from wcbench.stages import search_stage

    overrides = parse_overrides(settings)
    if epochs is not None:
        overrides["epochs"] = epochs
    if batch_size is not None:
        overrides["batch_size"] = batch_size
    genotype = search_stage(
        searcher,
        dataset,
        out,
        preset=preset,
        seed=seed,
        space=space,
        settings=overrides,
        device=device,
        progress=progress,
        data_root=data_root,
        download=download,
    )
    console.print(f"genotype {genotype.hash()} -> {out / 'genotype.json'}")
    console.print(genotype.to_darts(), soft_wrap=True, highlight=False)
