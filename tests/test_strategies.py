"""Validation strategies: the SPCL and DIHCL selection rules on hand-made losses, and the seam."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from searchers.base import ArchStepResult
from searchers.splits import IndexStream, SplitData
from searchers.strategies.dihcl import DIHCL, DIHCLConfig, dihcl_k, dihcl_update, topk_positions
from searchers.strategies.plain import Plain, PlainConfig
from searchers.strategies.spcl import SPCL, SPCLConfig, spcl_pace, spcl_select
from wcbench.registry import STRATEGIES, searcher_names, split_searcher_name


def _split(labels: list[int]) -> SplitData:
    n = len(labels)
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 4, 4).contiguous()
    return SplitData(
        images,
        torch.tensor(labels),
        torch.arange(100, 100 + n),  # dataset indices differ from positions
        (0.5, 0.5, 0.5),
        (0.25, 0.25, 0.25),
        torch.device("cpu"),
        augment=False,
        channels_last=False,
    )


class FakeCtx(SimpleNamespace):
    """The parts of SearchContext a strategy reads, with hand-made validation losses."""

    def val_example_losses(self):
        return self.losses

    def val_example_predictions(self):
        return self.preds


def _ctx(losses, labels=None, batch_size=2, arch_epochs_total=5, arch_lr=0.5):
    losses = torch.tensor(losses, dtype=torch.float32)
    n = losses.numel()
    labels = labels if labels is not None else [0] * n
    return FakeCtx(
        losses=losses,
        preds=torch.zeros(n, dtype=torch.int64),
        val=_split(labels),
        config=SimpleNamespace(batch_size=batch_size),
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
        arch_epochs_total=arch_epochs_total,
        arch_active=True,
        arch_lr=arch_lr,
    )


def test_registry_has_the_fifteen_baseline_searchers():
    assert {"plain", "spcl", "dihcl"} <= set(STRATEGIES.names())
    names = searcher_names()
    for algorithm in ("darts1st", "darts2nd"):
        assert algorithm in names and f"spcl-{algorithm}" in names and f"dihcl-{algorithm}" in names
    assert split_searcher_name("darts2nd") == ("plain", "darts2nd")
    assert split_searcher_name("dihcl-darts1st") == ("dihcl", "darts1st")


# ----------------------------------------------------------------------------------------- SPCL


def test_spcl_pace_grows_linearly_from_start_to_end():
    assert [round(spcl_pace(t, 5, 0.2, 1.0), 6) for t in range(5)] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert spcl_pace(0, 1, 0.3, 1.0) == 0.3  # a single arch epoch stays at the start
    assert spcl_pace(9, 5, 0.2, 1.0) == 1.0  # clipped


def test_spcl_selects_losses_at_or_above_the_kth_largest():
    losses = torch.tensor([0.1, 0.5, 2.0, 1.0, 3.0, 0.2])
    sel, lam = spcl_select(losses, 0.5, min_count=1)  # k = 3 -> lambda = 1.0
    assert lam == pytest.approx(1.0)
    assert sel.tolist() == [2, 3, 4]
    sel, lam = spcl_select(losses, 0.1, min_count=1)  # k = ceil(0.6) = 1: the hardest only
    assert sel.tolist() == [4] and lam == pytest.approx(3.0)
    sel, _ = spcl_select(losses, 0.1, min_count=2)  # at least one batch
    assert sel.tolist() == [2, 4]
    sel, _ = spcl_select(losses, 1.0, min_count=1)
    assert sel.tolist() == list(range(6))


def test_spcl_ties_with_lambda_are_all_selected():
    sel, lam = spcl_select(torch.tensor([1.0, 2.0, 2.0, 0.0]), 0.25, min_count=1)
    assert lam == 2.0 and sel.tolist() == [1, 2]


def test_spcl_per_class_curriculum_keeps_each_class_share():
    losses = torch.tensor([5.0, 4.0, 3.0, 2.0, 0.3, 0.2, 0.1, 0.05])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    sel, _ = spcl_select(losses, 0.25, min_count=1)  # global: the 2 hardest, both class 0
    assert sel.tolist() == [0, 1]
    sel, lam = spcl_select(losses, 0.25, min_count=1, labels=labels)  # one per class
    assert sel.tolist() == [0, 4] and lam == pytest.approx(0.3)


def test_spcl_strategy_runs_from_hardest_to_all():
    losses = [0.1, 0.9, 0.5, 0.7, 0.3, 0.2, 0.8, 0.4, 0.6, 1.0]
    ctx = _ctx(losses, batch_size=2, arch_epochs_total=3)
    strategy = SPCL(SPCLConfig(start_fraction=0.2, end_fraction=1.0))
    strategy.setup(ctx)
    counts = []
    for epoch in range(3):
        strategy.on_epoch_start(epoch, ctx)
        counts.append(int(strategy.selected.numel()))
        if epoch == 0:
            assert strategy.selected.tolist() == [1, 9]  # losses 0.9 and 1.0
            stats = strategy.epoch_stats()
            assert stats["selected_indices"] == [101, 109]  # dataset indices, not positions
            assert stats["selected_mean_loss"] == pytest.approx(0.95)
            assert stats["lambda"] == pytest.approx(0.9)
    assert counts == [2, 6, 10]
    assert strategy.epoch_stats()["selected_indices"] is None  # everything


def test_frozen_epochs_select_nothing_and_do_not_advance_the_pace():
    ctx = _ctx([0.1, 0.9, 0.5, 0.7], arch_epochs_total=2)
    strategy = SPCL(SPCLConfig(start_fraction=0.5, end_fraction=1.0))
    strategy.setup(ctx)
    ctx.arch_active = False
    strategy.on_epoch_start(0, ctx)
    assert strategy.selected is None and strategy.epoch_stats()["arch_active"] is False
    ctx.arch_active = True
    strategy.on_epoch_start(1, ctx)
    assert strategy.selected.tolist() == [1, 3] and strategy.arch_epoch == 1


# ----------------------------------------------------------------------------------------- DIHCL


def test_dihcl_k_schedule():
    ks = [dihcl_k(t, 100, warm=2, decay=0.9, k_min_fraction=0.3, min_count=1) for t in range(16)]
    assert ks[:6] == [100, 100, 90, 81, 73, 66]  # ceil(100 * 0.9^j)
    assert ks[-1] == 30 and min(ks) == 30  # floor 0.3 n
    assert dihcl_k(50, 100, 2, 0.9, 0.4, 1) == 40  # CIFAR-100 floor
    assert dihcl_k(50, 10, 0, 0.5, 0.1, min_count=4) == 4  # at least one batch


def _state(r):
    r = torch.tensor(r, dtype=torch.float64)
    n = r.numel()
    return r, torch.ones(n, dtype=torch.float64), torch.zeros(n, dtype=torch.int64), torch.zeros_like(r)


def test_dihcl_update_loss_variant():
    r, l_prev, p_prev, s = _state([1.0, 1.0, 1.0, 1.0])
    dihcl_update(r, l_prev, p_prev, s, torch.tensor([0, 2]), torch.tensor([4.0, 0.0]), torch.tensor([1, 0]),
                 eta=0.5, discount=0.9, hardness="loss")  # fmt: skip
    # a = loss / eta = [8, 0]; r = 0.9 a + 0.1 r for the seen, unchanged otherwise
    assert r.tolist() == pytest.approx([7.3, 1.0, 0.1, 1.0])
    assert l_prev.tolist() == [4.0, 1.0, 0.0, 1.0] and p_prev.tolist() == [1, 0, 0, 0]
    assert s.tolist() == [0.0, 0.5, 0.0, 0.5]  # lr summed since last seen


def test_dihcl_update_loss_change_and_flip_variants():
    r, l_prev, p_prev, s = _state([0.0, 0.0, 0.0])
    s += torch.tensor([0.5, 1.5, 0.0])  # examples 0 and 1 unseen for a while
    dihcl_update(r, l_prev, p_prev, s, torch.tensor([0, 1]), torch.tensor([3.0, 0.0]), torch.tensor([0, 2]),
                 eta=0.5, discount=0.5, hardness="loss_change")  # fmt: skip
    # |l - l_prev| / (s + eta): |3 - 1| / 1.0 = 2, |0 - 1| / 2.0 = 0.5; r = 0.5 a + 0.5 * 0
    assert r.tolist() == pytest.approx([1.0, 0.25, 0.0])
    r, l_prev, p_prev, s = _state([0.0, 0.0, 0.0])
    dihcl_update(r, l_prev, p_prev, s, torch.tensor([0, 1]), torch.tensor([1.0, 1.0]), torch.tensor([0, 2]),
                 eta=0.25, discount=1.0, hardness="flip")  # fmt: skip
    # example 1's prediction flipped 0 -> 2: a = 1 / 0.25 = 4; example 0 did not: 0
    assert r.tolist() == pytest.approx([0.0, 4.0, 0.0]) and p_prev.tolist() == [0, 2, 0]


def test_topk_positions_breaks_ties_by_position():
    assert topk_positions(torch.tensor([1.0, 3.0, 3.0, 2.0, 3.0]), 2).tolist() == [1, 2]
    assert topk_positions(torch.tensor([0.5, 0.1, 0.9]), 1).tolist() == [2]


def test_dihcl_strategy_warm_start_then_hardest_by_dynamic_hardness():
    losses = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    ctx = _ctx(losses, batch_size=2, arch_lr=0.5)
    cfg = DIHCLConfig(warm_epochs=1, discount=1.0, k_decay=0.5, k_min_fraction=0.2, hardness="loss")
    strategy = DIHCL(cfg)
    strategy.setup(ctx)
    strategy.on_epoch_start(0, ctx)  # warm start: everything, r = l0 / eta
    assert strategy.selected.numel() == 10 and strategy.info["phase"] == "warm"
    assert strategy.r.tolist() == pytest.approx([x / 0.5 for x in losses])
    # an arch step sees examples 0 and 1 with large losses: their hardness jumps
    strategy.last_seen = (torch.tensor([0, 1]), torch.tensor([5.0, 4.0]), torch.tensor([0, 0]))
    strategy.after_arch_step(ctx, ArchStepResult(loss=torch.tensor(4.5)))
    assert strategy.r[:2].tolist() == pytest.approx([10.0, 8.0])
    strategy.on_epoch_start(1, ctx)  # k = max(ceil(10 * 0.5), 2) = 5: the largest r
    assert strategy.info["phase"] == "select" and strategy.info["k"] == 5
    assert strategy.selected.tolist() == [0, 1, 7, 8, 9]
    stats = strategy.epoch_stats()
    assert stats["selected_indices"] == [100, 101, 107, 108, 109]
    assert stats["selected_mean_loss"] == pytest.approx((0.1 + 0.2 + 0.8 + 0.9 + 1.0) / 5)
    # state round trip
    clone = DIHCL(cfg)
    clone.setup(ctx)
    clone.load_state_dict(strategy.state_dict())
    assert torch.equal(clone.r, strategy.r) and clone.arch_epoch == strategy.arch_epoch


def test_dihcl_sampling_selection_draws_k_distinct():
    ctx = _ctx([float(i) for i in range(20)], batch_size=2)
    strategy = DIHCL(DIHCLConfig(warm_epochs=0, k_decay=0.5, k_min_fraction=0.1, selection="sample"))
    strategy.setup(ctx)
    strategy.on_epoch_start(0, ctx)
    sel = strategy.selected
    assert sel.numel() == 10 and sel.unique().numel() == 10


# ----------------------------------------------------------------------------------------- seam


def test_plain_objective_uses_model_fn_and_all_examples():
    ctx = _ctx([0.0] * 6, labels=[0, 1, 2, 0, 1, 2], batch_size=4)
    strategy = Plain(PlainConfig())
    strategy.setup(ctx)
    strategy.on_epoch_start(0, ctx)
    assert strategy.selected.tolist() == list(range(6))
    seen_inputs = []

    def model_fn(x):
        seen_inputs.append(x)
        return torch.zeros(x.shape[0], 3)  # uniform prediction: CE = log 3

    loss = strategy.objective(ctx)(model_fn)
    assert loss.item() == pytest.approx(torch.log(torch.tensor(3.0)).item())
    assert seen_inputs[0].shape == (4, 3, 4, 4)
    pos, losses, _ = strategy.last_seen
    assert pos.unique().numel() == 4 and losses.shape == (4,)
    strategy.after_arch_step(ctx, ArchStepResult(loss=loss.detach()))
    stats = strategy.epoch_stats()
    assert stats["selected_count"] == 6 and stats["selected_indices"] is None
    assert stats["seen_mean_loss"] == pytest.approx(loss.item())


def test_index_stream_batches_are_distinct_and_cover_each_pass():
    stream = IndexStream(torch.arange(10, 20), 5, torch.Generator().manual_seed(1))
    a, _ = stream.next()
    b, _ = stream.next()
    assert sorted(a.tolist() + b.tolist()) == list(range(10, 20))
    stream = IndexStream(torch.arange(7), 3, torch.Generator().manual_seed(1))
    for _ in range(10):
        batch, _ = stream.next()
        assert batch.numel() == 3 and batch.unique().numel() == 3
