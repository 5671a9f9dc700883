"""Evaluation networks: exact parameter counts and multiply-adds, cross-checked analytically."""

from __future__ import annotations

import pytest
import torch

from wcbench.genotype import PUBLISHED, Genotype
from wcbench.networks import NetworkCIFAR, NetworkImageNet, count_macs, count_params, drop_path

# ---------------------------------------------------------------- an independent analytic count


def _bn(c: int) -> int:
    return 2 * c


def _op(name: str, c: int, stride: int) -> tuple[int, int]:
    """(params, MACs per output pixel) of one op at c channels."""
    if name in ("max_pool_3x3", "avg_pool_3x3") or (name == "skip_connect" and stride == 1):
        return 0, 0
    if name == "skip_connect":  # FactorizedReduce(c, c)
        return 2 * c * (c // 2) + _bn(c), 2 * c * (c // 2)
    k = int(name[-1])
    one = (c * k * k + c * c + _bn(c), c * k * k + c * c)
    return (2 * one[0], 2 * one[1]) if name.startswith("sep") else one


def analytic(g: Genotype, c: int, layers: int, classes: int, imagenet: bool, size: int) -> tuple[int, int]:
    """Params (aux excluded) and MACs of NetworkCIFAR/NetworkImageNet, from DARTS model.py by hand."""
    params = macs = 0
    if imagenet:
        h0, h1 = size // 4, size // 8
        params += 3 * (c // 2) * 9 + _bn(c // 2) + (c // 2) * c * 9 + _bn(c) + c * c * 9 + _bn(c)
        macs += 3 * (c // 2) * 9 * (size // 2) ** 2 + (c // 2) * c * 9 * h0**2 + c * c * 9 * h1**2
        c_pp, c_p, c_cur, red_prev = c, c, c, True
    else:
        h0 = h1 = size
        params += 3 * 3 * c * 9 + _bn(3 * c)
        macs += 3 * 3 * c * 9 * size**2
        c_pp, c_p, c_cur, red_prev = 3 * c, 3 * c, c, False
    for i in range(layers):
        red = i in (layers // 3, 2 * layers // 3)
        if red:
            c_cur *= 2
        h_in = h1
        h_out = (h1 + 1) // 2 if red else h1
        if red_prev:  # FactorizedReduce(c_pp, c_cur): from h0 to h1
            params += 2 * c_pp * (c_cur // 2) + _bn(c_cur)
            macs += 2 * c_pp * (c_cur // 2) * h_in**2
        else:
            params += c_pp * c_cur + _bn(c_cur)
            macs += c_pp * c_cur * h_in**2
        params += c_p * c_cur + _bn(c_cur)
        macs += c_p * c_cur * h_in**2
        for op, inp in g.reduce if red else g.normal:
            p, m = _op(op, c_cur, 2 if red and inp < 2 else 1)
            params += p
            macs += m * h_out**2
        c_pp, c_p, red_prev = c_p, 4 * c_cur, red
        h0, h1 = h1, h_out
    params += c_p * classes + classes
    macs += c_p * classes
    return params, macs


CIFAR_PARAMS = {"DARTS_V2": 3_349_342, "PDARTS": 3_433_798, "PC_DARTS_cifar": 3_634_678, "PRDARTS": 3_444_814}
CIFAR_PUBLISHED_M = {"DARTS_V2": 3.3, "PDARTS": 3.4, "PC_DARTS_cifar": 3.6, "PRDARTS": 3.4}
IMAGENET_PARAMS = {"DARTS_V2": 4_718_752, "PDARTS": 4_944_352, "PC_DARTS_image": 5_342_464}
IMAGENET_PUBLISHED_M = {"DARTS_V2": 4.7, "PDARTS": 4.9, "PC_DARTS_image": 5.3}


@pytest.mark.parametrize("name", list(CIFAR_PARAMS))
def test_cifar_params_are_exact_and_match_the_published_size(name: str) -> None:
    net = NetworkCIFAR(PUBLISHED[name], 36, 10, 20, auxiliary=True)
    n = count_params(net)
    assert n == CIFAR_PARAMS[name]
    assert n == analytic(PUBLISHED[name], 36, 20, 10, imagenet=False, size=32)[0]
    assert round(n / 1e6, 1) == CIFAR_PUBLISHED_M[name]
    assert count_params(net, include_aux=True) > n


@pytest.mark.parametrize("name", list(IMAGENET_PARAMS))
def test_imagenet_params_are_exact_and_match_the_published_size(name: str) -> None:
    net = NetworkImageNet(PUBLISHED[name], 48, 1000, 14, auxiliary=True)
    n = count_params(net)
    assert n == IMAGENET_PARAMS[name]
    assert n == analytic(PUBLISHED[name], 48, 14, 1000, imagenet=True, size=224)[0]
    assert round(n / 1e6, 1) == IMAGENET_PUBLISHED_M[name]


@pytest.mark.parametrize("name", ["DARTS_V2", "PDARTS", "PC_DARTS_image"])
def test_imagenet_macs_by_flop_counter_equal_the_analytic_count(name: str) -> None:
    net = NetworkImageNet(PUBLISHED[name], 48, 1000, 14)
    macs = count_macs(net, (3, 224, 224))
    assert macs == analytic(PUBLISHED[name], 48, 14, 1000, imagenet=True, size=224)[1]
    assert 500e6 < macs < 600e6  # the mobile setting's bound


def test_darts_v2_imagenet_macs_are_flop_counters_530m_not_the_published_574m() -> None:
    macs = count_macs(NetworkImageNet(PUBLISHED["DARTS_V2"]), (3, 224, 224))
    assert round(macs / 1e6) == 530


def test_cifar_macs_equal_the_analytic_count() -> None:
    g = PUBLISHED["DARTS_V2"]
    assert count_macs(NetworkCIFAR(g), (3, 32, 32)) == analytic(g, 36, 20, 10, imagenet=False, size=32)[1]


@pytest.mark.parametrize("size", [32, 64, 96])
def test_auxiliary_head_works_at_other_input_sizes(size: int) -> None:
    net = NetworkCIFAR(PUBLISHED["DARTS_V2"], 8, 10, 5).train()
    logits, aux = net(torch.randn(2, 3, size, size))
    assert logits.shape == aux.shape == (2, 10)
    net.eval()
    assert net(torch.randn(2, 3, size, size))[1] is None


def test_imagenet_network_at_a_small_input() -> None:
    net = NetworkImageNet(PUBLISHED["PDARTS"], 8, 20, 5).train()
    logits, aux = net(torch.randn(2, 3, 64, 64))
    assert logits.shape == aux.shape == (2, 20)


def test_drop_path_drops_whole_examples_and_keeps_the_mean() -> None:
    torch.manual_seed(0)
    x = torch.ones(20000, 1, 1, 1)
    y = drop_path(x, 0.3)
    values = torch.unique(y)
    assert len(values) == 2 and values[0] == 0.0 and values[1].item() == pytest.approx(1 / 0.7)
    assert abs(y.mean().item() - 1.0) < 0.02
    assert torch.equal(drop_path(x, 0.0), x)


def test_drop_path_is_applied_only_when_training() -> None:
    net = NetworkCIFAR(PUBLISHED["DARTS_V2"], 4, 10, 3, auxiliary=False)
    net.drop_path_prob = 0.5
    x = torch.randn(4, 3, 16, 16)
    net.eval()
    assert torch.equal(net(x)[0], net(x)[0])
