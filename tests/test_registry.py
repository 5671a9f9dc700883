"""Registries by name: decorators, did-you-mean errors, and searcher names `<strategy>-<algorithm>`."""

from __future__ import annotations

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
