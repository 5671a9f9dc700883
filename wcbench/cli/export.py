"""`wcbench export robustbench RUN_DIR --file FILE`: a run's scores in RobustBench's model-info format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from wcbench.cli.app import app, console, print_json
from wcbench.cli.options import option
from wcbench.errors import ConfigError

export_app = typer.Typer(help="Export scores in other projects' formats.", no_args_is_help=True)
app.add_typer(export_app, name="export")


def _scores(run_dir: Path) -> dict[str, dict[str, Any]]:
    from wcbench.files import read_json

    folder = run_dir / "scores" if (run_dir / "scores").is_dir() else run_dir
    found = {}
    for f in sorted(folder.glob("*.json")):
        rec = read_json(f)
        if isinstance(rec, dict) and isinstance(rec.get("metrics"), dict):
            found[str(rec.get("scorer") or f.stem)] = rec
    if not found:
        raise ConfigError(f"no score files in {folder}; run `wcbench score` first")
    return found


def _default_threat(scores: dict[str, dict[str, Any]], model: dict[str, Any]) -> str:
    spec = str(model.get("spec") or "")
    if spec.startswith("robustbench:") and spec.count("/") == 2:
        return spec.split("/")[1]
    if "autoattack" in scores:
        return str(scores["autoattack"].get("params", {}).get("norm") or "Linf")
    return "corruptions" if "cifar-c" in scores else "Linf"


@export_app.command("robustbench")
def export_robustbench(
    run_dir: Path = typer.Argument(..., help="A run directory (…/seed-N) or its scores/ folder."),
    out: Path = option(
        "--file",
        ...,
        "Here: the JSON (robustbench keeps model_info/<dataset>/<threat>/<name>.json).",
        dir_okay=False,
    ),
    name: str | None = option("--name"),
    threat: str | None = option("--threat"),
    fields: list[str] | None = option("--field"),
    as_json: bool = option("--json", False, "Here: the record."),
) -> None:
    """Write RUN_DIR's scores (clean, autoattack, cifar-c) as a RobustBench model_info JSON file."""
    from wcbench.files import atomic_write_json, read_json
    from wcbench.robustbench import model_info

    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is not a directory; pass a run directory (…/seed-N)")
    scores = _scores(run_dir)
    base = run_dir.parent if run_dir.name == "scores" else run_dir
    model = read_json(base / "external.json") if (base / "external.json").is_file() else {}
    overrides: dict[str, Any] = {}
    for item in fields or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--field takes key=value, got {item!r}")
        overrides[key.strip()] = value
    label = name or (base.parent.name if base.name.startswith("seed-") else base.name)
    record = model_info(
        scores, model, name=label, threat=threat or _default_threat(scores, model), overrides=overrides
    )
    atomic_write_json(out, record)
    if as_json:
        print_json(record)
    else:
        console.print(f"wrote {out} ({len(scores)} score files: {', '.join(scores)})")
