"""The typer application object and shared console helpers; commands attach in sibling modules."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperOption

import wcbench
from wcbench.cli.options import option
from wcbench.progress import console_err  # noqa: F401 - re-exported: the one stderr console

_display_type_rich = TyperOption.display_type_rich


def _switches_take_no_value(self: TyperOption, ctx: Any) -> str | None:
    """Typer's rich help prints a value type beside every option, switches (`--json`, `--help`) too,
    as `<bool>`, as if they took a value; a switch shows none."""
    return None if self.is_flag else _display_type_rich(self, ctx)


TyperOption.display_type_rich = _switches_take_no_value  # type: ignore[method-assign]

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
    version: bool = option("--version", False, callback=_version, is_eager=True),
    debug: bool = option("--debug", False),
) -> None:
    """wcbench: search, retrain, score and compare architectures."""


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
