"""Operations, search spaces, MixedOp, the search cell and the supernet."""

from __future__ import annotations

import pytest
import torch

from searchers.supernet import MixedOp, SearchCell, Supernet, derive_genotype, init_alphas
from wcbench.genotype import PUBLISHED
from wcbench.space import NUM_EDGES, OPS, PRIMITIVES, SPACES, edge_index


def test_primitives_are_the_darts_list_in_order() -> None:
    assert PRIMITIVES == (
        "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
        "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
    )  # fmt: skip


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("stride", [1, 2])
def test_every_op_keeps_channels_and_applies_the_stride(name: str, stride: int) -> None:
    op = OPS[name](8, stride, False)
    y = op(torch.randn(2, 8, 8, 8))
    assert y.shape == (2, 8, 8 // stride, 8 // stride)


def test_edges_are_numbered_node_major() -> None:
    assert [edge_index(0, 0), edge_index(1, 0), edge_index(2, 0), edge_index(3, 0), edge_index(3, 4)] == [
        0, 2, 5, 9, 13,
    ]  # fmt: skip
    assert NUM_EDGES == 14


def test_robustdarts_spaces_match_the_reference() -> None:
    s1 = SPACES["s1"]
    assert s1.normal[5] == ("max_pool_3x3", "skip_connect")
    assert s1.normal[12] == ("dil_conv_3x3", "dil_conv_5x5")
    assert s1.reduce[1] == ("max_pool_3x3", "dil_conv_3x3")
    assert s1.reduce[13] == ("skip_connect", "dil_conv_5x5")
    assert all(ops == ("skip_connect", "sep_conv_3x3") for ops in SPACES["s2"].normal)
    assert all(ops == ("none", "skip_connect", "sep_conv_3x3") for ops in SPACES["s3"].reduce)
    assert all(ops == ("noise", "sep_conv_3x3") for ops in SPACES["s4"].normal)
    assert all(len(space.normal) == len(space.reduce) == 14 for space in SPACES.values())


def test_noise_op_ignores_its_input() -> None:
    torch.manual_seed(0)
    a = OPS["noise"](4, 1, False)(torch.zeros(512, 4, 4, 4))
    torch.manual_seed(0)
    b = OPS["noise"](4, 1, False)(torch.full((512, 4, 4, 4), 7.0))
    assert torch.equal(a, b)
    assert abs(a.mean().item()) < 0.05 and abs(a.std().item() - 1.0) < 0.05


def test_mixed_op_never_builds_the_zero_op_and_sums_the_rest() -> None:
    torch.manual_seed(0)
    m = MixedOp(4, 1, PRIMITIVES)
    assert len(m._ops) == 7 and "none" not in [PRIMITIVES[i] for i in m.op_index]
    x = torch.randn(2, 4, 6, 6)
    w = torch.softmax(torch.randn(8), 0)
    expected = sum(w[i] * op(x) for i, op in zip(m.op_index, m._ops))
    assert torch.allclose(m(x, w), expected)


def test_search_cell_gives_4c_channels_and_gradients_to_the_weights() -> None:
    cell = SearchCell(6, 6, 4, reduction=True, reduction_prev=False, edge_primitives=SPACES["darts"].normal)
    w = torch.softmax(init_alphas(8).requires_grad_(), -1)
    w.retain_grad()
    out = cell(torch.randn(2, 6, 8, 8), torch.randn(2, 6, 8, 8), w)
    assert out.shape == (2, 16, 4, 4)
    out.square().mean().backward()
    assert w.grad is not None and w.grad[:, 1:].abs().sum() > 0
    assert torch.all(w.grad[:, 0] == 0)  # `none` cannot matter


def test_supernet_forward_with_edge_weights() -> None:
    net = Supernet(4, 10, 5, SPACES["s3"])
    wn = torch.softmax(init_alphas(3), -1)
    y = net(torch.randn(2, 3, 16, 16), wn, wn, torch.ones(14), torch.ones(14))
    assert y.shape == (2, 10)


def test_derive_genotype_follows_the_darts_rule() -> None:
    # Make DARTS_V2's normal cell win: its edges get weight 0.9 on their op, every other edge 0.01.
    g = PUBLISHED["DARTS_V2"]
    w = torch.full((14, 8), 0.01)
    w[:, 0] = 0.99  # `none` everywhere strongest: must be ignored
    for k, (op, inp) in enumerate(g.normal):
        w[edge_index(k // 2, inp), PRIMITIVES.index(op)] = 0.9 - 0.01 * (k % 2)
    derived = derive_genotype(w, w, SPACES["darts"])
    assert sorted(derived.normal) == sorted(g.normal)
    assert derived.normal[0] == g.normal[0]  # strongest edge first, as DARTS prints


def test_derive_genotype_in_s3_skips_none_by_name() -> None:
    w = torch.zeros(14, 3)
    w[:, 0] = 5.0  # none
    w[:, 2] = 1.0  # sep_conv_3x3
    g = derive_genotype(w, w, SPACES["s3"])
    assert {op for op, _ in g.normal} == {"sep_conv_3x3"} and g.space == "s3"
