"""Fair comparisons: a t-test of two searchers means something only when their runs were made the same
way, seed aside, and with enough seeds for the test.

- :func:`run_settings`: a run's *resolved* settings as written beside its results (the search's
  ``search/config.json``, each ``retrain/<dataset>/retrain.json`` config, and the compared scorer's
  params in ``scores/<scorer>.json``), flattened to dotted keys; the seed and the device are not
  settings. ``manifest.json`` is not read: it records what was asked, the stage files what ran.
- :func:`differing_settings`: the keys in which a comparison's runs differ. Runs of one searcher may
  differ in nothing; runs of two searchers in nothing but what names the searcher (its strategy and
  the strategy's settings, and its algorithm's settings when the algorithms differ).
- :data:`MIN_SEEDS` / :data:`FEW_SEEDS`: below 3 seeds per side no test is run (a t-test on two values
  per side has one degree of freedom and Cohen's d is meaningless); below 5 the output warns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from wcbench.files import read_json

__all__ = [
    "FEW_SEEDS",
    "MIN_SEEDS",
    "describe_differences",
    "differing_settings",
    "few_seeds_warning",
    "run_settings",
    "too_few_seeds",
]

#: Fewest seeds per side for a t-test (below it: no test, and the output says so).
MIN_SEEDS = 3
#: Below this many seeds per side the output warns that the test has little power (the paper uses 10).
FEW_SEEDS = 5

_NOT_SETTINGS = frozenset({"seed", "device"})
#: Keys that name the searcher itself: they differ between two searchers by design.
_SEARCHER_KEYS = ("search.searcher", "search.strategy", "search.strategy_config.")
_ALGORITHM_KEYS = ("search.algorithm", "search.algorithm_config.")


def _flatten(obj: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if str(k) not in _NOT_SETTINGS:
                _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = obj


def _read(path: Path) -> Any:
    try:
        return read_json(path) if path.is_file() else None
    except Exception:  # noqa: BLE001 - an unreadable stage file holds no settings (collect_runs warns)
        return None


def _scorer_fields(scorer: str) -> set[str] | None:
    """The parameter names ``scorer`` declares (its ``Params`` model); None when it is not registered."""
    try:
        from wcbench.registry import SCORERS

        params = getattr(SCORERS.get(scorer), "Params", None)
        return set(params.model_fields) if params is not None else None
    except Exception:  # noqa: BLE001 - an unknown scorer: compare every recorded param
        return None


def run_settings(run_dir: str | Path, scorer: str | None = None) -> dict[str, Any]:
    """The resolved settings of the run in ``run_dir`` as ``{"search.algorithm_config.epochs": 50, ...}``
    (``search.``, ``retrain.<dataset>.``, ``<scorer>.``); empty for a tree without stage files."""
    run = Path(run_dir)
    out: dict[str, Any] = {}
    search = _read(run / "search" / "config.json")
    if isinstance(search, dict):
        _flatten(search, "search", out)
    retrain_root = run / "retrain"
    for path in sorted(retrain_root.glob("*/retrain.json")) if retrain_root.is_dir() else []:
        record = _read(path)
        if isinstance(record, dict) and isinstance(record.get("config"), dict):
            _flatten(record["config"], f"retrain.{path.parent.name}", out)
    if scorer:
        record = _read(run / "scores" / f"{scorer}.json")
        if isinstance(record, dict) and isinstance(record.get("params"), dict):
            fields = _scorer_fields(scorer)
            params = {k: v for k, v in record["params"].items() if fields is None or k in fields}
            _flatten(params, scorer, out)
    return out


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _differ(settings: list[dict[str, Any]], ignore: tuple[str, ...] = ()) -> set[str]:
    keys = set().union(*settings) if settings else set()
    return {
        k for k in keys if not k.startswith(ignore) and len({_key(s.get(k, "<unset>")) for s in settings}) > 1
    }


def differing_settings(
    runs_a: Iterable[str | Path], runs_b: Iterable[str | Path] = (), scorer: str | None = None
) -> list[str]:
    """The settings in which the runs differ, sorted: any key within one side's runs; between the
    sides, any key but those naming the searcher (and the algorithm's settings when the two sides'
    algorithms differ). Runs without stage files (hand-made trees) have no settings to compare."""
    sa = [s for s in (run_settings(r, scorer) for r in runs_a) if s]
    sb = [s for s in (run_settings(r, scorer) for r in runs_b) if s]
    differ = _differ(sa) | _differ(sb)
    if sa and sb:
        ignore = _SEARCHER_KEYS
        algorithms = {_key(s.get("search.algorithm")) for s in sa + sb}
        if len(algorithms) > 1:
            ignore = ignore + _ALGORITHM_KEYS
        differ |= _differ(sa + sb, ignore)
    return sorted(differ)


def describe_differences(keys: list[str], limit: int = 6) -> str:
    """``retrain.digits.epochs, search.algorithm_config.epochs`` (at most ``limit``, then a count)."""
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def too_few_seeds(n_a: int, n_b: int) -> str | None:
    """Why no test is run on ``n_a`` and ``n_b`` seeds, or None when there are enough."""
    n = min(n_a, n_b)
    if n < MIN_SEEDS:
        return (
            f"n = {n} seed(s) on one side: a t-test needs at least {MIN_SEEDS} per side to mean anything; "
            f"run more seeds (--seeds 1-10 as in the paper)"
        )
    return None


def few_seeds_warning(n_a: int, n_b: int) -> str | None:
    """A warning for a test on fewer than :data:`FEW_SEEDS` seeds per side, or None."""
    n = min(n_a, n_b)
    if MIN_SEEDS <= n < FEW_SEEDS:
        return (
            f"only n = {n} seeds on one side: the t-test has little power and assumes normal per-seed "
            f"values; the paper uses 10"
        )
    return None
