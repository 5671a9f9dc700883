"""P-DARTS: stages (depth, op lists, fresh supernets), skip-connect dropout, the 2-skip limit."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from searchers.pdarts import (
    PDarts,
    PDartsConfig,
    SkipDropout,
    SkipDropoutMixedOp,
    limit_skip_genotype,
    shrink_edge,
    shrink_ops,
    skip_dropout_rate,
)
from wcbench.errors import ConfigError
from wcbench.space import PRIMITIVES, SPACES, Identity, edge_index


def _tiny(**kw) -> PDartsConfig:
    base = dict(init_channels=2, epochs=2, warmup_epochs=1, batch_size=4, layers=3, add_layers=(0, 1, 2))
    base.update(kw)
    return PDartsConfig(**base)


def _ops_per_edge(algo: PDarts) -> set[int]:
    return {len(p) for p in algo.ops_normal + algo.ops_reduce}


def test_defaults_are_the_official_settings() -> None:
    c = PDartsConfig()
    assert (c.layers, c.add_layers, c.keep_ops, c.epochs, c.warmup_epochs) == (
        5,
        (0, 6, 12),
        (5, 3, 1),
        25,
        10,
    )
    assert (c.batch_size, c.arch_lr, c.arch_betas, c.arch_weight_decay) == (96, 6e-4, (0.5, 0.999), 1e-3)
    assert c.skip_dropout == (0.1, 0.4, 0.7) and c.max_skip_connect == 2
    with pytest.raises(ValueError, match="one entry per stage"):
        PDartsConfig(add_layers=(0, 6))


def test_stages_grow_depth_shrink_ops_and_reinitialise() -> None:
    torch.manual_seed(0)
    algo = PDarts(
        _tiny(layers=5, add_layers=(0, 6, 12)),
        SPACES["darts"],
        10,
        generator=torch.Generator().manual_seed(1),
    )
    assert algo.total_epochs() == 6
    seen = []
    for epoch in range(6):
        old_net, old_alpha = algo.supernet, algo.alphas_normal
        rebuilt = algo.on_epoch_start(epoch)
        assert rebuilt == (epoch in (2, 4))
        if rebuilt:  # a fresh network and fresh alphas (1e-3 * randn), not the old ones
            assert algo.supernet is not old_net and algo.alphas_normal is not old_alpha
            assert algo.alphas_normal.abs().max() < 0.01
            old_ids = {id(q) for q in old_net.parameters()}
            assert not any(id(p) in old_ids for p in algo.weight_parameters())
        seen.append(
            (algo.stage, len(algo.supernet.cells), _ops_per_edge(algo), tuple(algo.alphas_normal.shape))
        )
        assert algo.arch_frozen(epoch) == (epoch % 2 == 0)
    assert seen[0] == (0, 5, {8}, (14, 8))
    assert seen[2] == (1, 11, {5}, (14, 5))
    assert seen[4] == (2, 17, {3}, (14, 3))
    assert algo(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    assert set(algo.arch_parameters()) == {algo.alphas_normal, algo.alphas_reduce}


def test_transition_drops_the_lowest_softmax_ops_per_edge() -> None:
    algo = PDarts(_tiny(), SPACES["darts"], 10)
    with torch.no_grad():
        algo.alphas_normal.copy_(torch.arange(8.0).repeat(14, 1))  # op i has logit i
        algo.alphas_normal[3] = torch.tensor([9.0, 0, 1, 2, 3, 4, 5, 6])  # `none` strongest on edge 3
    algo.on_epoch_start(0)
    algo.on_epoch_start(2)
    assert algo.ops_normal[0] == PRIMITIVES[3:]  # the 3 lowest (none, max_pool, avg_pool) dropped
    assert algo.ops_normal[3] == ("none", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


def test_shrink_edge_rules() -> None:
    ops = ("none", "skip_connect", "sep_conv_3x3")
    assert shrink_edge(ops, [0.5, 0.2, 0.3], 2, drop_none_first=False) == ("none", "sep_conv_3x3")
    # the last transition drops `none` first (official get_min_k_no_zero)
    assert shrink_edge(ops, [0.5, 0.2, 0.3], 1, drop_none_first=True) == ("sep_conv_3x3",)
    assert shrink_edge(ops, [0.5, 0.2, 0.3], 2, drop_none_first=True) == ("skip_connect", "sep_conv_3x3")
    # RobustDARTS spaces: keep min(k, ops on the edge)
    assert shrink_edge(("skip_connect", "sep_conv_3x3"), [0.9, 0.1], 5, False) == (
        "skip_connect",
        "sep_conv_3x3",
    )
    assert shrink_ops(SPACES["s3"].normal, torch.rand(14, 3), 3, False) == SPACES["s3"].normal


def test_robustdarts_spaces_keep_their_ops_through_the_stages() -> None:
    for name in ("s1", "s3"):
        algo = PDarts(_tiny(), SPACES[name], 10)
        for epoch in range(6):
            algo.on_epoch_start(epoch)
        assert algo.ops_normal == SPACES[name].normal and len(algo.supernet.cells) == 5
        SPACES[name].check_genotype(algo.genotype())


def test_skip_dropout_rate_per_stage_and_its_decay() -> None:
    # warm-up (weights only): linear decay; afterwards exp(-(epoch - warmup) * 0.2) (official)
    assert skip_dropout_rate(0.4, 0, 25, 10) == pytest.approx(0.4 * 24 / 25)
    assert skip_dropout_rate(0.4, 9, 25, 10) == pytest.approx(0.4 * 15 / 25)
    assert skip_dropout_rate(0.4, 10, 25, 10) == pytest.approx(0.4)
    assert skip_dropout_rate(0.7, 24, 25, 10) == pytest.approx(0.7 * math.exp(-14 * 0.2))
    algo = PDarts(_tiny(epochs=4, warmup_epochs=2, skip_dropout=(0.1, 0.4, 0.7)), SPACES["darts"], 10)
    rates = []
    for epoch in range(12):
        algo.on_epoch_start(epoch)
        ps = {m.p for m in algo.supernet.modules() if isinstance(m, SkipDropout)}
        assert ps == {algo.skip_p}
        rates.append(algo.skip_p)
    expected = [skip_dropout_rate(r, e, 4, 2) for r in (0.1, 0.4, 0.7) for e in range(4)]
    assert rates == pytest.approx(expected)


def test_dropout_only_follows_the_identity_skip() -> None:
    normal = SkipDropoutMixedOp(4, 1, PRIMITIVES)
    reduce = SkipDropoutMixedOp(4, 2, PRIMITIVES)
    skip = normal._ops[normal.op_index.index(PRIMITIVES.index("skip_connect"))]
    assert isinstance(skip[0], Identity) and isinstance(skip[1], SkipDropout)
    assert not any(isinstance(m, SkipDropout) for m in reduce.modules())  # FactorizedReduce: none
    skip[1].p = 0.5
    x = torch.ones(1000, 4, 2, 2)
    normal.train()
    y = skip(x)
    assert 0.4 < (y == 0).float().mean().item() < 0.6
    normal.eval()
    assert torch.equal(skip(x), x)


def _skip_heavy_alphas() -> torch.Tensor:
    """Stage-3 alphas over (none, skip_connect, sep_conv_3x3): skip wins on every edge, by 0.1 .. 1.4."""
    a = torch.zeros(14, 3)
    a[:, 1] = 2.0 + 0.1 * torch.arange(14.0)
    a[:, 2] = 1.0
    return a


def test_final_normal_cell_keeps_at_most_two_skips() -> None:
    space = SPACES["s3"]
    ops = space.normal
    pn = F.softmax(_skip_heavy_alphas(), -1)
    pr = F.softmax(torch.zeros(14, 3), -1)
    unlimited = limit_skip_genotype(pn, pr, ops, ops, space, max_skip=None)
    assert [op for op, _ in unlimited.normal].count("skip_connect") == 8  # would win everywhere
    g = limit_skip_genotype(pn, pr, ops, ops, space, max_skip=2)
    assert [op for op, _ in g.normal].count("skip_connect") == 2
    # the surviving skips are the two most probable among the chosen edges: node 3's edges 13 and 12
    skips = {(k // 2, inp) for k, (op, inp) in enumerate(g.normal) if op == "skip_connect"}
    assert skips == {(3, 4), (3, 3)}
    assert g.reduce == unlimited.reduce  # reduction cell not limited


def test_skip_limit_reranks_edges_after_removing_a_skip() -> None:
    """DARTS space, 4 skips win; removing a skip drops its edge to the next op's probability."""
    space = SPACES["darts"]
    p = torch.full((14, 8), 0.01)

    def put(node: int, inp: int, op: str, value: float) -> None:
        p[edge_index(node, inp), PRIMITIVES.index(op)] = value

    put(0, 0, "skip_connect", 0.6), put(0, 0, "sep_conv_3x3", 0.3)
    put(0, 1, "skip_connect", 0.5), put(0, 1, "dil_conv_3x3", 0.4)
    put(1, 0, "skip_connect", 0.7), put(1, 0, "sep_conv_3x3", 0.2)
    put(1, 1, "skip_connect", 0.55), put(1, 1, "max_pool_3x3", 0.1)
    put(1, 2, "sep_conv_3x3", 0.5)
    for node in (2, 3):
        put(node, 0, "sep_conv_3x3", 0.6), put(node, 1, "dil_conv_3x3", 0.5)
    p[:, 0] = 0.9  # `none` is never chosen, however strong
    g0 = limit_skip_genotype(p, p, space.normal, space.normal, space, max_skip=None)
    assert [op for op, _ in g0.normal].count("skip_connect") == 4
    g = limit_skip_genotype(p, p, space.normal, space.normal, space, max_skip=2)
    # 1st removal: skip on (0, 1) p=0.5 -> that edge keeps dil_conv_3x3 (node 0 has only 2 edges);
    # 2nd removal: skip on (1, 1) p=0.55 -> that edge falls to max_pool 0.1 and loses to (1, 2) sep 0.5
    assert g.normal == (
        ("skip_connect", 0), ("dil_conv_3x3", 1),
        ("skip_connect", 0), ("sep_conv_3x3", 2),
        ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
        ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
    )  # fmt: skip
    assert g.reduce == g0.reduce
    # the algorithm applies it to its final genotype
    algo = PDarts(_tiny(), space, 10)
    with torch.no_grad():
        algo.alphas_normal.copy_(p.log())
    assert [op for op, _ in algo.genotype().normal].count("skip_connect") == 2


def test_resume_restores_the_stage_structure() -> None:
    torch.manual_seed(0)
    algo = PDarts(_tiny(), SPACES["darts"], 10, generator=torch.Generator().manual_seed(3))
    for epoch in range(5):
        algo.on_epoch_start(epoch)
    state = algo.search_state_dict()
    fresh = PDarts(_tiny(), SPACES["darts"], 10, generator=torch.Generator().manual_seed(3))
    fresh.load_search_state_dict(state)
    assert fresh.stage == 2 and fresh.ops_normal == algo.ops_normal and len(fresh.supernet.cells) == 5
    assert not fresh.on_epoch_start(5)  # same stage: nothing rebuilt
    for (n1, t1), (n2, t2) in zip(algo.state_dict().items(), fresh.state_dict().items()):
        assert n1 == n2 and torch.equal(t1, t2)
    assert fresh.genotype() == algo.genotype()


def test_resume_at_a_stage_boundary_builds_the_next_stage_from_the_saved_alphas() -> None:
    algo = PDarts(_tiny(), SPACES["darts"], 10, generator=torch.Generator().manual_seed(3))
    algo.on_epoch_start(0)
    algo.on_epoch_start(1)
    fresh = PDarts(_tiny(), SPACES["darts"], 10, generator=torch.Generator().manual_seed(4))
    fresh.load_search_state_dict(algo.search_state_dict())
    assert fresh.on_epoch_start(2) and algo.on_epoch_start(2)
    assert fresh.ops_normal == algo.ops_normal
    assert torch.equal(fresh.alphas_normal, algo.alphas_normal)  # same seeded re-initialisation


def test_lr_restarts_each_stage() -> None:
    algo = PDarts(_tiny(epochs=4, lr=0.1, lr_min=0.0), SPACES["darts"], 10)
    lrs = [algo.lr_at(e) for e in range(12)]
    assert lrs[0] == lrs[4] == lrs[8] == pytest.approx(0.1)
    assert lrs[2] == pytest.approx(0.05) and lrs[3] < lrs[2]


def test_arch_gradient_is_clipped() -> None:
    algo = PDarts(_tiny(arch_grad_clip=1.0), SPACES["darts"], 10)
    opt = torch.optim.SGD(algo.arch_parameters(), lr=1.0)
    ctx = SimpleNamespace(arch_optimizer=opt, extra_arch_step_params=[])
    before = [p.detach().clone() for p in algo.arch_parameters()]
    algo.apply_arch_grads(algo.arch_parameters(), [torch.full((14, 8), 100.0), None], ctx)
    step = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, algo.arch_parameters())])
    assert step.norm().item() == pytest.approx(1.0, rel=1e-4)


def test_uneven_op_lists_are_rejected() -> None:
    from wcbench.space import SearchSpace

    odd = SearchSpace(
        "odd", ((("skip_connect",),) + (("skip_connect", "sep_conv_3x3"),) * 13), SPACES["s2"].reduce
    )
    with pytest.raises(ConfigError, match="same number of ops"):
        PDarts(_tiny(), odd, 10)


# --------------------------------------------------------------------------- through the framework's loop


TINY = {
    "epochs": 2,  # per stage: one weights-only epoch, one with architecture steps
    "warmup_epochs": 1,
    "batch_size": 8,
    "init_channels": 4,
    "layers": 3,
    "add_layers": [0, 1, 2],
    "max_steps_per_epoch": 2,
    "max_examples": 48,
    "eval_batch_size": 48,
}


class Interrupt(Exception):
    pass


def _search(out, space="darts", callbacks=(), **over):
    from searchers.loop import run_search

    values = {**TINY, **over}
    return run_search(
        "pdarts", preset="smoke", seed=1, space=space, out_dir=out, overrides=values, progress=False,
        callbacks=callbacks, device="cpu",
    )  # fmt: skip


@pytest.mark.parametrize("space", ["darts", "s3"])
def test_search_through_the_loop(tmp_path, space, small_digits) -> None:
    import json

    g = _search(tmp_path / "run", space)
    SPACES[space].check_genotype(g)
    assert [op for op, _ in g.normal].count("skip_connect") <= 2
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [h["arch"]["stage"] for h in history] == [0, 0, 1, 1, 2, 2]
    assert [h["arch"]["layers"] for h in history] == [3, 3, 4, 4, 5, 5]
    assert [h["arch_active"] for h in history] == [False, True] * 3
    widths = [len(h["arch"]["ops_normal"][0]) for h in history]
    assert widths == ([8, 8, 5, 5, 3, 3] if space == "darts" else [3] * 6)


def test_interrupted_at_a_stage_boundary_resumes_to_the_same_result(tmp_path, small_digits) -> None:
    from wcbench.checkpoints import load_checkpoint

    def stop(epoch, record):
        if epoch == 1:  # the last epoch of stage 0: the next start builds stage 1 from the checkpoint
            raise Interrupt

    with pytest.raises(Interrupt):
        _search(tmp_path / "resumed", callbacks=[stop])
    resumed = _search(tmp_path / "resumed")
    straight = _search(tmp_path / "straight")
    assert resumed == straight
    a = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["algorithm"]
    b = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")["algorithm"]
    assert a["ops_normal"] == b["ops_normal"] and a["stage"] == b["stage"] == 2
    for key in b["module"]:
        assert torch.equal(a["module"][key], b["module"][key]), key
