"""The levels of the paper's method checked from outside the implementation (issue #11, "tests that can
fail"): the tester's upper step ascends Eq. 11's J, B's hypergradient equals brute-force autograd
through the unrolled G' and V', Algorithm 1's cost-reduced schedule counted step by step, and DeCov
(Sec. 3.3) in A's objective only.

Every reference here is written with ``torch.autograd`` alone -- none of the testers' chain-rule helpers
(``hypergradient``, ``mixed``, ``aux_virtual``, ``unrolled``) computes an expected value -- so a sign or
a factor wrong in the implementation makes these tests fail.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

import searchers.testers.augment as augment_module
import searchers.testers.gan as gan_module
from searchers.darts import Darts1st, Darts2nd
from searchers.loop import run_search, search_context
from searchers.spec import resolve_search
from searchers.strategies.ours import Ours
from searchers.testers.augment import AugmentTester
from searchers.testers.auxiliary import TiedAuxiliary
from searchers.testers.base import TesterStep as Step  # (not collected as a test class)
from searchers.testers.base import ascend
from searchers.testers.dada import AugmentPolicy, PolicySample
from searchers.testers.fqgan import ConditionalGAN
from searchers.testers.functional import frozen
from searchers.testers.gan import GanTester
from wcbench.smallcnn import SmallCNN

pytestmark = pytest.mark.timeout(120)

CLASSES, N, ETA = 5, 8, 0.1
CPU = torch.device("cpu")


# ============================================================================ references, autograd only


def call(module: nn.Module, params: dict[str, Tensor], *args: Any) -> Any:
    """``module(*args)`` with ``params`` in place of its parameters and its buffers copied (no state
    written), by ``torch.func.functional_call``."""
    buffers = {n: b.clone() for n, b in module.named_buffers()}
    return functional_call(module, {**buffers, **params}, args)


def one_sgd_step(loss: Tensor, params: dict[str, Tensor], lr: float) -> dict[str, Tensor]:
    """``p - lr * grad_p loss``, differentiable (create_graph) in whatever ``params`` depend on."""
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True, allow_unused=True)
    return {n: p if g is None else p - lr * g for (n, p), g in zip(params.items(), grads)}


def v_prime_val_loss(aux: nn.Module, x1: Tensor, y1: Tensor, val: tuple[Tensor, Tensor]) -> Tensor:
    """L(V', D_val) with V' = V - eta grad_V L(V, (x1, y1)) (Eq. 9), differentiable in x1."""
    trunk = aux.trunk if isinstance(aux, TiedAuxiliary) else None
    with frozen(aux, trunk):
        vp = dict(aux.named_parameters())
        v_prime = one_sgd_step(F.cross_entropy(call(aux, vp, x1), y1), vp, ETA)
        return F.cross_entropy(call(aux, v_prime, val[0]), val[1])


class Linear(nn.Module):
    """A fixed learner: logits = w . flattened [0, 1] image (its loss is smooth in the image)."""

    def __init__(self, w: Tensor) -> None:
        super().__init__()
        self.w = w

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1) @ self.w.t()


def gan_J(
    gan: ConditionalGAN,
    aux: nn.Module,
    learner: nn.Module,
    lam: float,
    latents: dict[str, tuple[Tensor, Tensor]],
    val: tuple[Tensor, Tensor],
) -> Tensor:
    """Eq. 11 for the GAN tester, written out: a function of B with everything else fixed::

        G' = G - eta grad_G L_dg(G, B)       (L_dg: hinge generator loss + alpha * FQ loss, Eq. 8)
        J  = L(learner, f(G'(z2))) - lam * L(V - eta grad_V L(V, f(G'(z1))), D_val)   (Eq. 9, 11)

    (``fqgan``: B = (decay, alpha) enters through L_dg only, G's input scales are 1)."""
    hyper = gan.B.values()  # the clamped B the losses use, differentiable in B
    z, y = latents["dg"]
    with frozen(gan.G, gan.D):
        gp = dict(gan.G.named_parameters())
        out = gan.D(call(gan.G, gp, z, y), y, hyper["decay"])
        g_prime = one_sgd_step(-out.logits.mean() + hyper["fq_weight"] * out.fq_loss, gp, ETA)
        (z2, y2), (z1, y1) = latents["learner"], latents["aux"]
        x2 = (call(gan.G, g_prime, z2, y2) + 1) / 2
        x1 = (call(gan.G, g_prime, z1, y1) + 1) / 2
    J = F.cross_entropy(learner(x2), y2)
    return J - lam * v_prime_val_loss(aux, x1, y1, val) if lam > 0 else J


# ============================================================================ tiny testers


def tiny_gan_tester(tied: bool = False, b_lr: float = 3e-4) -> GanTester:
    """A float64 FQ-GAN tester (width 1: 4 channels, dim_z 8) with smooth activations and filled
    dictionaries; B's Adam without weight decay, so that its step follows dJ alone."""
    torch.manual_seed(0)
    gan = ConditionalGAN("fqgan", CLASSES, width=1, dim_z=8, fq_layers=(1, 2), dict_size=8, act="silu")
    gan = gan.double()
    aux = TiedAuxiliary(gan.D, CLASSES, 8, act="silu") if tied else SmallCNN(CLASSES, 2, act="silu")
    t = GanTester(gan, aux.double(), b_lr=b_lr, b_weight_decay=0.0)
    g = torch.Generator().manual_seed(1)
    z, y = gan.sample_latent(N, g)
    t.train_d(torch.rand(N, 3, 32, 32, dtype=torch.float64, generator=g), y, z, y)  # fills the dictionaries
    return t


def fixed_data(seed: int, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(N, 3, 32, 32, dtype=dtype, generator=g), torch.randint(CLASSES, (N,), generator=g)


def learner_for(variant: str) -> Linear:
    """``both``/``learner``: a random linear learner; ``aux``: a zero learner (J's first term is constant,
    only the V' term moves)."""
    w = torch.randn(CLASSES, 3 * 32 * 32, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    return Linear(w * 0.02 if variant != "aux" else torch.zeros_like(w))


LAMBDAS = {"learner": 0.0, "both": 1.0, "aux": 1.0}


def descend(opt: torch.optim.Optimizer, params: Any, dj: Any) -> None:
    """The ascent of base.ascend with its sign flipped (what a sign error would do)."""
    ascend(opt, params, [-d for d in dj])


# ============================================================================ 1. the upper step ascends J


def gan_upper_step(variant: str) -> tuple[float, float]:
    """J (:func:`gan_J`) before and after one real ``GanTester.upper_step`` on a due iteration, the
    architecture step's gradient v = grad_{G'} L(learner, f(G')) put in G' as the search does."""
    t = tiny_gan_tester(b_lr=1e-4)
    learner, lam = learner_for(variant), LAMBDAS[variant]
    val = fixed_data(3)
    g = torch.Generator().manual_seed(4)
    replay = torch.Generator().set_state(g.get_state())  # the same draws, in the tester's order
    latents = {k: t.gan.sample_latent(N, replay) for k in ("learner", "dg", "aux")}
    step = Step(generator=g, device=CPU, batch_size=N, eta=ETA, due=True, train_batch=lambda: val)

    batch = t.validation_batch(step)
    x2, y2, _ = batch.make()
    for a, b in zip(batch.state["gen_batch"], latents["dg"]):
        torch.testing.assert_close(a, b)  # the reference below sees the tester's latent codes
    v = torch.autograd.grad(F.cross_entropy(learner(x2), y2), batch.params)
    for p, gp in zip(batch.params, v):
        p.grad = gp
    before_state = {k: s.clone() for k, s in t.gan.G.state_dict().items()}
    before_state.update({f"D.{k}": s.clone() for k, s in t.gan.D.state_dict().items()})
    before_state.update({f"V.{k}": s.clone() for k, s in t.aux.state_dict().items()})
    J0 = float(gan_J(t.gan, t.aux, learner, lam, latents, val).detach())
    B0 = dict(t.gan.B.as_dict())
    t.upper_step(step, batch, val, lam=lam, mode="fd", r=1e-5)
    J1 = float(gan_J(t.gan, t.aux, learner, lam, latents, val).detach())
    # the upper step moves B alone: G, D (its dictionaries) and V are as they were
    after = {k: s for k, s in t.gan.G.state_dict().items()}
    after.update({f"D.{k}": s for k, s in t.gan.D.state_dict().items()})
    after.update({f"V.{k}": s for k, s in t.aux.state_dict().items()})
    for k, s in before_state.items():
        torch.testing.assert_close(after[k], s, rtol=0, atol=0, msg=k)
    assert t.gan.B.as_dict() != B0
    return J0, J1


@pytest.mark.parametrize("variant", ["both", "learner", "aux"])
def test_gan_upper_step_increases_J_and_a_flipped_sign_decreases_it(
    variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eq. 11: the tester maximises J over B. ``learner``: lambda = 0 (the adversarial term alone);
    ``aux``: a constant learner (the -lambda L(V', D_val) term alone); ``both``: the whole J."""
    J0, J1 = gan_upper_step(variant)
    assert J1 > J0, (J0, J1)
    monkeypatch.setattr(gan_module, "ascend", descend)
    J0d, J1d = gan_upper_step(variant)
    assert J0d == J0 and J1d < J0d, (J0d, J1d)


def policy_map(policy: AugmentPolicy, x: Tensor, sample: PolicySample) -> Callable[..., Tensor]:
    """P's tensors -> f(P, x) (the straight-through forward), for ``torch.autograd.functional.jvp``."""
    names = [n for n, _ in policy.named_parameters()]
    return lambda *ps: call(policy, dict(zip(names, ps)), x, sample)


def augment_J(
    policy: AugmentPolicy,
    P0: list[Tensor],
    aux: nn.Module,
    learner: nn.Module,
    lam: float,
    batches: dict[str, tuple[Tensor, Tensor, PolicySample]],
    val: tuple[Tensor, Tensor],
) -> Tensor:
    """Eq. 11 for the augmentation tester at the policy's current P, with f(P, x) replaced by its
    straight-through linearisation around P0: f(P0, x) + (df/dP)(P0) . (P - P0).

    The policy's forward is hard (one sub-policy, 0/1 gates, detached magnitudes; dada.py), so its
    value is piecewise constant in P and a small step changes it nowhere; its straight-through
    derivative is what the tester's hypergradient follows. The linearised f is the smooth function
    with that derivative at P0; J of it (smooth learner and V) must rise under an ascent step."""
    delta = tuple(p.detach() - p0 for p, p0 in zip(policy.parameters(), P0))
    xs = {}
    for k, (x, _, sample) in batches.items():
        _, dx = torch.autograd.functional.jvp(policy_map(policy, x, sample), tuple(P0), delta)
        with torch.no_grad():
            x0 = call(policy, dict(zip([n for n, _ in policy.named_parameters()], P0)), x, sample)
        xs[k] = x0 + dx
    J = F.cross_entropy(learner(xs["learner"]), batches["learner"][1])
    if lam > 0:
        J = J - lam * v_prime_val_loss(aux, xs["aux"], batches["aux"][1], val)
    return J


def augment_upper_step(variant: str) -> tuple[float, float]:
    """J (:func:`augment_J`) before and after one real ``AugmentTester.upper_step``."""
    torch.manual_seed(0)
    t = AugmentTester(
        AugmentPolicy().double(), SmallCNN(CLASSES, 2, act="silu").double(), b_lr=1e-4, b_weight_decay=0.0
    )
    learner, lam = learner_for(variant), LAMBDAS[variant]
    val, tr, tr1 = fixed_data(3), fixed_data(5), fixed_data(6)
    train_batches: Iterator[tuple[Tensor, Tensor]] = iter([tr, tr1])
    g = torch.Generator().manual_seed(4)
    replay = torch.Generator().set_state(g.get_state())
    batches = {
        "learner": (*tr, t.policy.draw(N, replay)),  # validation_batch: D_tr batch, then its draw
        "aux": (*tr1, t.policy.draw(N, replay)),  # upper_step: V's batch, then its draw
    }
    step = Step(
        generator=g, device=CPU, batch_size=N, eta=ETA, due=True, train_batch=lambda: next(train_batches)
    )
    P0 = [p.detach().clone() for p in t.policy.parameters()]

    batch = t.validation_batch(step)
    x, y, _ = batch.make()
    torch.testing.assert_close(
        x, call(t.policy, dict(t.policy.named_parameters()), tr[0], batches["learner"][2])
    )
    for p, gp in zip(batch.params, torch.autograd.grad(F.cross_entropy(learner(x), y), batch.params)):
        p.grad = gp
    J0 = float(augment_J(t.policy, P0, t.aux, learner, lam, batches, val).detach())
    t.upper_step(step, batch, val, lam=lam, mode="fd", r=1e-5)
    assert any(not torch.equal(p.detach(), p0) for p, p0 in zip(t.policy.parameters(), P0))
    J1 = float(augment_J(t.policy, P0, t.aux, learner, lam, batches, val).detach())
    return J0, J1


@pytest.mark.parametrize("variant", ["both", "learner", "aux"])
def test_augment_upper_step_increases_J_and_a_flipped_sign_decreases_it(
    variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eq. 6, 11: the tester maximises J over the policy P (see :func:`augment_J` for the J used)."""
    J0, J1 = augment_upper_step(variant)
    assert J1 > J0, (J0, J1)
    monkeypatch.setattr(augment_module, "ascend", descend)
    J0d, J1d = augment_upper_step(variant)
    assert J0d == J0 and J1d < J0d, (J0d, J1d)


# ============================================================================ 2. B's hypergradient


@pytest.mark.parametrize("tied", [False, True], ids=["separate-V", "tied-V"])
@pytest.mark.parametrize("lam", [1.0, 0.0])
def test_gan_hypergradient_equals_brute_force_autograd(tied: bool, lam: float) -> None:
    """dJ/dB (Eq. 11, 15-16) of ``GanTester.hypergradient`` equals ``torch.autograd.grad`` of
    :func:`gan_J` -- J built through G'(B) and V'(G'(B)) with ``create_graph`` -- in float64:
    ``mode="exact"`` to 1e-8 relative, the paper's finite differences (``mode="fd"``) to 1e-4.

    FQ-GAN (the paper's generator) only: for ``sngan``/``biggan`` B = (sigma, tau) also scales G's inputs
    when f(G') is generated, a direct path of J to B that ``GanTester.hypergradient`` leaves out."""
    t = tiny_gan_tester(tied)
    learner, val = learner_for("both"), fixed_data(3)
    g = torch.Generator().manual_seed(4)
    latents = {k: t.gan.sample_latent(N, g) for k in ("learner", "dg", "aux")}
    B = list(t.gan.B.parameters())
    expected = list(torch.autograd.grad(gan_J(t.gan, t.aux, learner, lam, latents, val), B))
    assert all(float(e.abs()) > 0 for e in expected)

    g_prime = t.unrolled(ETA, *latents["dg"])  # G' of the search; v: the learner's gradient in G'
    x2 = t.generate_at(g_prime, *latents["learner"])
    v = torch.autograd.grad(F.cross_entropy(learner(x2), latents["learner"][1]), list(g_prime.values()))
    kw: dict[str, Any] = dict(
        eta_g=ETA, lam=lam, eta_v=ETA, gen_batch=latents["dg"], aux_batch=latents["aux"], val_batch=val
    )
    exact, _ = t.hypergradient(g_prime, v, mode="exact", **kw)
    fd, _ = t.hypergradient(g_prime, v, mode="fd", r=1e-5, **kw)
    scale = torch.stack([e.abs() for e in expected]).max()
    for e, a, b in zip(expected, exact, fd):
        torch.testing.assert_close(a, e, rtol=1e-8, atol=1e-8 * float(scale))
        torch.testing.assert_close(b, e, rtol=1e-4, atol=1e-4 * float(scale))


def test_augment_hypergradient_equals_brute_force_autograd() -> None:
    """dJ/dP (Eq. 6, 11) of ``AugmentTester.hypergradient`` equals ``torch.autograd.grad`` of J built
    through the policy's (straight-through) f(P) and V'(f(P)) with ``create_graph``, in float64."""
    torch.manual_seed(0)
    t = AugmentTester(AugmentPolicy().double(), SmallCNN(CLASSES, 2, act="silu").double())
    learner, val, tr, tr1 = learner_for("both"), fixed_data(3), fixed_data(5), fixed_data(6)
    g = torch.Generator().manual_seed(4)
    s, s1 = t.policy.draw(N, g), t.policy.draw(N, g)
    P = dict(t.policy.named_parameters())
    adv = F.cross_entropy(learner(call(t.policy, P, tr[0], s)), tr[1])
    J = adv - 1.0 * v_prime_val_loss(t.aux, call(t.policy, P, tr1[0], s1), tr1[1], val)
    direct = torch.autograd.grad(adv, list(P.values()), retain_graph=True)  # the arch step's, left in P
    expected = torch.autograd.grad(J, list(P.values()))
    kw: dict[str, Any] = dict(lam=1.0, eta_v=ETA, aux_batch=(*tr1, s1), val_batch=val)
    exact, _ = t.hypergradient(direct, mode="exact", **kw)
    fd, _ = t.hypergradient(direct, mode="fd", r=1e-5, **kw)
    scale = max(float(e.abs().max()) for e in expected)
    for e, a, b in zip(expected, exact, fd):
        torch.testing.assert_close(a, e, rtol=1e-8, atol=1e-8 * scale)
        torch.testing.assert_close(b, e, rtol=1e-4, atol=1e-4 * scale)
    # the V' term matters here: without it the two differ
    assert any(not torch.allclose(d, e, rtol=1e-3, atol=1e-3 * scale) for d, e in zip(direct, expected))


# ============================================================================ 3. CR's schedule, counted

# a search of 2 epochs x 9 iterations on a 3-cell (the fewest), C = 2 supernet of RobustDARTS' space S2
# (2 ops per edge), a width-1 GAN tester from scratch and no diagnostics: only Algorithm 1's steps cost
# anything
COUNTED: dict[str, Any] = {
    "strategy.tester": "gan",
    "strategy.gan_width": 1,
    "strategy.dim_z": 8,
    "strategy.fq_layers": [2],
    "strategy.dict_size_log2": 3,
    "strategy.aux_arch": "small",
    "strategy.aux_width": 2,
    "strategy.aux_hidden": 4,
    "strategy.tester_init": "scratch",
    "strategy.reference_iters": 0,
    "strategy.diag_samples": 0,
    "strategy.grid": 0,
    "strategy.probe_iters": 0,
    "strategy.hyper_every": 4,
    "strategy.gen_batch": 4,
    "epochs": 2,
    "max_steps_per_epoch": 9,
    "batch_size": 4,
    "init_channels": 2,
    "layers": 3,
    "warmup_epochs": 0,
    "max_examples": 40,
    "eval_batch_size": 40,
}
ITERATIONS = 18


def record_calls(
    monkeypatch: pytest.MonkeyPatch, events: list[str], cls: type, name: str, label: str
) -> None:
    """Append ``label`` to ``events`` at every call of ``cls.name`` (then call it)."""
    original = getattr(cls, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        events.append(label)
        return original(*args, **kwargs)

    monkeypatch.setattr(cls, name, wrapper)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("algorithm", "cost_reduction"),
    [("darts1st", True), ("darts2nd", True), ("darts1st", False)],
    ids=["darts1st-CR", "darts2nd-CR", "darts1st-NCR"],
)
def test_cost_reduced_schedule_counted_per_iteration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, algorithm: str, cost_reduction: bool
) -> None:
    """Sec. 3.3 / Algorithm 1 under CR (hyper_every = 4): A's step, B's hypergradient and ascent and G's
    SGD step at global iterations 0, 4, 8 | 12, 16 only (the count runs on across epochs); D's and V's
    steps at every iteration. NCR: all of them at every iteration."""
    events: list[str] = []
    algo_cls = {"darts1st": Darts1st, "darts2nd": Darts2nd}[algorithm]
    steps_at: list[int] = []
    original_arch_step = algo_cls.arch_step

    def arch_step(self: Any, batch: Any, objective: Any, ctx: Any) -> Any:
        events.append("A")
        steps_at.append(ctx.step)
        return original_arch_step(self, batch, objective, ctx)

    monkeypatch.setattr(algo_cls, "arch_step", arch_step)
    for name, label in [
        ("hypergradient", "hypergrad B"),
        ("step_upper", "ascent B"),
        ("train_g", "G"),
        ("train_d", "D"),
        ("train_aux", "V"),
    ]:
        record_calls(monkeypatch, events, GanTester, name, label)
    original_after = Ours.after_weight_step

    def after_weight_step(self: Ours, ctx: Any) -> None:
        original_after(self, ctx)
        events.append("end")  # the iteration's last call of Algorithm 1

    monkeypatch.setattr(Ours, "after_weight_step", after_weight_step)
    over = {**COUNTED, "strategy.cost_reduction": cost_reduction}
    run_search(
        f"ours-{algorithm}", "digits", "smoke", 0, "s2", tmp_path / "s", overrides=over, progress=False
    )

    iterations: list[list[str]] = [[]]
    for e in events:
        if e == "end":
            iterations.append([])
        else:
            iterations[-1].append(e)
    assert iterations.pop() == []
    assert len(iterations) == ITERATIONS
    every = 4 if cost_reduction else 1
    for i, calls in enumerate(iterations):
        due = int(i % every == 0)
        counts = {k: calls.count(k) for k in ("A", "hypergrad B", "ascent B", "G", "D", "V")}
        assert counts == {"A": due, "hypergrad B": due, "ascent B": due, "G": due, "D": 1, "V": 1}, (i, calls)
    assert steps_at == list(range(0, ITERATIONS, every))


# ============================================================================ 4. DeCov in A's objective only


class SavedBytes:
    """The peak bytes of tensors that autograd graphs hold for their backward, while active
    (``torch.autograd.graph.saved_tensors_hooks``): a graph's share is released when it is freed."""

    def __init__(self) -> None:
        self.live = self.peak = 0

    def __enter__(self) -> SavedBytes:
        meter = self

        class Held:
            def __init__(self, t: Tensor) -> None:
                self.t, self.n = t, t.numel() * t.element_size()
                meter.live += self.n
                meter.peak = max(meter.peak, meter.live)

            def __del__(self) -> None:
                meter.live -= self.n

        self._hooks = torch.autograd.graph.saved_tensors_hooks(Held, lambda held: held.t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)


def arch_step_gradients(
    tester: str,
    decov_weight: float,
    drives_tester: bool,
    *,
    algorithm_name: str = "darts1st",
    summed: bool = False,
    meter: SavedBytes | None = None,
) -> tuple[Tensor, Tensor]:
    """(A's gradient, v = the gradient left in the tester's tensors) of the first architecture step of an
    ``ours-<algorithm_name>`` search (CR on, a due iteration), everything else seeded alike. ``summed``
    hands the step the objective's terms as one sum; ``meter`` measures the step's graphs."""
    over = {
        **COUNTED,
        "strategy.tester": tester,
        "strategy.decov_weight": decov_weight,
        "strategy.decov_drives_tester": drives_tester,
    }
    spec = resolve_search(f"ours-{algorithm_name}", "digits", "smoke", 0, "s2", over)
    ctx = search_context(spec, "cpu")
    strategy = Ours(spec.strategy_config)
    strategy.setup(ctx)
    algorithm = ctx.algorithm
    ctx.weight_optimizer = algorithm.make_weight_optimizer()
    ctx.arch_optimizer = algorithm.make_arch_optimizer()
    ctx.epoch, ctx.step, ctx.lr, ctx.arch_active = 0, 0, algorithm.lr_at(0), True
    ctx.train_batch = ctx.train.batch(torch.arange(4), augment=False)
    assert strategy.wants_arch_step(ctx)
    objective = strategy.objective(ctx)
    tester_tensors = list(ctx.extra_arch_step_params)
    assert tester_tensors  # G' (GAN) or P (augmentation)
    if summed:
        objective = (lambda terms: lambda model_fn: terms(model_fn))(objective)
    with meter or contextlib.nullcontext():
        algorithm.arch_step(ctx.train_batch, objective, ctx)
    grad_a = torch.cat([a.grad.flatten() for a in algorithm.arch_parameters()])
    v = torch.cat([t.grad.flatten() for t in tester_tensors])
    return grad_a, v


def rel(a: Tensor, b: Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("tester", ["gan", "augment"])
def test_decov_regularises_A_and_leaves_the_tester_objective_alone(tester: str) -> None:
    """Sec. 3.3 (commit e6afdad): DeCov on the learner's features of the generated batch is in A's
    objective, not in the tester's J (Eq. 11). With a large weight, A's gradient changes while the
    gradient the architecture step hands the tester (v) is the one without DeCov; with
    ``decov_drives_tester=true`` (the old objective) v changes too, and A's gradient is the same."""
    a0, v0 = arch_step_gradients(tester, 0.0, False)
    a1, v1 = arch_step_gradients(tester, 100.0, False)
    a2, v2 = arch_step_gradients(tester, 100.0, True)
    assert float(v0.norm()) > 0 and float(a0.norm()) > 0
    assert rel(a1, a0) > 1e-2  # DeCov reaches A
    assert rel(v1, v0) < 1e-6  # ... and not the tester
    assert rel(v2, v0) > 1e-2  # unless asked to
    assert rel(a2, a1) < 1e-4  # A's objective is the same either way (to float32 round-off)


@pytest.mark.parametrize("algorithm_name", ["darts1st", "darts2nd"])
def test_the_architecture_step_holds_one_objective_term_at_a_time(algorithm_name: str) -> None:
    """Eq. 4's two terms (the tester's batch, gamma times a D_val batch) are built and backpropagated
    one after the other (first order, and darts2nd's finite-difference step): A and the tester get the
    gradient of their sum, while the graphs held at once are one term's, not both (two supernet graphs
    at the search batch put ours-pdarts's stage-2 step past 24 GB on CPU)."""
    one, both = SavedBytes(), SavedBytes()
    a_terms, v_terms = arch_step_gradients("augment", 0.1, False, algorithm_name=algorithm_name, meter=one)
    a_sum, v_sum = arch_step_gradients(
        "augment", 0.1, False, algorithm_name=algorithm_name, summed=True, meter=both
    )
    assert rel(a_terms, a_sum) < 1e-5 and rel(v_terms, v_sum) < 1e-5
    assert float(v_sum.norm()) > 0
    assert one.peak < 0.7 * both.peak, (one.peak, both.peak)
