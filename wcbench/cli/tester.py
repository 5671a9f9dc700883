"""`wcbench tester pretrain`: train the tester's generator (or policy) and auxiliary model once, and
cache them under the data root (paper Sec. 3.3, Appendix A.1); `ours-*` searches start from it."""

from __future__ import annotations

import logging

import typer

from wcbench.cli.app import app, console
from wcbench.cli.options import SEED_DEFAULT, option
from wcbench.config import one_stage, parse_overrides

tester_app = typer.Typer(help="Pretrain and cache the `ours` strategy's tester.", no_args_is_help=True)
app.add_typer(tester_app, name="tester")


@tester_app.command("pretrain")
def pretrain(
    dataset: str = option("--dataset", ..., "The tester learns its search-train half."),
    tester: str = option("--tester", "gan"),
    preset: str = option("--preset", "paper", "Here: the `ours` preset sizing the tester."),
    algorithm: str | None = option("--algorithm", None, "Default: darts2nd for gan, pdarts for augment."),
    seed: int = option(
        "--seed", SEED_DEFAULT, "Here: the seed of the search split (as the search's --seed)."
    ),
    overrides: list[str] | None = option(
        "--set",
        None,
        "One stage: tester, e.g. --set generator=sngan --set pretrain_iters=1000.",
        metavar="STAGE.KEY=VALUE",
    ),
    data_root: str | None = option("--data-root"),
    device: str | None = option("--device"),
) -> None:
    """Pretrain the tester on the search-train half of DATASET and cache it (keyed by dataset and config)."""
    from wcbench.stages import tester_pretrain_stage

    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("wcbench.ours")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        tester_pretrain_stage(
            dataset,
            tester,
            preset=preset,
            algorithm=algorithm,
            seed=seed,
            settings=one_stage(parse_overrides(overrides), "tester"),
            data_root=data_root,
            device=device,
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    for m in messages:
        console.print(m, markup=False)
