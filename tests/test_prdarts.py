"""PR-DARTS: hard-concrete gates, top-2 execution, straight-through, regulariser, tau schedule, genotype."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from searchers.prdarts import (
    CHAIN_EDGES,
    GatedMixedOp,
    PRDarts,
    PRDartsConfig,
    activation_probability,
    hard_concrete,
    logistic_noise,
    pr_genotype,
    prdarts_regulariser,
    regulariser_terms,
    select_top_k,
    straight_through,
    tau_at,
)
from tests.searchutil import mini_search
from wcbench.space import PRIMITIVES, SPACES, edge_index


def test_gates_lie_in_0_1_with_exact_zeros_and_ones() -> None:
    torch.manual_seed(0)
    alpha = torch.randn(14, 8) * 3
    g = hard_concrete(alpha, tau=1.0, noise=logistic_noise(alpha.shape, alpha))
    assert g.min() >= 0 and g.max() <= 1
    assert (g == 0).any() and (g == 1).any()
    # the formula, without noise: clamp(sigmoid(alpha / tau) * 1.2 - 0.1, 0, 1)
    a = torch.tensor([-10.0, 0.0, 0.5, 10.0])
    assert torch.allclose(hard_concrete(a, 0.5), (torch.sigmoid(a / 0.5) * 1.2 - 0.1).clamp(0, 1))
    assert hard_concrete(a, 0.5)[0] == 0 and hard_concrete(a, 0.5)[-1] == 1


def test_straight_through_forward_is_the_mask_and_gradient_reaches_alpha() -> None:
    alpha = torch.tensor([[0.2, -0.3, 0.1]], requires_grad=True)
    probs = hard_concrete(alpha, tau=1.0)  # interior values, not clamped
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    w = straight_through(mask, probs)
    assert torch.equal(w.detach(), mask)
    (w * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    expected = (
        torch.sigmoid(alpha.detach()) * (1 - torch.sigmoid(alpha.detach())) * 1.2 * torch.tensor([1.0, 2, 3])
    )
    assert torch.allclose(alpha.grad, expected)


def test_exactly_k_ops_per_edge_are_selected_and_dropout_only_breaks_ties() -> None:
    torch.manual_seed(0)
    probs = torch.rand(14, 8)
    m = select_top_k(probs, 2)
    assert m.sum(-1).tolist() == [2.0] * 14
    assert torch.equal(m, torch.zeros_like(probs).scatter_(-1, probs.topk(2, -1).indices, 1.0))
    md = select_top_k(probs, 2, drop=0.4)
    assert md.sum(-1).tolist() == [2.0] * 14
    assert select_top_k(torch.rand(14, 2), 2).sum().item() == 28  # two-op spaces: both run
    # all-equal gates (e.g. all clamped at 1): a random pair, not always the first two
    picks = {tuple(select_top_k(torch.ones(1, 8), 2)[0].nonzero().flatten().tolist()) for _ in range(30)}
    assert len(picks) > 1


def test_gated_mixed_op_runs_only_the_active_ops() -> None:
    torch.manual_seed(0)
    op = GatedMixedOp(4, 1, PRIMITIVES)
    calls: list[int] = []
    for pos, m in enumerate(op._ops):
        m.register_forward_hook(lambda mod, inp, out, pos=pos: calls.append(pos))
    x = torch.randn(2, 4, 6, 6)
    w = torch.zeros(8)
    w[4], w[6] = 1.0, 1.0
    op.active = [4, 6]
    y = op(x, w)
    assert sorted(op.op_index[p] for p in calls) == [4, 6]
    ref = op._ops[op.position[4]](x) + op._ops[op.position[6]](x)
    assert torch.allclose(y, ref)
    calls.clear()
    op.active = [0, 3]  # `none` selected: not computed
    op(x, w)
    assert [op.op_index[p] for p in calls] == [3]


def test_activation_probability_formula() -> None:
    alpha = torch.tensor([-1.0, 0.0, 2.0])
    for tau in (1.0, 0.1):
        expected = 1 / (1 + torch.exp(-(alpha - tau * math.log(0.1 / 1.1))))
        assert torch.allclose(activation_probability(alpha, tau), expected)
    # it is P(gate > 0) of the hard-concrete gate: check by sampling
    torch.manual_seed(0)
    a = torch.full((200000,), 0.3)
    g = hard_concrete(a, 0.7, noise=logistic_noise(a.shape, a))
    assert abs((g > 0).float().mean().item() - activation_probability(torch.tensor(0.3), 0.7).item()) < 0.005


def _ops(space: str = "darts"):
    return SPACES[space].normal


def test_regulariser_groups_hinge_at_threshold() -> None:
    ops = _ops()
    skip, sep, pool = (
        PRIMITIVES.index("skip_connect"),
        PRIMITIVES.index("sep_conv_3x3"),
        PRIMITIVES.index("max_pool_3x3"),
    )
    act = torch.zeros(14, 8)
    mask = torch.zeros(14, 8)
    # normal: skip executed on two edges with activation 0.9 and 0.5 -> mean 0.7;
    # pools on one edge with 0.3; convs on two non-chain edges with 0.1 and 0.3 -> 0.2
    for e, v in ((0, 0.9), (2, 0.5)):
        act[e, skip], mask[e, skip] = v, 1
    act[3, pool], mask[3, pool] = 0.3, 1
    for e, v in ((5, 0.1), (6, 0.3)):
        act[e, sep], mask[e, sep] = v, 1
    act[7, sep] = 0.99  # not executed: ignored
    zero = torch.zeros(14, 8)
    t = regulariser_terms(act, mask, zero, zero, ops, ops)
    assert t["skip"].item() == pytest.approx(0.5 * 0.7)
    assert t["pool"].item() == pytest.approx(0.5 * 0.3)
    assert t["nonskip"].item() == pytest.approx(0.5 * 0.2)
    assert t["path"].item() == 0.0  # no chain edge ran a convolution
    r = prdarts_regulariser(act, mask, zero, zero, ops, ops, lambdas=(1.0, 10.0, 100.0))
    # skip 0.35 -> 0.15 after the hinge; pool 0.15 and nonskip 0.1 stay under 0.2 -> 0
    assert r.item() == pytest.approx(0.15)
    # both cells alike: every group doubles; pool 0.3 -> 0.1, nonskip 0.2 -> 0 (not above 0.2)
    r2 = prdarts_regulariser(act, mask, act, mask, ops, ops, lambdas=(1.0, 10.0, 100.0))
    assert r2.item() == pytest.approx((0.7 - 0.2) + 10 * (0.3 - 0.2))


def test_regulariser_path_is_product_over_chain_edges_and_has_gradient() -> None:
    ops = _ops()
    sep, dil = PRIMITIVES.index("sep_conv_3x3"), PRIMITIVES.index("dil_conv_5x5")
    assert (
        CHAIN_EDGES
        == (edge_index(0, 1), edge_index(1, 2), edge_index(2, 3), edge_index(3, 4))
        == (1, 4, 8, 13)
    )
    alpha = torch.zeros(14, 8, requires_grad=True)
    act = torch.zeros(14, 8) + alpha  # differentiable stand-in
    rows, cols = torch.tensor([1, 1, 4, 13]), torch.tensor([sep, dil, sep, sep])
    act = act + torch.zeros(14, 8).index_put((rows, cols), torch.tensor([0.8, 0.4, 0.5, 0.9]))
    mask = torch.zeros(14, 8)
    mask[1, sep] = mask[1, dil] = mask[4, sep] = mask[13, sep] = 1  # edge 8 runs no conv: skipped
    zero = torch.zeros(14, 8)
    t = regulariser_terms(act, mask, zero, zero, ops, ops)
    assert t["path"].item() == pytest.approx(0.5 * (0.6 * 0.5 * 0.9))
    r = prdarts_regulariser(act, mask, zero, zero, ops, ops, lambdas=(0.0, 0.0, 1.0))
    assert r.item() == pytest.approx(-0.5 * 0.27)
    r.backward()
    assert alpha.grad[4, sep].item() == pytest.approx(-0.5 * 0.6 * 0.9)


def test_regulariser_works_in_robustdarts_spaces() -> None:
    for name in ("s1", "s2", "s3", "s4"):
        ops = SPACES[name].normal
        n = len(ops[0])
        act = torch.rand(14, n, requires_grad=True)
        mask = select_top_k(torch.rand(14, n), 2)
        r = prdarts_regulariser(act, mask, act, mask, ops, SPACES[name].reduce)
        assert torch.isfinite(r)


def test_tau_is_annealed_linearly() -> None:
    assert tau_at(0, 200, 1.0, 0.1) == 1.0
    assert tau_at(199, 200, 1.0, 0.1) == pytest.approx(0.1)
    assert tau_at(100, 201, 10.0, 0.1) == pytest.approx(5.05)
    steps = [tau_at(e, 5, 1.0, 0.1) for e in range(5)]
    assert all(a - b == pytest.approx(0.225) for a, b in zip(steps, steps[1:]))


def test_genotype_keeps_top_two_pairs_per_node_by_activation() -> None:
    space = SPACES["darts"]
    alpha = torch.full((14, 8), -5.0)
    alpha[:, 0] = 10.0  # `none` never kept
    sep, skip, dil = (PRIMITIVES.index(o) for o in ("sep_conv_3x3", "skip_connect", "dil_conv_3x3"))
    alpha[edge_index(0, 0), sep] = 2.0
    alpha[edge_index(0, 0), skip] = 1.5  # same input twice is allowed
    alpha[edge_index(0, 1), dil] = 1.0
    act = activation_probability(alpha, 0.1)
    g = pr_genotype(act, act, space)
    assert g.normal[:2] == (("sep_conv_3x3", 0), ("skip_connect", 0))
    g3 = pr_genotype(torch.rand(14, 3), torch.rand(14, 3), SPACES["s3"])
    assert all(op != "none" for op, _ in g3.normal + g3.reduce)


# --------------------------------------------------------------------------- the algorithm


def _algo(space: str = "darts", **kw) -> PRDarts:
    base = dict(init_channels=4, layers=3, epochs=3, batch_size=4)
    base.update(kw)
    return PRDarts(PRDartsConfig(**base), SPACES[space], 10, generator=torch.Generator().manual_seed(0))


def test_defaults_follow_the_official_code() -> None:
    c = PRDartsConfig()
    assert (c.epochs, c.batch_size, c.lr, c.lr_min, c.weight_decay, c.nesterov) == (
        200,
        250,
        0.025,
        0.001,
        5e-4,
        True,
    )
    assert (c.arch_lr, c.arch_weight_decay, c.tau_max, c.tau_min) == (3e-4, 1e-3, 1.0, 0.1)
    assert (c.gate_a, c.gate_b, c.ops_per_edge, c.reg_lambdas, c.reg_threshold) == (
        -0.1, 1.1, 2, (0.01, 0.005, 0.005), 0.2,
    )  # fmt: skip


def test_every_forward_runs_exactly_two_ops_per_edge() -> None:
    torch.manual_seed(0)
    algo = _algo()
    calls: dict[int, int] = {}
    for m in algo.supernet.modules():
        if isinstance(m, GatedMixedOp):
            for op in m._ops:
                op.register_forward_hook(
                    lambda mod, i, o, key=id(m): calls.__setitem__(key, calls.get(key, 0) + 1)
                )
    for mode in (True, False):
        algo.train(mode)
        calls.clear()
        algo(torch.randn(2, 3, 8, 8))
        mixed = [m for m in algo.supernet.modules() if isinstance(m, GatedMixedOp)]
        assert len(mixed) == 3 * 14
        for m in mixed:  # 2 active ops; `none` among them is not computed
            assert len(m.active) == 2
            assert calls.get(id(m), 0) == sum(1 for i in m.active if PRIMITIVES[i] != "none")


def test_eval_mode_is_deterministic() -> None:
    algo = _algo()
    algo.eval()
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(algo(x), algo(x))


def test_tau_follows_the_epoch() -> None:
    algo = _algo(epochs=5, tau_max=10.0, tau_min=0.1)
    for epoch in range(5):
        assert algo.on_epoch_start(epoch) is False
        assert algo.tau == pytest.approx(tau_at(epoch, 5, 10.0, 0.1))


def test_arch_step_adds_the_regulariser_to_the_strategy_objective() -> None:
    algo = _algo(reg_lambdas=(1.0, 1.0, 1.0), reg_threshold=0.0)
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))

    def objective(model_fn):
        return F.cross_entropy(model_fn(x), y)

    arch = algo.arch_parameters()
    torch.manual_seed(5)
    loss = objective(algo)
    reg = algo.arch_regularizer()
    assert reg is not None and reg.requires_grad
    expected = torch.autograd.grad(loss + reg, arch, retain_graph=True)
    plain = torch.autograd.grad(loss, arch)
    assert not torch.allclose(expected[0], plain[0])  # the regulariser matters
    before = [p.detach().clone() for p in arch]
    opt = torch.optim.SGD(arch, lr=1.0)
    torch.manual_seed(5)
    algo.arch_step(None, objective, SimpleNamespace(arch_optimizer=opt, extra_arch_step_params=[]))
    for b, p, g in zip(before, arch, expected):
        assert torch.allclose(b - p.detach(), g, atol=1e-6)


@pytest.mark.parametrize("space", ["darts", "s3"])
def test_mini_search_gives_a_valid_genotype(space: str) -> None:
    torch.manual_seed(0)
    algo = _algo(space)
    g = mini_search(algo)
    SPACES[space].check_genotype(g)
    assert algo.tau == pytest.approx(0.1)


# --------------------------------------------------------------------------- through the framework's loop


@pytest.mark.parametrize("searcher,space", [("prdarts", "darts"), ("prdarts", "s4"), ("spcl-prdarts", "s1")])
def test_search_through_the_loop(tmp_path, searcher, space, small_digits) -> None:
    import json

    from searchers.loop import run_search

    tiny = dict(epochs=2, batch_size=8, init_channels=4, layers=3, max_steps_per_epoch=2)
    tiny.update(max_examples=48, eval_batch_size=48)
    out = tmp_path / "run"
    g = run_search(searcher, preset="smoke", seed=0, space=space, out_dir=out, overrides=tiny, progress=False)
    SPACES[space].check_genotype(g)
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["arch"]["tau"] for h in history] == pytest.approx([1.0, 0.1])
    assert all(h["arch_steps"] == 2 for h in history)


def test_paper_preset_resolves() -> None:
    from searchers.spec import resolve_search

    c = resolve_search("prdarts", "cifar100", "paper").algorithm_config
    assert (c.epochs, c.batch_size, c.layers, c.tau_max, c.tau_min, c.reg_lambdas) == (
        200, 250, 6, 1.0, 0.1, (0.01, 0.005, 0.005),
    )  # fmt: skip
