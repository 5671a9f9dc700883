"""`wcbench tester pretrain`: train the tester's generator (or policy) and auxiliary model once, and
cache them under the data root (paper Sec. 3.3, Appendix A.1); `ours-*` searches start from it."""

from __future__ import annotations

import logging

import typer

from wcbench.cli.app import app, console
from wcbench.config import parse_overrides

tester_app = typer.Typer(help="Pretrain and cache the `ours` strategy's tester.", no_args_is_help=True)
app.add_typer(tester_app, name="tester")


@tester_app.command("pretrain")
def pretrain(
    dataset: str = typer.Option(
        ..., "--dataset", help="cifar10 | cifar100 | digits | imagefolder:<path> ..."
    ),
    tester: str = typer.Option("gan", "--tester", help="gan (FQ-GAN by default) | augment (DADA policy)."),
    preset: str = typer.Option(
        "paper", "--preset", help="paper | quick | smoke: the `ours` preset sizing the tester."
    ),
    algorithm: str | None = typer.Option(
        None,
        "--algorithm",
        help="Search algorithm whose `ours` preset to use (default: darts2nd for gan, pdarts).",
    ),
    seed: int = typer.Option(
        0, "--seed", min=0, max=2**31 - 1, help="The seed of the search split the tester is trained on."
    ),
    overrides: list[str] | None = typer.Option(
        None, "--set", help="Tester setting: --set generator=sngan --set pretrain_iters=1000."
    ),
    data_root: str | None = typer.Option(None, "--data-root", help="Data root (default $WCBENCH_DATA)."),
    device: str | None = typer.Option(None, "--device", help="cpu | cuda (default: cuda if available)."),
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
            settings=parse_overrides(overrides),
            data_root=data_root,
            device=device,
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    for m in messages:
        console.print(m, markup=False)
