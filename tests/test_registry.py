"""Registries by name: decorators, did-you-mean errors, and searcher names `<strategy>-<algorithm>`."""

from __future__ import annotations

import sys

import pytest

from wcbench.errors import RegistryError
from wcbench.registry import ALGORITHMS, STRATEGIES, Registry, searcher_names, split_searcher_name


def test_register_and_get() -> None:
    reg: Registry[object] = Registry("widget", "see docs")

    @reg.register("alpha")
    class Alpha:
        """An alpha widget."""

    assert reg.get("alpha") is Alpha and "alpha" in reg
    with pytest.raises(RegistryError, match="did you mean 'alpha'"):
        reg.get("alpah")
    with pytest.raises(RegistryError, match="registered twice"):
        reg.register("alpha")(object)


def test_searcher_names_split_into_strategy_and_algorithm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ALGORITHMS._items, "toydarts", object)
    monkeypatch.setitem(STRATEGIES._items, "plain", object)
    monkeypatch.setitem(STRATEGIES._items, "toycurriculum", object)
    assert split_searcher_name("toydarts") == ("plain", "toydarts")
    assert split_searcher_name("toycurriculum-toydarts") == ("toycurriculum", "toydarts")
    assert "toycurriculum-toydarts" in searcher_names() and "plain-toydarts" not in searcher_names()
    with pytest.raises(RegistryError, match="unknown searcher 'toycurriculum-toydarst'.*did you mean"):
        split_searcher_name("toycurriculum-toydarst")


def test_set_overrides_keep_dashed_stage_names() -> None:
    from wcbench.config import parse_overrides

    assert parse_overrides(["cifar-c.max-examples=5", "lr=0.1", "strategy.cost-reduction=false"]) == {
        "cifar-c.max_examples": 5,
        "lr": 0.1,
        "strategy.cost_reduction": False,
    }


def test_builtin_packages_are_named_once_and_walked_on_lookup() -> None:
    import wcbench
    from wcbench import registry

    assert wcbench.BUILTIN_PACKAGES == ("wcbench.data", "searchers", "evaluators")
    assert registry.registered_packages()[:3] == wcbench.BUILTIN_PACKAGES
    assert "darts1st" in ALGORITHMS and "clean" in registry.SCORERS and "digits" in registry.DATASETS


def test_a_registered_package_is_walked_by_the_next_lookup(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wcbench import registry

    pkg = tmp_path / "toy_wcbench_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "scorer.py").write_text(
        "from wcbench.registry import SCORERS\n\n@SCORERS.register('toy-scorer')\nclass Toy:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.load_plugins()  # everything named so far is walked
    monkeypatch.setattr(registry.SCORERS, "_items", dict(registry.SCORERS._items))
    monkeypatch.setattr(registry, "_packages", list(registry._packages))
    assert "toy-scorer" not in registry.SCORERS
    registry.register_packages("toy_wcbench_plugin", "toy_wcbench_plugin")
    assert registry.registered_packages().count("toy_wcbench_plugin") == 1
    try:
        assert registry.SCORERS.get("toy-scorer").__name__ == "Toy"
    finally:
        for name in ("toy_wcbench_plugin.scorer", "toy_wcbench_plugin"):
            sys.modules.pop(name, None)
