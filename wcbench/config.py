"""Typed configs and presets.

Presets are data files under `wcbench/presets/<kind>/<name>.toml` (kind: `search`, `retrain`, ...),
one table per preset (`[paper]`, `[quick]`, and dataset-specific tables such as `[paper.cifar100]`
that override `[paper]` for that dataset). Each value in a `paper` table carries its source in a
comment (the paper's table and row). A component declares its config as a pydantic model;
`resolve_config` merges preset, dataset table and `--set key=value` overrides and validates the result.
"""

from __future__ import annotations

import json
import sys
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
