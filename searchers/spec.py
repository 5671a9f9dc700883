"""A search's configuration resolved from its name: ``<strategy>-<algorithm>`` -> the two presets
(``presets/search/<algorithm>.toml``, ``presets/strategy/<strategy>.toml``, or a plug-in's ``presets``)
with their ``[<preset>.<dataset>]`` tables, the strategy's search overrides (ours: the paper's
Appendix E tables) and the ``--set`` overrides, validated by the pydantic configs (:class:`SearchSpec`);
and the check that a resumed search asks for the same configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from searchers.base import SearchConfig, StrategyConfig
from wcbench.config import default_dataset, load_preset, preset_file, resolve_config, split_settings
from wcbench.errors import ConfigError
from wcbench.registry import ALGORITHMS, STRATEGIES, split_searcher_name
from wcbench.space import get_space


@dataclass(frozen=True)
class SearchSpec:
    """The resolved configuration of one search."""

    searcher: str
    strategy: str
    algorithm: str
    dataset: str
    preset: str
    seed: int
    space: str
    algorithm_config: SearchConfig
    strategy_config: StrategyConfig

    def to_dict(self) -> dict[str, Any]:
        return {
            "searcher": self.searcher,
            "strategy": self.strategy,
            "algorithm": self.algorithm,
            "dataset": self.dataset,
            "preset": self.preset,
            "seed": self.seed,
            "space": self.space,
            "algorithm_config": self.algorithm_config.model_dump(mode="json"),
            "strategy_config": self.strategy_config.model_dump(mode="json"),
        }


def _component_preset(kind: str, name: str, cls: Any, preset: str, dataset: str) -> dict[str, Any]:
    """The preset file `presets/<kind>/<name>.toml`, or, for a plug-in from another package, its
    `presets` class attribute (`{"paper": {...}, "quick": {...}, "smoke": {...}}`, optional
    `<preset>.<dataset>` keys)."""
    if preset_file(kind, name).is_file() or not hasattr(cls, "presets"):
        return load_preset(kind, name, preset, dataset)
    tables = cls.presets
    if preset not in tables:
        raise ConfigError(f"unknown preset {preset!r} for {name!r}; choose one of {', '.join(tables)}")
    table = dict(tables[preset])
    per_dataset = table.pop(dataset, None) if isinstance(table.get(dataset), dict) else None
    values = {k: v for k, v in table.items() if not isinstance(v, dict)}
    values.update(per_dataset or {})
    return values


def resolve_search(
    searcher: str,
    dataset: str | None = None,
    preset: str = "paper",
    seed: int = 0,
    space: str = "darts",
    overrides: dict[str, Any] | None = None,
) -> SearchSpec:
    """Name -> (strategy, algorithm); presets (``search/<algorithm>.toml``, ``strategy/<strategy>.toml``)
    with their ``[<preset>.<dataset>]`` tables, then ``--set`` overrides (``strategy.<key>`` for the
    strategy), validated by the pydantic configs."""
    strategy_name, algorithm_name = split_searcher_name(searcher)
    dataset = dataset or default_dataset(preset)
    get_space(space)
    algo_cls = ALGORITHMS.get(algorithm_name)
    strat_cls = STRATEGIES.get(strategy_name)
    settings = split_settings(overrides or {}, "search")
    algo_over, strat_over = settings["algorithm"], settings["strategy"]
    unknown = sorted(set(strat_over) - set(strat_cls.Config.model_fields))
    if unknown:
        known = ", ".join(f"strategy.{k}" for k in sorted(strat_cls.Config.model_fields)) or "none"
        raise ConfigError(
            f"unknown strategy setting(s) {', '.join('strategy.' + k for k in unknown)} for "
            f"{strategy_name!r}; known: {known}"
        )
    strat_values = _component_preset("strategy", strategy_name, strat_cls, preset, dataset)
    strat_cfg = resolve_config(strat_cls.Config, strat_values, strat_over)
    algo_values = _component_preset("search", algorithm_name, algo_cls, preset, dataset)
    algo_values.update(strat_cls.search_overrides(algorithm_name, dataset, preset))
    algo_values.update(strat_cls.config_search_overrides(strat_cfg, algo_values))
    algo_cfg = resolve_config(algo_cls.Config, algo_values, algo_over)
    return SearchSpec(
        searcher, strategy_name, algorithm_name, dataset, preset, int(seed), space, algo_cfg, strat_cfg
    )


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def check_same_config(saved: dict[str, Any], current: dict[str, Any], out_dir: Path) -> None:
    """ConfigError naming the first differing key unless the two configs are equal."""
    a, b = _flatten(saved), _flatten(current)
    a.pop("device", None)  # a search may resume on another device
    top = [k for k in b if "." not in k]  # searcher, dataset, ... before the nested settings
    for key in top + sorted((set(a) | set(b)) - set(top)):
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            raise ConfigError(
                f"{out_dir} holds a search with {key}={a.get(key, '<unset>')!r}, this command asks for "
                f"{b.get(key, '<unset>')!r}; use a new --out to start a different search (or the same "
                f"settings to resume)"
            )
