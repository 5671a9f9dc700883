"""`wcbench genotype show|convert|plot`: inspect, convert and draw genotypes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from wcbench.cli.app import app, console, print_json
from wcbench.cli.options import option
from wcbench.errors import ConfigError
from wcbench.files import atomic_write_text
from wcbench.published import MACS_COUNTER, PUBLISHED_COST

if TYPE_CHECKING:
    from wcbench.genotype import Genotype

# wcbench.genotype and wcbench.networks import torch: they are imported where a command runs, so that
# `wcbench --help` stays fast

genotype_app = typer.Typer(help="Inspect, convert and draw genotypes.", no_args_is_help=True)
app.add_typer(genotype_app, name="genotype")


def network_summary(genotype: Genotype, dataset: str) -> dict:
    """Params (aux excluded / included) and multiply-adds of the paper's evaluation network for `dataset`."""
    from wcbench.networks import PAPER_SETTINGS, build_network, count_macs, count_params

    if dataset not in PAPER_SETTINGS:
        raise ConfigError(f"unknown --dataset {dataset!r}; choose one of {', '.join(PAPER_SETTINGS)}")
    s = PAPER_SETTINGS[dataset]
    net = build_network(genotype, s["kind"], s["c"], s["layers"], s["num_classes"], auxiliary=True)
    return {
        "dataset": dataset,
        "network": "NetworkImageNet" if s["kind"] == "imagenet" else "NetworkCIFAR",
        "channels": s["c"],
        "cells": s["layers"],
        "num_classes": s["num_classes"],
        "input": list(s["input"]),
        "params": count_params(net),
        "params_with_aux": count_params(net, include_aux=True),
        "macs": count_macs(net, s["input"]),
        "macs_counter": MACS_COUNTER,
    }


@genotype_app.command("show")
def show(
    genotype: str = typer.Argument(
        ..., help="A published name (DARTS_V2), a genotype file, or a DARTS string."
    ),
    dataset: str = option(
        "--dataset", "cifar10", "Here: cifar10 | cifar100 | imagenet (the paper's network)."
    ),
    as_json: bool = option("--json", False),
) -> None:
    """Show the cells and the paper's evaluation network for DATASET (params, multiply-adds)."""
    from wcbench.genotype import PUBLISHED, load_genotype

    g = load_genotype(genotype)
    summary = network_summary(g, dataset)
    published = PUBLISHED_COST.get((genotype, dataset))
    if as_json:
        print_json(
            {
                "genotype": g.to_dict(),
                "hash": g.hash(),
                "darts": g.to_darts(),
                **summary,
                "published": published,
            }
        )
        return
    table = Table(title=f"genotype {genotype if genotype in PUBLISHED else g.hash()} (space {g.space})")
    table.add_column("node")
    table.add_column("normal cell")
    table.add_column("reduction cell")

    def fmt(pairs: tuple, node: int) -> str:
        return ", ".join(f"{op} <- {inp}" for op, inp in pairs[2 * node : 2 * node + 2])

    for node in range(g.steps):
        table.add_row(str(node + 2), fmt(g.normal, node), fmt(g.reduce, node))
    table.add_row("concat", str(list(g.normal_concat)), str(list(g.reduce_concat)))
    console.print(table)
    net = Table(
        title=f"{summary['network']}: {summary['channels']} channels, {summary['cells']} cells, "
        f"{summary['num_classes']} classes, input {tuple(summary['input'])}"
    )
    net.add_column("quantity")
    net.add_column("wcbench", justify="right")
    net.add_column("published", justify="right")
    net.add_row(
        "params (aux head excluded)",
        f"{summary['params']:,}",
        f"{published['params_m']}M" if published else "-",
    )
    net.add_row("params (with aux head)", f"{summary['params_with_aux']:,}", "-")
    macs_pub = f"{published['macs_m']}M" if published and "macs_m" in published else "-"
    net.add_row("multiply-adds", f"{summary['macs']:,}", macs_pub)
    console.print(net)
    console.print(f"multiply-adds counted by {MACS_COUNTER}")
    if published:
        console.print(f"published figures: {published['source']}")


@genotype_app.command("convert")
def convert(
    genotype: str = typer.Argument(..., help="A published name, a genotype file, or a DARTS string."),
    to: str = option("--to", ...),
    file: Path | None = option("--file", None, "Here: written instead of printing to stdout."),
) -> None:
    """Convert a genotype between JSON and the DARTS string form."""
    from wcbench.genotype import load_genotype

    g = load_genotype(genotype)
    if to == "json":
        text = g.to_json()
    elif to == "darts":
        text = g.to_darts()
    else:
        raise ConfigError(f"unknown --to {to!r}; choose json or darts")
    if file is None:
        print(text)
    else:
        atomic_write_text(file, text + "\n")


@genotype_app.command("plot")
def plot(
    genotype: str = typer.Argument(..., help="A published name, a genotype file, or a DARTS string."),
    file: Path = option("--file", ..., "Here: cell.png, cell.svg or cell.pdf."),
) -> None:
    """Draw the normal and reduction cells (like DARTS's visualize.py)."""
    from wcbench.genotype import PUBLISHED, load_genotype
    from wcbench.plot import plot_genotype

    g = load_genotype(genotype)
    title = f"{genotype} ({g.hash()})" if genotype in PUBLISHED else None
    path = plot_genotype(g, file, title)
    console.print(f"wrote {path}")
