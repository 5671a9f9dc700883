"""DARTS search algorithms: the unrolled step, the finite-difference vs exact hypergradient, spaces."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from searchers.base import SearchContext
from searchers.darts import Darts1st, Darts2nd, darts2nd_hypergradient, unrolled_weights
from wcbench.space import get_space


def _tiny(cls=Darts2nd, space: str = "darts", seed: int = 0, **cfg):
    torch.manual_seed(seed)
    config = cls.Config(init_channels=4, layers=3, batch_size=8, **cfg)
    return cls(config, get_space(space), 3, generator=torch.Generator().manual_seed(seed))


def _batches(seed: int, n: int = 8, size: int = 8, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(n, 3, size, size, generator=g, dtype=dtype)
    xv = torch.randn(n, 3, size, size, generator=g, dtype=dtype)
    y, yv = torch.randint(0, 3, (n,), generator=g), torch.randint(0, 3, (n,), generator=g)
    return (x, y), (xv, yv)


def _smooth(module: nn.Module) -> None:
    """ReLU -> Softplus and max- -> average pooling: the same supernet without kinks."""
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, nn.Softplus())
        elif isinstance(child, nn.MaxPool2d):
            setattr(module, name, nn.AvgPool2d(3, child.stride, 1, count_include_pad=False))
        else:
            _smooth(child)


def _momentum_optimizer(alg, train, lr):
    """An SGD optimiser with momentum buffers after one real step (as mid-search)."""
    opt = torch.optim.SGD(alg.weight_parameters(), lr=lr, momentum=0.9, weight_decay=3e-4)
    x, y = train
    opt.zero_grad()
    F.cross_entropy(alg(x), y).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    for p in alg.arch_parameters():
        p.grad = None
    return opt


def _flat(grads):
    return torch.cat([g.reshape(-1) for g in grads])


def _agreement(a, b):
    return float(F.cosine_similarity(a, b, dim=0)), float((a - b).norm() / b.norm())


@pytest.mark.parametrize("seed", [0, 1])
def test_fd_hypergradient_matches_exact_float64(seed):
    """DARTS's finite difference (R = 0.01 / ||v||) vs autograd through the unrolled step.

    On a smooth copy of the tiny supernet (Softplus for ReLU, average for max pooling) the central
    difference is accurate to O(R^2); the second-order term is a large share of the gradient here,
    so the check is not vacuous.
    """
    alg = _tiny(seed=seed).double()
    _smooth(alg)
    train, val = _batches(seed)
    eta = 0.1
    opt = _momentum_optimizer(alg, train, eta)

    def objective(model_fn):
        return F.cross_entropy(model_fn(val[0]), val[1])

    exact, _, loss_e = darts2nd_hypergradient(
        alg, train, objective, eta=eta, weight_optimizer=opt, mode="exact"
    )
    fd, _, loss_f = darts2nd_hypergradient(alg, train, objective, eta=eta, weight_optimizer=opt, mode="fd")
    cos, rel = _agreement(_flat(fd), _flat(exact))
    assert cos > 0.99 and rel < 0.05, (cos, rel)
    assert torch.allclose(loss_e, loss_f)
    first = torch.autograd.grad(objective(alg), alg.arch_parameters())
    _, rel_first = _agreement(_flat(first), _flat(exact))
    assert rel_first > 0.1  # the Hessian term matters: first order alone would fail the check


def test_fd_hypergradient_matches_exact_on_real_ops_small_step():
    """On the real (ReLU, max-pool) supernet the same formula agrees to 1e-6 with a small R."""
    alg = _tiny(seed=3, fd_r=1e-6).double()
    train, val = _batches(3)
    opt = _momentum_optimizer(alg, train, 0.05)

    def objective(model_fn):
        return F.cross_entropy(model_fn(val[0]), val[1])

    exact, _, _ = darts2nd_hypergradient(alg, train, objective, eta=0.05, weight_optimizer=opt, mode="exact")
    fd, _, _ = darts2nd_hypergradient(
        alg, train, objective, eta=0.05, weight_optimizer=opt, mode="fd", r=1e-6
    )
    cos, rel = _agreement(_flat(fd), _flat(exact))
    assert cos > 0.999999 and rel < 1e-5, (cos, rel)


def test_unrolled_weights_equal_one_sgd_step():
    """w' = w - eta (momentum buf + grad + wd w) is exactly torch's SGD step (DARTS Eq. 6)."""
    alg = _tiny(seed=4).double()
    train, _ = _batches(4)
    opt = _momentum_optimizer(alg, train, 0.05)
    w_prime = unrolled_weights(alg, train, 0.05, opt)
    twin = copy.deepcopy(alg)
    twin_opt = torch.optim.SGD(twin.weight_parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    twin_opt.load_state_dict(opt.state_dict())
    twin.train()
    x, y = train
    twin_opt.zero_grad()
    # the same forward as the unrolling (train mode: batch-norm uses the batch statistics)
    F.cross_entropy(twin(x), y).backward()
    twin_opt.step()
    for name, p in twin.named_weight_parameters().items():
        assert torch.allclose(w_prime[name], p.detach(), atol=1e-12), name


def _ctx(alg, lr=0.025):
    cfg = alg.config
    weight_opt = alg.make_weight_optimizer()
    return SearchContext(
        algorithm=alg,
        config=cfg,
        strategy_config=SimpleNamespace(),
        device=torch.device("cpu"),
        train=None,
        val=None,
        num_classes=3,
        dataset="test",
        seed=0,
        generator=torch.Generator(),
        weight_optimizer=weight_opt,
        arch_optimizer=alg.make_arch_optimizer(),
        lr=lr,
    )


@pytest.mark.parametrize("cls", [Darts1st, Darts2nd])
def test_arch_step_moves_only_architecture(cls):
    alg = _tiny(cls, seed=5)
    train, val = _batches(5, dtype=torch.float32)
    ctx = _ctx(alg)
    before = {n: p.detach().clone() for n, p in alg.named_parameters()}
    result = alg.arch_step(train, lambda f: F.cross_entropy(f(val[0]), val[1]), ctx)
    assert result.loss.ndim == 0 and torch.isfinite(result.loss)
    arch = {id(p) for p in alg.arch_parameters()}
    for name, p in alg.named_parameters():
        if id(p) in arch:
            assert not torch.equal(p.detach(), before[name]), name
            assert p.grad is not None
        else:
            assert torch.equal(p.detach(), before[name]), name
            assert p.grad is None, name  # weight gradients are never formed by the arch step


@pytest.mark.parametrize("space", ["s1", "s2", "s3", "s4"])
def test_darts2nd_in_robustdarts_spaces(space):
    alg = _tiny(Darts2nd, space=space, seed=6)
    sp = get_space(space)
    assert tuple(alg.alphas_normal.shape) == (14, sp.num_ops)
    train, val = _batches(6, dtype=torch.float32)
    ctx = _ctx(alg)
    for _ in range(2):
        alg.arch_step(train, lambda f: F.cross_entropy(f(val[0]), val[1]), ctx)
    g = alg.genotype()
    sp.check_genotype(g)
    assert g.space == space and len(g.normal) == 8 and len(g.reduce) == 8
    assert all(op != "none" for op, _ in g.normal + g.reduce)
    state = alg.arch_state()
    assert len(state["alphas_normal"]) == 14 and abs(sum(state["alphas_normal"][0]) - 1) < 1e-5


def test_zero_alpha_init_option():
    alg = _tiny(Darts1st, alpha_init="zeros")
    assert torch.count_nonzero(alg.alphas_normal) == 0 and torch.count_nonzero(alg.alphas_reduce) == 0
    alg = _tiny(Darts1st)
    assert 0 < float(alg.alphas_normal.detach().abs().max()) < 1e-2  # 1e-3 * randn (DARTS)


def _bn_state(alg) -> dict[str, torch.Tensor]:
    return {n: b.detach().clone() for n, b in alg.named_buffers()}


def _twin(alg, opt):
    """A deep copy of ``alg`` with an optimiser holding the same momentum buffers."""
    twin = copy.deepcopy(alg)
    twin_opt = torch.optim.SGD(twin.weight_parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    twin_opt.load_state_dict(opt.state_dict())
    return twin, twin_opt


def test_forward_at_unrolled_weights_runs_on_throwaway_buffers():
    """``model_at(..., throwaway_buffers=True)``: a train-mode forward leaves the module's buffers as
    they were; without it the forward updates them (what the hessian-vector product's forwards at
    w +- R v do, as in the original)."""
    from searchers.darts import model_at

    alg = _tiny(seed=9).double()
    train, _ = _batches(9)
    weights = {n: p.detach() * 1.01 for n, p in alg.named_weight_parameters().items()}
    before = _bn_state(alg)
    model_at(alg, weights, throwaway_buffers=True)(train[0])
    assert all(torch.equal(b, before[n]) for n, b in _bn_state(alg).items())
    model_at(alg, weights)(train[0])
    assert not all(torch.equal(b, before[n]) for n, b in _bn_state(alg).items())


@pytest.mark.parametrize("mode, forwards_at_w", [("fd", 3), ("exact", 1)])
def test_unrolled_forward_leaves_batchnorm_statistics_untouched(mode, forwards_at_w):
    """The forward at the unrolled weights w' runs on a throw-away copy of the buffers, as the original
    DARTS evaluates L_val(w') on a copy of the model (``_construct_model_from_theta``): an architecture
    step counts only its forwards on the training batch (the unrolling, and w +- R v in fd mode, 3 per
    step as in the original's ``architect.py``; before the fix 4). In exact mode, where no forward
    depends on the validation batch, a different validation batch leaves the very same statistics."""
    alg = _tiny(seed=7, hypergrad=mode).double()
    train, val = _batches(7)
    other_val = (val[0] * 3.0 + 1.0, val[1])
    opt = _momentum_optimizer(alg, train, 0.05)
    twin, twin_opt = _twin(alg, opt)
    before = _bn_state(alg)
    counters = [n for n in before if n.endswith("num_batches_tracked")]
    assert counters, "the tiny supernet has BatchNorm layers"
    for model, o, (xv, yv) in ((alg, opt, val), (twin, twin_opt, other_val)):
        darts2nd_hypergradient(
            model,
            train,
            lambda f, xv=xv, yv=yv: F.cross_entropy(f(xv), yv),
            eta=0.05,
            weight_optimizer=o,
            mode=mode,
        )
    after, after_twin = _bn_state(alg), _bn_state(twin)
    for n in counters:
        assert int(after[n]) - int(before[n]) == forwards_at_w, n
    if mode == "exact":
        for n, b in after.items():
            assert torch.equal(b, after_twin[n]), n


def test_throwaway_buffers_do_not_change_the_hypergradient():
    """Gradients are those of the forward on the supernet's own buffers (train-mode BN uses the batch
    statistics), in float64: the fix changes only what is left behind."""
    from searchers import darts

    alg = _tiny(seed=8).double()
    train, val = _batches(8)
    opt = _momentum_optimizer(alg, train, 0.05)
    twin, twin_opt = _twin(alg, opt)

    def objective(model_fn):
        return F.cross_entropy(model_fn(val[0]), val[1])

    new, _, loss_new = darts2nd_hypergradient(alg, train, objective, eta=0.05, weight_optimizer=opt)
    plain = darts.model_at
    try:
        darts.model_at = lambda a, w, **_: plain(a, w)  # the forward on the supernet's own buffers
        old, _, loss_old = darts2nd_hypergradient(twin, train, objective, eta=0.05, weight_optimizer=twin_opt)
    finally:
        darts.model_at = plain
    assert torch.equal(loss_new, loss_old)
    assert torch.allclose(_flat(new), _flat(old), rtol=0, atol=1e-12)
