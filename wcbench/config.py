"""Typed configs and presets.

Presets are data files under `wcbench/presets/<kind>/<name>.toml` (kind: `search`, `retrain`, ...),
one table per preset (`[paper]`, `[quick]`, and dataset-specific tables such as `[paper.cifar100]`
that override `[paper]` for that dataset). Each value in a `paper` table carries its source in a
comment (the paper's table and row). A component declares its config as a pydantic model;
`resolve_config` merges preset, dataset table and `--set key=value` overrides and validates the result.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from wcbench.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PRESETS_DIR = Path(__file__).parent / "presets"
M = TypeVar("M", bound=BaseModel)

PAPER_DATASET = "cifar10"
"""The paper's main search dataset (CIFAR-10): the default of every stage without --dataset."""

QUICK_DATASET = "digits"
"""The embedded dataset of the CPU presets (they need no download)."""

CPU_PRESETS = ("quick", "smoke")
"""Presets sized for a CPU on the embedded data: `quick` (the README's main job, minutes, shows the
method working) and `smoke` (the test suite's, seconds, exercises every code path)."""


def is_cpu_preset(preset: str) -> bool:
    """True for the presets sized for a CPU on the embedded data (`quick`, `smoke`)."""
    return preset in CPU_PRESETS


def default_dataset(preset: str) -> str:
    """The dataset a command searches on without --dataset: the paper's, or digits with a CPU preset."""
    return QUICK_DATASET if is_cpu_preset(preset) else PAPER_DATASET


def preset_file(kind: str, name: str) -> Path:
    return PRESETS_DIR / kind / f"{name}.toml"


def load_preset(kind: str, name: str, preset: str, dataset: str | None = None) -> dict[str, Any]:
    """The `[preset]` table of `presets/<kind>/<name>.toml`, with `[preset.<dataset>]` merged over it."""
    path = preset_file(kind, name)
    if not path.is_file():
        raise ConfigError(f"no {kind} presets for {name!r} (expected {path})")
    with path.open("rb") as fh:
        try:
            tables = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"preset file {path} is malformed: {exc}") from None
    if preset not in tables:
        known = [k for k in tables if isinstance(tables[k], dict)]
        raise ConfigError(f"unknown preset {preset!r} for {name!r}; choose one of {', '.join(known)}")
    table = dict(tables[preset])
    per_dataset = {k: v for k, v in table.items() if isinstance(v, dict)}
    base = {k: v for k, v in table.items() if not isinstance(v, dict)}
    if dataset is not None and dataset in per_dataset:
        base.update(per_dataset[dataset])
    return base


def _finite(value: Any) -> bool:
    """False for NaN/Infinity anywhere in a parsed `--set` value (JSON accepts them; no setting does)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """`--set key=value` pairs; values parse as JSON (numbers, lists, true) where they can, else strings."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        except ValueError:  # json's digits past Python's int-string limit
            raise ConfigError(
                f"--set {key}: number too long ({len(raw)} characters); give a real value"
            ) from None
        if not _finite(value):
            raise ConfigError(f"--set {key}={raw}: settings take finite numbers (not NaN or Infinity)")
        prefix, dot, field = key.rpartition(".")  # `cifar-c.max-examples` -> `cifar-c.max_examples`
        out[prefix + dot + field.replace("-", "_")] = value
    return out


def resolve_config(model: type[M], values: dict[str, Any], overrides: dict[str, Any] | None = None) -> M:
    """Validate preset values plus overrides against the typed config; unknown keys are errors."""
    merged = dict(values)
    unknown = set(overrides or {}) - set(model.model_fields)
    if unknown:
        known = ", ".join(sorted(model.model_fields))
        raise ConfigError(
            f"unknown setting(s) {', '.join(sorted(unknown))} for {model.__name__}; known: {known}"
        )
    merged.update(overrides or {})
    extra = set(merged) - set(model.model_fields)
    if extra:
        raise ConfigError(f"preset has unknown setting(s) {', '.join(sorted(extra))} for {model.__name__}")
    try:
        return model(**merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"bad setting {loc}: {first['msg']} (got {first.get('input')!r})") from None


def split_settings(
    values: Mapping[str, Any],
    stage: str | None = None,
    scorers: Sequence[str] = (),
    stages: Sequence[str] = ("search", "retrain"),
) -> dict[str, dict[str, Any]]:
    """The user's `--set key=value` settings -> one dict per stage (the one place they are split).

    The rule of every command: a key names its stage (``search.epochs``, ``retrain.epochs``,
    ``attacks.num_examples``); the prefix may be left out only where the command has one stage.

    * ``stage=None`` (`wcbench run`, `wcbench evaluate`: several stages): each key names its stage,
      one of ``stages`` or ``<scorer>.<k>``; returns ``{*stages, *scorers}``. The search's dict keeps
      ``strategy.<k>`` keys for the validation strategy.
    * ``stage="search"``: ``strategy.<k>`` -> ``"strategy"``, every other key -> ``"algorithm"``.
    * ``stage="score"``: ``<scorer>.<k>`` -> that scorer; a bare key only with a single scorer;
      returns ``{*scorers}``.

    The values of each dict are checked later, against the stage's typed config.
    """
    if stage is None:
        out: dict[str, dict[str, Any]] = {**{s: {} for s in stages}, **{s: {} for s in scorers}}
        for key, value in values.items():
            head, sep, rest = key.partition(".")
            if not sep or head not in out:
                named = ", ".join(f"{s}." for s in stages)
                raise ConfigError(
                    f"--set {key}=...: prefix the setting with its stage: {named} or one of the "
                    f"scorers ({', '.join(scorers)}), e.g. --set {stages[-1]}.epochs=2"
                )
            out[head][rest] = value
        return out
    if stage == "search":
        out = {"algorithm": {}, "strategy": {}}
        for key, value in one_stage(values, "search").items():
            if key.startswith("strategy."):
                out["strategy"][key.removeprefix("strategy.")] = value
            else:
                out["algorithm"][key] = value
        return out
    if stage == "score":
        from wcbench.registry import SCORERS

        out = {s: {} for s in scorers}
        for key, value in values.items():
            head, sep, rest = key.partition(".")
            if sep and head in out:
                out[head][rest] = value
                continue
            if sep and head in SCORERS:
                raise ConfigError(f"--set {key}: scorer {head!r} is not among {', '.join(scorers)}")
            if len(scorers) != 1:
                raise ConfigError(
                    f"--set {key}: prefix the setting with its scorer, one of {', '.join(scorers)} "
                    f"(e.g. --set {scorers[0] if scorers else 'clean'}.{key})"
                )
            if key not in SCORERS.get(scorers[0]).Params.model_fields:
                raise ConfigError(f"--set {key}: scorer {scorers[0]} has no setting {key!r}")
            out[scorers[0]][key] = value
        return out
    raise ValueError(f"unknown stage {stage!r}: None (every stage), 'search' or 'score'")


def one_stage(values: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """`--set` settings of a single-stage command: ``<stage>.<k>`` and a bare ``<k>`` mean the same."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        bare = key.removeprefix(f"{stage}.")
        if bare in out:
            raise ConfigError(f"--set {key}: {bare} is set twice (once as {stage}.{bare})")
        out[bare] = value
    return out
