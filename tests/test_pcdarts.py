"""PC-DARTS: partial channels, channel shuffle, edge normalisation, the alpha*beta genotype."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from searchers.pcdarts import (
    PartialChannelMixedOp,
    PCDarts,
    PCDartsConfig,
    channel_shuffle,
    edge_normalisation,
    node_slices,
    partial_channel_factory,
    pc_genotype,
)
from searchers.supernet import Supernet
from tests.searchutil import mini_search
from wcbench.errors import ConfigError
from wcbench.space import PRIMITIVES, SPACES, edge_index


def test_channel_shuffle_is_the_official_permutation() -> None:
    c, g = 8, 4
    x = torch.arange(c, dtype=torch.float32).view(1, c, 1, 1).expand(2, c, 3, 3)
    y = channel_shuffle(x, g)
    order = y[0, :, 0, 0].long().tolist()
    # view(b, g, c/g) -> transpose -> out channel i*g + j is input channel j*(c/g) + i
    assert order == [0, 2, 4, 6, 1, 3, 5, 7]
    assert sorted(order) == list(range(c))
    assert order == [(o % g) * (c // g) + o // g for o in range(c)]


def test_channel_shuffle_rejects_indivisible_channels() -> None:
    with pytest.raises(ConfigError):
        channel_shuffle(torch.randn(1, 6, 2, 2), 4)


@pytest.mark.parametrize("stride", [1, 2])
def test_only_c_over_k_channels_reach_the_ops(stride: int) -> None:
    torch.manual_seed(0)
    op = PartialChannelMixedOp(16, stride, PRIMITIVES, k=4)
    seen: list[tuple[int, ...]] = []
    for m in op.mixed._ops:
        m.register_forward_hook(lambda mod, inp, out: seen.append(tuple(inp[0].shape)))
    x = torch.randn(2, 16, 8, 8)
    y = op(x, torch.softmax(torch.randn(8), 0))
    assert y.shape == (2, 16, 8 // stride, 8 // stride)
    assert len(seen) == 7 and all(s == (2, 4, 8, 8) for s in seen)  # `none` not computed


def test_bypassed_channels_pass_unchanged_then_shuffled() -> None:
    torch.manual_seed(0)
    op = PartialChannelMixedOp(8, 1, ("skip_connect", "sep_conv_3x3"), k=4)
    x = torch.randn(2, 8, 5, 5)
    y = op(x, torch.tensor([0.3, 0.7]))
    unshuffled = y.view(2, 2, 4, 5, 5).transpose(1, 2).reshape(2, 8, 5, 5)  # inverse of the shuffle
    assert torch.equal(unshuffled[:, 2:], x[:, 2:])


def test_reduction_edges_max_pool_the_bypass() -> None:
    op = PartialChannelMixedOp(8, 2, ("max_pool_3x3", "skip_connect"), k=4)
    x = torch.randn(1, 8, 6, 6)
    y = op(x, torch.tensor([0.5, 0.5]))
    unshuffled = y.view(1, 2, 4, 3, 3).transpose(1, 2).reshape(1, 8, 3, 3)
    assert torch.equal(unshuffled[:, 2:], torch.nn.functional.max_pool2d(x[:, 2:], 2, 2))
    odd = op(torch.randn(1, 8, 7, 7), torch.tensor([0.5, 0.5]))  # odd sizes line up (ceil mode)
    assert odd.shape == (1, 8, 4, 4)


def test_channels_must_divide_by_k() -> None:
    with pytest.raises(ConfigError, match="divisible by K=4"):
        PartialChannelMixedOp(6, 1, PRIMITIVES, k=4)


def test_edge_normalisation_sums_to_one_per_node() -> None:
    betas = torch.randn(14)
    w = edge_normalisation(betas)
    assert w.shape == (14,)
    for s in node_slices():
        assert torch.isclose(w[s].sum(), torch.tensor(1.0))
        assert torch.allclose(w[s], torch.softmax(betas[s], 0))


def test_genotype_ranks_by_alpha_times_beta() -> None:
    space = SPACES["darts"]
    an = torch.zeros(14, 8)
    # node 0 (edges 0, 1): edge 0 prefers sep_conv_3x3 strongly, edge 1 mildly prefers dil_conv_3x3;
    # node 1 (edges 2, 3, 4): edge 2 strongest by alpha
    an[edge_index(0, 0), PRIMITIVES.index("sep_conv_3x3")] = 3.0
    an[edge_index(0, 1), PRIMITIVES.index("dil_conv_3x3")] = 1.0
    an[edge_index(1, 0), PRIMITIVES.index("sep_conv_5x5")] = 3.0
    an[edge_index(1, 1), PRIMITIVES.index("max_pool_3x3")] = 2.0
    an[edge_index(1, 2), PRIMITIVES.index("avg_pool_3x3")] = 1.0
    ar = torch.zeros(14, 8)
    bn = torch.zeros(14)
    g0 = pc_genotype(an, ar, bn, torch.zeros(14), space)
    assert g0.normal[2:4] == (("sep_conv_5x5", 0), ("max_pool_3x3", 1))
    # a strong beta on node 1's edge 2 flips the choice: it now outranks edge 1 (and edge 0)
    bn[edge_index(1, 2)] = 5.0
    g1 = pc_genotype(an, ar, bn, torch.zeros(14), space)
    assert g1.normal[2] == ("avg_pool_3x3", 2)
    assert g1 != g0


def test_supernet_with_partial_channels_runs_in_every_space() -> None:
    torch.manual_seed(0)
    for name in ("darts", "s3"):
        space = SPACES[name]
        net = Supernet(8, 10, 3, space, mixed_op=partial_channel_factory(4))
        w = torch.softmax(torch.randn(14, space.num_ops), -1)
        e = edge_normalisation(torch.randn(14))
        out = net(torch.randn(2, 3, 8, 8), w, w, e, e)
        assert out.shape == (2, 10)


# --------------------------------------------------------------------------- the algorithm


def _algo(space: str = "darts", **kw) -> PCDarts:
    base = dict(init_channels=8, layers=3, epochs=2, warmup_epochs=1, batch_size=4)
    base.update(kw)
    return PCDarts(PCDartsConfig(**base), SPACES[space], 10, generator=torch.Generator().manual_seed(0))


def test_defaults_follow_the_official_code() -> None:
    c = PCDartsConfig()
    assert (c.partial_channels, c.batch_size, c.lr, c.arch_lr, c.epochs, c.warmup_epochs) == (
        4,
        256,
        0.1,
        6e-4,
        50,
        15,
    )
    assert (c.arch_betas, c.arch_weight_decay, c.weight_decay, c.momentum) == ((0.5, 0.999), 1e-3, 3e-4, 0.9)


def test_init_channels_must_divide_by_k() -> None:
    with pytest.raises(ConfigError, match="divisible by partial_channels K=4"):
        _algo(init_channels=6)
    _algo(init_channels=6, partial_channels=2)


def test_betas_are_architecture_parameters_and_get_gradients() -> None:
    torch.manual_seed(0)
    algo = _algo()
    assert len(algo.arch_parameters()) == 4
    assert all(p.shape == (14,) for p in (algo.betas_normal, algo.betas_reduce))
    arch_ids = {id(p) for p in algo.arch_parameters()}
    assert not any(id(p) in arch_ids for p in algo.weight_parameters())
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    grads = torch.autograd.grad(F.cross_entropy(algo(x), y), algo.arch_parameters())
    assert all(g.abs().sum() > 0 for g in grads)
    state = algo.arch_state()
    assert len(state["edges_normal"]) == 14 and sum(state["edges_normal"][:2]) == pytest.approx(1.0)


def test_imagenet_lr_warmup() -> None:
    algo = _algo(epochs=50, lr=0.5, lr_min=0.0, lr_warmup_epochs=5)
    assert algo.lr_at(0) == pytest.approx(0.5 / 5)
    assert algo.lr_at(4) == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 50)) / 2)
    assert algo.lr_at(5) == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 50)) / 2)


@pytest.mark.parametrize("space", ["darts", "s2"])
def test_mini_search_gives_a_valid_genotype(space: str) -> None:
    torch.manual_seed(0)
    algo = _algo(space)
    before = algo.betas_normal.detach().clone()
    g = mini_search(algo)
    SPACES[space].check_genotype(g)
    assert not torch.equal(before, algo.betas_normal.detach())  # arch steps after the warm-up


# --------------------------------------------------------------------------- through the framework's loop


@pytest.mark.parametrize("space", ["darts", "s2"])
def test_search_through_the_cli(tmp_path, space, small_digits) -> None:
    from wcbench.cli import main
    from wcbench.genotype import Genotype

    out = tmp_path / "run"
    tiny = ["epochs=2", "warmup_epochs=1", "batch_size=8", "init_channels=8", "layers=3"]
    tiny += ["max_steps_per_epoch=2", "max_examples=48", "eval_batch_size=48"]
    args = ["search", "--searcher", "pcdarts", "--preset", "smoke", "--out", str(out), "--space", space]
    for s in tiny:
        args += ["--set", s]
    assert main([*args, "--device", "cpu", "--no-progress"]) == 0
    g = Genotype.from_json((out / "genotype.json").read_text())
    SPACES[space].check_genotype(g)


def test_presets_resolve() -> None:
    from searchers.spec import resolve_search

    paper = resolve_search("pcdarts", "cifar10", "paper").algorithm_config
    assert (paper.partial_channels, paper.batch_size, paper.lr, paper.arch_lr, paper.epochs) == (
        4,
        256,
        0.1,
        6e-4,
        50,
    )
    assert paper.warmup_epochs == 15
    # the ImageNet search variant: the [imagenet] table (--preset imagenet)
    from wcbench.config import load_preset, resolve_config

    imagenet = resolve_config(PCDartsConfig, load_preset("search", "pcdarts", "imagenet", "imagenet"))
    assert (imagenet.partial_channels, imagenet.batch_size, imagenet.lr, imagenet.arch_lr) == (
        2,
        1024,
        0.5,
        6e-3,
    )
    assert (imagenet.warmup_epochs, imagenet.lr_warmup_epochs, imagenet.lr_min) == (35, 5, 0.0)
    quick = resolve_search("pcdarts", None, "smoke").algorithm_config
    assert quick.init_channels % quick.partial_channels == 0
