"""`wcbench tester pretrain`: train the tester's generator (or policy) and auxiliary model once, and
cache them under the data root (paper Sec. 3.3, Appendix A.1); `ours-*` searches start from it."""

from __future__ import annotations

import logging
import tempfile

import typer

from wcbench.cli.app import app, console
from wcbench.config import parse_overrides
from wcbench.errors import ConfigError

tester_app = typer.Typer(help="Pretrain and cache the `ours` strategy's tester.", no_args_is_help=True)
app.add_typer(tester_app, name="tester")

_ALGORITHM_FOR = {"gan": "darts2nd", "augment": "pdarts"}


@tester_app.command("pretrain")
def pretrain(
    dataset: str = typer.Option(
        ..., "--dataset", help="cifar10 | cifar100 | digits | imagefolder:<path> ..."
    ),
    tester: str = typer.Option("gan", "--tester", help="gan (FQ-GAN by default) | augment (DADA policy)."),
    preset: str = typer.Option(
        "paper", "--preset", help="paper | quick: the `ours` preset sizing the tester."
    ),
    algorithm: str | None = typer.Option(
        None,
        "--algorithm",
        help="Search algorithm whose `ours` preset to use (default: darts2nd for gan, pdarts).",
    ),
    seed: int = typer.Option(0, "--seed", help="The seed of the search split the tester is trained on."),
    overrides: list[str] | None = typer.Option(
        None, "--set", help="Tester setting: --set generator=sngan --set pretrain_iters=1000."
    ),
    data_root: str | None = typer.Option(None, "--data-root", help="Data root (default $WCBENCH_DATA)."),
    device: str | None = typer.Option(None, "--device", help="cpu | cuda (default: cuda if available)."),
) -> None:
    """Pretrain the tester on the search-train half of DATASET and cache it (keyed by dataset and config)."""
    from searchers.loop import run_search

    if tester not in _ALGORITHM_FOR:
        raise ConfigError(f"unknown --tester {tester!r}; choose gan or augment")
    values = {f"strategy.{k}": v for k, v in parse_overrides(overrides).items()}
    values.update({"strategy.tester": tester, "strategy.tester_init": "pretrain"})
    if data_root is not None:
        import os

        os.environ["WCBENCH_DATA"] = data_root  # the tester cache lives under the data root
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("wcbench.ours")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run_search(
                f"ours-{algorithm or _ALGORITHM_FOR[tester]}",
                dataset,
                preset,
                seed,
                "darts",
                tmp,
                values,
                device,
                progress=False,
                data_root=data_root,
                setup_only=True,
            )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    for m in messages:
        console.print(m, markup=False)
