"""The paper's ``ours`` strategy (searchers/strategies/ours.py) on every search algorithm, its ablations,
and the tester hypergradient of Eq. 11, 15-16 (finite differences vs exact)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from searchers.loop import run_search
from searchers.spec import resolve_search
from searchers.strategies.ours import Ours, OursConfig, search_overrides
from searchers.testers.augment import AugmentTester
from searchers.testers.auxiliary import TiedAuxiliary
from searchers.testers.base import GeneratedBatch, Tester
from searchers.testers.base import TesterStep as Step  # (not collected as a test class)
from searchers.testers.dada import AugmentPolicy
from searchers.testers.fqgan import ConditionalGAN
from searchers.testers.gan import GanTester
from wcbench.errors import ConfigError
from wcbench.registry import searcher_names
from wcbench.smallcnn import SmallCNN

pytestmark = pytest.mark.timeout(300)

ALGORITHMS = ("darts1st", "darts2nd", "pdarts", "pcdarts", "prdarts")

# a tiny tester and a two-step search, so that each search takes seconds on a CPU
TINY: dict[str, Any] = {
    "strategy.gan_width": 2,
    "strategy.dim_z": 8,
    "strategy.fq_layers": [2],
    "strategy.dict_size_log2": 3,
    "strategy.aux_arch": "small",
    "strategy.aux_width": 4,
    "strategy.aux_hidden": 8,
    "strategy.tester_init": "pretrain",
    "strategy.pretrain_iters": 2,
    "strategy.pretrain_batch": 8,
    "strategy.aux_pretrain_iters": 2,
    "strategy.pretrain_pairs": 24,
    "strategy.reference_arch": "small",
    "strategy.reference_width": 4,
    "strategy.reference_iters": 3,
    "strategy.diag_samples": 12,
    "strategy.grid": 3,
    "strategy.probe_iters": 0,
    "strategy.hyper_every": 2,
    "strategy.gen_batch": 8,
    "epochs": 1,
    "max_steps_per_epoch": 2,
    "batch_size": 8,
    "warmup_epochs": 0,
    "eval_batch_size": 600,
    "train_portion": 0.9,  # a small search-validation split: the per-epoch validation pass is cheap
}


@pytest.fixture
def instances(monkeypatch: pytest.MonkeyPatch) -> list[Ours]:
    """The Ours objects the searches of a test build (to look inside them)."""
    built: list[Ours] = []
    original = Ours.setup

    def setup(self: Ours, ctx: Any) -> None:
        built.append(self)
        original(self, ctx)

    monkeypatch.setattr(Ours, "setup", setup)
    return built


def search(tmp_path: Path, searcher: str, name: str = "run", **extra: Any) -> list[dict[str, Any]]:
    over = {**TINY, **extra}
    out = tmp_path / name
    run_search(searcher, "digits", "smoke", seed=0, out_dir=out, overrides=over, device="cpu", progress=False)
    assert (out / "genotype.json").exists()
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


# ============================================================================ Eq. 11, 15-16


def _cos(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    x, y = torch.cat([t.flatten() for t in a]), torch.cat([t.flatten() for t in b])
    return float(x @ y / (x.norm() * y.norm()))


@pytest.mark.parametrize(
    ("kind", "tied"), [("fqgan", True), ("fqgan", False), ("sngan", False), ("biggan", True)]
)
def test_gan_hypergradient_fd_matches_exact(kind: str, tied: bool) -> None:
    """dJ/dB by finite differences (the paper's) vs double backward, float64, smooth activations
    (a ReLU network's gradient jumps at kinks, so its central differences do not converge)."""
    torch.manual_seed(0)
    gan = ConditionalGAN(kind, 5, width=2, dim_z=8, fq_layers=(1, 2), dict_size=8, act="silu").double()
    aux = (TiedAuxiliary(gan.D, 5, 8, act="silu") if tied else SmallCNN(5, 4, act="silu")).double()
    t = GanTester(gan, aux)
    g = torch.Generator().manual_seed(0)
    z, y = gan.sample_latent(8, g)
    x = torch.rand(8, 3, 32, 32, dtype=torch.float64, generator=g)
    t.train_d(x, y, z, y)  # fills the FQ dictionaries
    g_prime = t.unrolled(0.1, z, y)
    w = torch.randn(5, 3 * 32 * 32, dtype=torch.float64, generator=g) * 0.01  # a fixed "learner"
    learner_loss = F.cross_entropy(t.generate_at(g_prime, z, y).flatten(1) @ w.t(), y)
    v = torch.autograd.grad(learner_loss, list(g_prime.values()))
    z1, y1 = gan.sample_latent(8, g)
    kw = dict(eta_g=0.1, lam=1.0, eta_v=0.1, gen_batch=(z, y), aux_batch=(z1, y1), val_batch=(x, y))
    fd, st = t.hypergradient(g_prime, v, mode="fd", r=1e-6, **kw)
    exact, _ = t.hypergradient(g_prime, v, mode="exact", **kw)
    assert "aux_val_loss_unrolled" in st
    assert _cos(fd, exact) > 0.95
    for a, b in zip(fd, exact):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-9)


def test_augment_hypergradient_fd_matches_exact() -> None:
    torch.manual_seed(0)
    pol = AugmentPolicy().double()
    t = AugmentTester(pol, SmallCNN(5, 4, act="silu").double())
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 32, 32, dtype=torch.float64, generator=g)
    y = torch.randint(5, (16,), generator=g)
    direct = [torch.randn_like(p) * 1e-3 for p in pol.parameters()]
    kw = dict(lam=1.0, eta_v=0.1, aux_batch=(x, y, pol.draw(16, g)), val_batch=(x, y))
    fd, _ = t.hypergradient(direct, mode="fd", r=1e-6, **kw)
    exact, _ = t.hypergradient(direct, mode="exact", **kw)
    assert _cos(fd, exact) > 0.95
    lam0, _ = t.hypergradient(direct, **{**kw, "lam": 0.0})  # lambda = 0: only the direct term
    for a, b in zip(lam0, direct):
        torch.testing.assert_close(a, b)


# ============================================================================ configuration


def test_ours_searchers_are_registered() -> None:
    names = searcher_names()
    for alg in ALGORITHMS:
        assert f"ours-{alg}" in names
    assert "lambda" in OursConfig.model_fields


def test_paper_values_and_search_overrides() -> None:
    spec = resolve_search("ours-pcdarts", "cifar100", "paper")
    s = Ours(spec.strategy_config)
    s._resolve(SimpleNamespace(algorithm=SimpleNamespace(name="pcdarts")))
    assert s.lam == 0.1 and s.kind == "augment" and s.every == 8  # Sec. 4.2, Table 30
    assert spec.algorithm_config.lr_min == 0.0  # Table 30 "Minimum learning rate 0.0"
    spec = resolve_search("ours-pdarts", "cifar10", "paper")
    s = Ours(spec.strategy_config)
    s._resolve(SimpleNamespace(algorithm=SimpleNamespace(name="pdarts")))
    assert s.lam == 0.5  # Sec. 4.2, Table 27
    spec = resolve_search("ours-darts2nd", "cifar10", "paper", overrides={"strategy.lambda": 0})
    s = Ours(spec.strategy_config)
    s._resolve(SimpleNamespace(algorithm=SimpleNamespace(name="darts2nd")))
    assert s.lam == 0.0 and s.kind == "gan"
    assert spec.strategy_config.gamma == 1.0
    assert search_overrides("prdarts", "cifar10") == {
        "epochs": 50,
        "batch_size": 64,
        "weight_decay": 3e-4,
        "layers": 8,
    }
    assert resolve_search("ours-prdarts", "cifar10", "paper").algorithm_config.epochs == 50  # Table 32
    assert resolve_search("prdarts", "cifar10", "paper").algorithm_config.epochs == 200
    assert Ours.search_overrides("darts2nd", "cifar10", "paper") == {}


# ============================================================================ searches


@pytest.mark.parametrize("tester", ["gan", "augment"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_ours_searcher_finishes_with_both_testers(
    tmp_path: Path, algorithm: str, tester: str, instances: list[Ours]
) -> None:
    hist = search(tmp_path, f"ours-{algorithm}", **{"strategy.tester": tester})
    st = hist[-1]["strategy"]
    assert st["tester"] == tester and st["lambda"] == 1.0
    assert sum(h["strategy"]["hyper_steps"] for h in hist) >= 1
    assert 0.0 <= st["reference_error"] <= 1.0
    assert st["aux_val_loss"] is not None and st["adversarial_loss"] is not None
    assert (tmp_path / "run" / st["grid_png"]).exists()
    if tester == "gan":
        assert set(st["B"]) == {"decay", "fq_weight"}
    else:
        assert 0 < st["policy_entropy"] <= 4.66 and len(st["policy_top"]) == 5
    # A and the tester's upper level are updated exactly on the due iterations: the global steps
    # (counted over every epoch, warm-up included) divisible by hyper_every = 2
    first = 0
    for h in hist:
        due = sum(s % 2 == 0 for s in range(first, first + h["steps"])) if h["arch_active"] else 0
        assert h["arch_steps"] == h["strategy"]["arch_steps"] == h["strategy"]["hyper_steps"] == due, h
        first += h["steps"]
    assert sum(h["arch_steps"] for h in hist) >= 1


@pytest.mark.parametrize("tester", ["gan", "augment"])
def test_lambda_zero_skips_the_auxiliary_model(tmp_path: Path, tester: str, instances: list[Ours]) -> None:
    hist = search(tmp_path, "ours-darts1st", **{"strategy.tester": tester, "strategy.lambda": 0})
    st = hist[-1]["strategy"]
    assert st["lambda"] == 0.0 and st["aux_val_loss"] is None and st["aux_val_loss_unrolled"] is None
    assert instances[-1].tester.aux is None and instances[-1].tester.v_opt is None


@pytest.mark.parametrize(
    "extra",
    [
        {"strategy.ablation": "weights-only"},
        {"strategy.ablation": "pretrain"},
        {"strategy.generator": "sngan"},
        {"strategy.generator": "biggan"},
        {"strategy.cost_reduction": False},
        {"strategy.hypergrad": "exact"},
    ],
    ids=["weights-only", "pretrain", "sngan", "biggan", "ncr", "exact"],
)
def test_ablations_finish(tmp_path: Path, extra: dict[str, Any], instances: list[Ours]) -> None:
    hist = search(tmp_path, "ours-darts2nd", **extra)
    st = hist[-1]["strategy"]
    s = instances[-1]
    if extra.get("strategy.ablation") == "weights-only":
        # B stays at FQ-GAN's values; the discriminator is the upper-level variable (Eq. 18)
        assert st["B"] == pytest.approx({"decay": 0.8, "fq_weight": 1.0}, abs=1e-6)
        assert s.tester.upper_params == list(s.tester.gan.D.parameters())
    elif extra.get("strategy.ablation") == "pretrain":
        assert st["tester"] == "selection" and 0 <= st["selection_mean"] <= 1
        assert s.tester.images.shape[0] == TINY["strategy.pretrain_pairs"]
    elif "strategy.generator" in extra:
        assert st["generator"] == extra["strategy.generator"] and set(st["B"]) == {"z_scale", "cond_scale"}
    elif extra.get("strategy.cost_reduction") is False:
        assert s.every == 1 and s.decov_weight == 0 and not isinstance(s.tester.aux, TiedAuxiliary)
        assert st["arch_steps"] == hist[-1]["steps"] and st["decov"] is None
    else:
        assert s.mode == "exact" and st["hyper_steps"] >= 1


def test_augment_ablation_combinations(tmp_path: Path) -> None:
    """NCR and exact hypergradients with the augmentation tester."""
    hist = search(
        tmp_path, "ours-pcdarts", **{"strategy.cost_reduction": False, "strategy.hypergrad": "exact"}
    )
    assert hist[-1]["strategy"]["tester"] == "augment" and hist[-1]["strategy"]["hyper_steps"] >= 1


def test_tester_cache_and_scratch(tmp_path: Path, instances: list[Ours]) -> None:
    search(tmp_path, "ours-darts1st", name="a")
    search(tmp_path, "ours-darts1st", name="b")
    assert instances[-1].init_note.startswith("cache ")
    hist = search(tmp_path, "ours-darts1st", name="c", **{"strategy.tester_init": "scratch"})
    assert hist[-1]["strategy"]["tester_init"].startswith("scratch")
    with pytest.raises(ConfigError, match="no pretrained gan tester at .*wcbench tester pretrain"):
        search(tmp_path, "ours-darts1st", name="d", **{"strategy.tester_init": "cache", "strategy.dim_z": 12})
    assert not (tmp_path / "d").exists()  # the failed search leaves no empty --out behind


def test_resume_gives_the_same_tester(tmp_path: Path) -> None:
    extra = {"epochs": 2, "strategy.tester": "gan"}
    full = search(tmp_path, "ours-darts1st", name="full", **extra)

    class Stop(Exception):
        pass

    def stop(epoch: int, record: dict[str, Any]) -> None:
        if epoch == 0:
            raise Stop

    over = dict(TINY)
    over.update(extra)
    out = tmp_path / "resumed"
    with pytest.raises(Stop):
        run_search(
            "ours-darts1st",
            "digits",
            "smoke",
            0,
            out_dir=out,
            overrides=over,
            progress=False,
            callbacks=[stop],
        )
    run_search("ours-darts1st", "digits", "smoke", 0, out_dir=out, overrides=over, progress=False)
    resumed = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert resumed[-1]["strategy"]["B"] == full[-1]["strategy"]["B"]
    assert resumed[-1]["genotype"] == full[-1]["genotype"]


# ============================================================================ the tester interface


class NoiseTester(Tester):
    """A tiny tester through the interface alone: noise images times a learnable brightness ``scale``
    (its upper-level variable, ascended with the learner's loss gradient); no lower level but a count."""

    kind = "noise"

    def __init__(self, num_classes: int, shape: tuple[int, ...]) -> None:
        self.num_classes, self.shape = num_classes, shape
        self.scale = torch.nn.Parameter(torch.tensor(0.5))
        self.calls: dict[str, int] = {"validation_batch": 0, "upper_step": 0, "lower_step": 0}
        self.upper_grads: list[float] = []

    def _noise(self, n: int, g: torch.Generator, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.rand(n, *self.shape, generator=g).to(device)
        return x, torch.randint(self.num_classes, (n,), generator=g).to(device)

    def validation_batch(self, step: Step) -> GeneratedBatch:
        self.calls["validation_batch"] += 1
        x, y = self._noise(step.batch_size, step.generator, step.device)
        scale = self.scale if step.due else self.scale.detach()
        if step.due:
            self.scale.grad = None
        return GeneratedBatch(lambda: ((x * scale).clamp(0, 1), y, None), [self.scale] if step.due else [])

    def upper_step(self, step, batch, val_batch, *, lam, mode, r):  # noqa: ANN001, ANN201
        self.calls["upper_step"] += 1
        assert batch.params == [self.scale] and val_batch[0].shape[1:] == self.shape
        grad = float(self.scale.grad) if self.scale.grad is not None else 0.0
        self.upper_grads.append(grad)
        with torch.no_grad():
            self.scale.add_(0.01 * grad).clamp_(0.1, 1.0)  # gradient ascent on the learner's loss
        self.scale.grad = None
        return {}

    def lower_step(self, step: Step) -> dict[str, torch.Tensor]:
        self.calls["lower_step"] += 1
        return {"noise_lower_steps": torch.tensor(1.0)}

    def diagnostic_inputs(self, n, generator, train, num_classes, device):  # noqa: ANN001, ANN201
        x, y = self._noise(n, generator, device)
        return {"x": x, "y": y}

    def generated_set(self, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return (inputs["x"] * self.scale.detach()).clamp(0, 1), inputs["y"]

    def diagnostics(self) -> dict[str, Any]:
        return {"noise_scale": float(self.scale.detach())}

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale.detach().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.scale.copy_(state["scale"])


def test_a_tester_implementing_the_interface_plugs_into_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instances: list[Ours]
) -> None:
    def make_tester(self: Ours, ctx: Any, generator: torch.Generator) -> Tester:
        self.init_note = "a noise tester (test)"
        return NoiseTester(ctx.num_classes, tuple(ctx.train.images.shape[1:]))

    monkeypatch.setattr(Ours, "make_tester", make_tester)
    hist = search(tmp_path, "ours-darts1st", **{"epochs": 2, "max_steps_per_epoch": 3})
    tester = instances[-1].tester
    assert isinstance(tester, NoiseTester)
    st = hist[-1]["strategy"]
    assert st["tester"] == "noise" and st["tester_init"] == "a noise tester (test)"
    assert 0.1 <= st["noise_scale"] <= 1.0 and st["noise_lower_steps"] == 1.0
    assert 0.0 <= st["reference_error"] <= 1.0 and st["aux_val_loss"] is None
    assert (tmp_path / "run" / st["grid_png"]).exists()
    # Algorithm 1: a generated batch per architecture step, an upper step on every due one (with the
    # learner's gradient in the tester's variable), a lower step after every weight step
    arch = sum(h["strategy"]["arch_steps"] for h in hist)
    hyper = sum(h["strategy"]["hyper_steps"] for h in hist)
    assert tester.calls["validation_batch"] == arch and tester.calls["upper_step"] == hyper >= 1
    assert tester.calls["lower_step"] == sum(h["steps"] for h in hist)
    assert any(g != 0.0 for g in tester.upper_grads)


def test_ours_talks_to_testers_through_the_interface_only() -> None:
    """Algorithm 1 (ours.py) names no tester class and imports no tester implementation."""
    import ast

    import searchers.strategies.ours as ours

    tree = ast.parse(Path(ours.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    testers = {m for m in imported if m and m.startswith("searchers.testers.")}
    assert testers <= {
        "searchers.testers.base",
        "searchers.testers.build",
        "searchers.testers.diagnostics",
        "searchers.testers.regularizers",
    }
    concrete = {"GanTester", "AugmentTester", "SelectionTester", "Tester"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
            named = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
            named |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
            assert not named & concrete, ast.unparse(node)
