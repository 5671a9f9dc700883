"""`wcbench list searchers|scorers|datasets|genotypes`."""

from __future__ import annotations

import re

import typer
from rich.table import Table

from wcbench.cli.app import app, console, print_json
from wcbench.cli.options import option
from wcbench.errors import ConfigError
from wcbench.registry import ALGORITHMS, DATASETS, SCORERS, STRATEGIES, searcher_names

KINDS = ("searchers", "scorers", "datasets", "genotypes", "algorithms", "strategies", "spaces")


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")  # :func:`mnist` -> mnist
_LITERAL = re.compile(r"``([^`]+)``|`([^`]+)`")  # ``root/x`` and `x` -> root/x, x


def plain_text(rest: str) -> str:
    """A docstring line without reST markup (roles, literals, emphasis), as a terminal shows it."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], rest)
    text = _LITERAL.sub(lambda m: m.group(1) or m.group(2), text)
    return re.sub(r"(?<![\w*])\*{1,2}([^*]+?)\*{1,2}(?![\w*])", r"\1", text)


def _doc(obj: object) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return plain_text(doc.splitlines()[0]) if doc else ""


def listing(kind: str) -> list[dict]:
    from wcbench.genotype import PUBLISHED
    from wcbench.space import SPACES

    if kind == "searchers":
        return [{"name": n} for n in searcher_names()]
    if kind == "algorithms":
        return [{"name": n, "doc": _doc(o)} for n, o in ALGORITHMS.items()]
    if kind == "strategies":
        return [{"name": n, "doc": _doc(o)} for n, o in STRATEGIES.items()]
    if kind == "scorers":
        return [{"name": n, "doc": _doc(o)} for n, o in SCORERS.items()]
    if kind == "datasets":
        return [{"name": n, "doc": _doc(o)} for n, o in DATASETS.items()]
    if kind == "genotypes":
        return [{"name": n, "hash": g.hash(), "darts": g.to_darts()} for n, g in PUBLISHED.items()]
    if kind == "spaces":
        return [{"name": n, "doc": s.description, "ops_per_edge": s.num_ops} for n, s in SPACES.items()]
    raise ConfigError(f"unknown list {kind!r}; choose one of {', '.join(KINDS)}")


@app.command("list")
def list_cmd(
    kind: str = typer.Argument(..., help=" | ".join(KINDS)),
    as_json: bool = option("--json", False),
) -> None:
    """List the registered searchers, scorers, datasets, or the published genotypes."""
    rows = listing(kind)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{kind} ({len(rows)})")
    keys = list(rows[0]) if rows else ["name"]
    for k in keys:
        table.add_column(k, overflow="fold")
    for row in rows:
        table.add_row(*(str(row.get(k, "")) for k in keys))
    console.print(table)
