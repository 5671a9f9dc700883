"""`wcbench search`: run one architecture search (``<strategy>-<algorithm>``) into a directory."""

from __future__ import annotations

from pathlib import Path

from wcbench.cli.app import app, console
from wcbench.cli.options import SEED_DEFAULT, option
from wcbench.config import one_stage, parse_overrides


@app.command("search")
def search(
    searcher: str = option("--searcher", ...),
    out: Path = option(
        "--out", ..., "Here: genotype.json, history.jsonl, checkpoint.pt; rerunning resumes.", file_okay=False
    ),
    dataset: str | None = option(
        "--dataset", None, "Searched on (default: cifar10, or digits with a CPU preset)."
    ),
    preset: str = option("--preset", "paper"),
    seed: int = option("--seed", SEED_DEFAULT, "It picks the search split, initialisation and data order."),
    space: str = option("--space", "darts"),
    settings: list[str] | None = option(
        "--set",
        None,
        "One stage: search, e.g. --set epochs=2; strategy.key=value for the validation strategy.",
        metavar="STAGE.KEY=VALUE",
    ),
    epochs: int | None = option("--epochs"),
    batch_size: int | None = option("--batch-size"),
    data_root: str | None = option("--data-root"),
    download: bool = option("--download", False),
    device: str | None = option("--device"),
    no_progress: bool = option("--no-progress", False),
    log: str | None = option("--log"),
) -> None:
    """Search an architecture; writes genotype.json, history.jsonl, checkpoint.pt and config.json to OUT."""
    from wcbench.stages import search_stage

    overrides = one_stage(parse_overrides(settings), "search")
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
        progress=not no_progress,
        data_root=data_root,
        download=download,
        log=log,
    )
    console.print(f"genotype {genotype.hash()} -> {out / 'genotype.json'}")
    console.print(genotype.to_darts(), soft_wrap=True, highlight=False)
