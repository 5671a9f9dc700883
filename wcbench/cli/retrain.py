"""`wcbench retrain`: train a genotype from scratch (paper Appendix D.2, Tables 33-36)."""

from __future__ import annotations

import os
from pathlib import Path

from wcbench.cli.app import app, console, console_err
from wcbench.cli.options import SEED_DEFAULT, option
from wcbench.config import one_stage, parse_overrides


@app.command("retrain")
def retrain_cmd(
    genotype: str = option("--genotype", ...),
    dataset: str = option("--dataset", ..., "Retrained on."),
    out: Path = option(
        "--out", ..., "Here: checkpoint.pt, model.pt, history.jsonl; rerunning resumes.", file_okay=False
    ),
    preset: str = option("--preset", "paper"),
    family: str | None = option("--family"),
    seed: int = option("--seed", SEED_DEFAULT),
    overrides: list[str] | None = option(
        "--set", None, "One stage: retrain, e.g. --set epochs=10.", metavar="STAGE.KEY=VALUE"
    ),
    data_root: str | None = option("--data-root"),
    download: bool = option("--download", False),
    device: str | None = option("--device"),
    no_progress: bool = option("--no-progress", False),
    log: str | None = option("--log"),
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
        settings=one_stage(parse_overrides(overrides), "retrain"),
        settings_as_typed=list(overrides or []),
        data_root=data_root,
        download=download,
        device=device,
        progress=False if no_progress else None,
        log=log,
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
