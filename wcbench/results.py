"""A runs tree read back: every score as one tidy table (:func:`collect_runs`) and each run's
search hours (:func:`search_hours`), for the boards, comparisons and the cost scorer."""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from wcbench.errors import CheckpointError
from wcbench.files import DELETE_HINT, read_json, read_jsonl

__all__ = ["COLLECT_COLUMNS", "MAX_RUN_SEED", "SEARCH_COST_METRICS", "collect_runs", "search_hours"]

#: Columns of :func:`collect_runs`, in order.
COLLECT_COLUMNS = [
    "dataset",
    "searcher",
    "seed",
    "scorer",
    "metric",
    "value",
    "unit",
    "eval_dataset",
    "genotype_hash",
    "path",
]


#: Largest seed a run folder may name (``seed-<huge>`` is skipped by :func:`collect_runs`: the table's
#: seeds are int64).
MAX_RUN_SEED = 2**63 - 1


def _seed_from(path: Path) -> int | None:
    m = re.fullmatch(r"seed-(-?\d{1,19})", path.name)
    if not m:
        return None
    seed = int(m.group(1))
    return seed if -MAX_RUN_SEED <= seed <= MAX_RUN_SEED else None


#: The search-cost metric of each kind of device: a unit is the unit of the device that ran, so a
#: search on CPU is ``search_cpu_hours`` in CPU-h, never GPU-hours.
SEARCH_COST_METRICS = {"gpu": ("search_gpu_hours", "GPU-h"), "cpu": ("search_cpu_hours", "CPU-h")}


def search_hours(run_path: str | os.PathLike[str]) -> dict[str, tuple[float, str]]:
    """``{metric: (hours, unit)}`` of a run's search: the summed ``wall_time_s`` of
    ``search/history.jsonl`` per device kind (:data:`SEARCH_COST_METRICS`). Each epoch record names the
    device it ran on; records without one count as GPU when the manifest records CUDA, else CPU. A
    search resumed on another device gets both metrics. Empty without a history."""
    run = Path(run_path)
    history = run / "search" / "history.jsonl"
    if not history.is_file():
        return {}
    manifest_path = run / "manifest.json"
    manifest = read_json(manifest_path) if manifest_path.is_file() else {}
    fallback = "gpu" if isinstance(manifest, dict) and manifest.get("cuda_version") else "cpu"
    seconds: dict[str, float] = {}
    for r in read_jsonl(history):
        wall = r.get("wall_time_s")
        if isinstance(wall, bool) or not isinstance(wall, int | float):
            continue
        device = r.get("device")
        kind = fallback if not isinstance(device, str) else ("cpu" if device.startswith("cpu") else "gpu")
        seconds[kind] = seconds.get(kind, 0.0) + float(wall)
    if not seconds:
        seconds[fallback] = 0.0
    return {SEARCH_COST_METRICS[k][0]: (v / 3600.0, SEARCH_COST_METRICS[k][1]) for k, v in seconds.items()}


def _warn_skip(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _metric_rows(score: Any, score_file: Path) -> Iterator[tuple[str, float, str]]:
    if not isinstance(score, dict) or not isinstance(score.get("metrics"), dict):
        raise CheckpointError(f"score file {score_file} has no 'metrics' object; {DELETE_HINT}")
    for name, entry in score["metrics"].items():
        if isinstance(entry, dict):
            value, unit = entry.get("value"), entry.get("unit", "")
        else:
            value, unit = entry, ""
        if value is None:
            value = math.nan
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CheckpointError(
                f"metric {name!r} in {score_file} is not a number ({value!r}); {DELETE_HINT}"
            )
        yield str(name), float(value), "" if unit is None else str(unit)


def _score_rows(f: Path) -> list[dict[str, Any]]:
    """The rows of one score file; :class:`CheckpointError` naming it when it is not a score file."""
    score = read_json(f)
    rows = [{"metric": m, "value": v, "unit": u} for m, v, u in _metric_rows(score, f)]
    for key in ("scorer", "dataset", "genotype_hash"):
        if score.get(key) is not None and not isinstance(score[key], str):
            raise CheckpointError(
                f"score file {f}: {key!r} is a {type(score[key]).__name__}, not a string; {DELETE_HINT}"
            )
    for r in rows:
        if r["metric"] == "search_gpu_hours" and r["unit"] == "CPU-h":  # written before the split
            r["metric"] = SEARCH_COST_METRICS["cpu"][0]
        r.update(scorer=score.get("scorer") or f.stem, eval_dataset=score.get("dataset"))
        r["genotype_hash"] = score.get("genotype_hash")
    return rows


def _manifest_problem(run_path: Path) -> str | None:
    """Why a run's manifest cannot be trusted (corrupt, not an object, stages not an object), or None."""
    path = run_path / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = read_json(path)
    except (CheckpointError, OSError) as exc:
        return str(exc)
    if not isinstance(manifest, dict):
        return f"manifest {path} is not a JSON object"
    for key in ("stages", "config"):
        if key in manifest and not isinstance(manifest[key], dict):
            return f"manifest {path}: {key!r} is a {type(manifest[key]).__name__}, not an object"
    return None


def _is_rehearsal(run_path: Path) -> bool:
    """True for a rehearsal's run directory (its manifest's ``rehearse``, or its ``rehearsal.json``)."""
    if (run_path / "rehearsal.json").exists():
        return True
    manifest = run_path / "manifest.json"
    if not manifest.exists():
        return False
    try:
        data = read_json(manifest)
    except CheckpointError:
        return False
    config = data.get("config") if isinstance(data, dict) else None
    return isinstance(config, dict) and bool(config.get("rehearse"))


def collect_runs(
    runs_root: str | os.PathLike[str], warn: Callable[[str], None] | None = _warn_skip
) -> pd.DataFrame:
    """Every score in a runs tree as one tidy table, one row per (dataset, searcher, seed, scorer, metric).

    Columns: :data:`COLLECT_COLUMNS`. ``dataset`` is the dataset searched on (the directory),
    ``eval_dataset`` the one a score was measured on (the score file's ``dataset``). Runs with a
    ``search/history.jsonl`` also get ``search_cost`` rows (:func:`search_hours`: ``search_gpu_hours``
    in GPU-h, ``search_cpu_hours`` in CPU-h, by the device that ran).

    What cannot be read is skipped with one line to ``warn`` (default: ``warning: ...`` on stderr)
    naming it, so one bad file never blocks every board and comparison: a corrupt or malformed score
    file, a run whose manifest is corrupt (or has a list as ``stages``), a ``seed-<n>`` folder whose
    number is out of range. ``warn=None`` raises :class:`CheckpointError` instead.
    """

    def skip(message: str, exc: Exception | None = None) -> None:
        if warn is None:
            raise exc if exc is not None else CheckpointError(message)
        warn(message)

    root = Path(runs_root)
    rows: list[dict[str, Any]] = []
    if root.exists():
        run_dirs = []
        for p in sorted(root.rglob("seed-*")):
            if not p.is_dir():
                continue
            if _seed_from(p) is None:
                if re.fullmatch(r"seed--?\d+", p.name):
                    skip(f"skipped {p}: its seed is out of range (0..{MAX_RUN_SEED})")
                continue
            run_dirs.append(p)
        for run_path in run_dirs:
            if _is_rehearsal(run_path):
                continue  # `wcbench run --rehearse`: timings of capped stages, never results
            dataset, searcher = run_path.parent.parent.name, run_path.parent.name
            seed = _seed_from(run_path)
            problem = _manifest_problem(run_path)
            if problem is not None:
                skip(f"skipped run {run_path}: {problem}")
                continue
            hashes: set[str] = set()
            scores_dir = run_path / "scores"
            score_files = sorted(scores_dir.glob("*.json")) if scores_dir.is_dir() else []
            base = {"dataset": dataset, "searcher": searcher, "seed": seed}
            for f in score_files:
                if f.name.startswith("."):
                    continue
                try:
                    got = _score_rows(f)
                except (CheckpointError, OSError) as exc:
                    skip(f"skipped {f}: {str(exc).split('; delete it')[0]}", exc)
                    continue
                for r in got:
                    if r["genotype_hash"]:
                        hashes.add(str(r["genotype_hash"]))
                    rows.append({**base, **r, "eval_dataset": r["eval_dataset"] or dataset, "path": str(f)})
            try:
                hours = search_hours(run_path)
            except (CheckpointError, OSError) as exc:
                skip(f"skipped the search cost of {run_path}: {str(exc).split('; delete it')[0]}", exc)
                hours = {}
            for metric, (value, unit) in hours.items():
                rows.append(
                    {
                        **base,
                        "scorer": "search_cost",
                        "metric": metric,
                        "value": value,
                        "unit": unit,
                        "eval_dataset": dataset,
                        "genotype_hash": next(iter(hashes)) if len(hashes) == 1 else None,
                        "path": str(run_path / "search" / "history.jsonl"),
                    }
                )
    df = pd.DataFrame(rows, columns=COLLECT_COLUMNS)
    df["seed"] = df["seed"].astype("int64")
    df["value"] = df["value"].astype("float64")
    return df
