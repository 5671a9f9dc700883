"""The typer application object and shared console helpers; commands attach in sibling modules."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

import wcbench
from wcbench.progress import console_err  # noqa: F401 - re-exported: the one stderr console

app = typer.Typer(
    name="wcbench",
    help="Differentiable NAS with worst-case validation, and robustness benchmarks for its genotypes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:  # the installed distribution's version: importing torch would take seconds
            torch_version = version("torch")
        except PackageNotFoundError:
            torch_version = "not installed"
        print(f"wcbench {wcbench.__version__} (torch {torch_version})")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
) -> None:
    """wcbench: search, retrain, score and compare architectures."""


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
