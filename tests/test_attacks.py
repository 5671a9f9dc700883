"""The `attacks` scorer (paper Tables 15-16) through torchattacks, and its packaging hazards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from evaluators.attacks import AttackParams, attack_specs, run_attack
from evaluators.common import LogitsOnly, ScoreContext, eval_loader, score
from evaluators.retrain import load_retrain_config, retrain
from tests.timeouts import hang_guard
from wcbench.data import normalize
from wcbench.genotype import PUBLISHED

if os.environ.get("WCBENCH_REQUIRE_EXTRAS"):  # CI installs the extras and sets this: a missing one fails
    import torchattacks
else:
    torchattacks = pytest.importorskip("torchattacks", reason="pip install --no-deps torchattacks==3.5.1")

N = 16  # test images attacked (CPU time: ~5 ms per image per attack step)
TINY = {  # about 96% test accuracy on digits in ~20 s of one core (shared with test_scorers.py)
    "epochs": 4,
    "init_channels": 8,
    "layers": 4,
    "batch_size": 32,
    "lr": 0.05,
    "max_train_examples": 600,
    "valid_split": "none",
    "augment": False,
    "cutout": 0,
    "drop_path_prob": 0.0,
}


def tiny_trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny undefended network trained on the embedded digits, trained once per test session."""
    out = tmp_path_factory.getbasetemp() / "tiny-digits-model"
    if not (out / "model.pt").exists():
        cfg = load_retrain_config("darts", "smoke", "digits", TINY)
        retrain(PUBLISHED["DARTS_V2"], "digits", out, cfg, seed=1, progress=False)
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_trained_model(tmp_path_factory)


@pytest.fixture(scope="module")
def batch(trained: Path) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    ctx = ScoreContext.from_model_dir(trained, progress=False)
    model = LogitsOnly(ctx.network(), ctx.mean, ctx.std).eval()
    loader, _ = eval_loader(ctx, "test", N, normalize=False, max_examples=N)
    x, y = next(iter(loader))
    return model, x, y


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def test_logits_only_wrapper_normalises_and_drops_the_aux_output(batch) -> None:
    model, x, _ = batch
    net = model.net.train()  # in training mode a DARTS network returns (logits, logits_aux)
    logits, aux = net(normalize(x, model.norm.mean.flatten().tolist(), model.norm.std.flatten().tolist()))
    assert aux is not None
    net.eval()
    with torch.no_grad():
        wrapped = model(x)
        direct = net(normalize(x, model.norm.mean.flatten().tolist(), model.norm.std.flatten().tolist()))[0]
    assert isinstance(wrapped, torch.Tensor) and wrapped.shape == (x.shape[0], 10)
    assert torch.allclose(wrapped, direct, atol=1e-5)


@pytest.fixture(scope="module")
def adversarial(batch) -> dict[str, torch.Tensor]:
    """Table 15's attacks on the batch (C&W with fewer steps to keep the test short)."""
    model, x, y = batch
    _, specs = attack_specs(AttackParams(cw_steps=40), "cifar")
    assert list(specs) == ["pgd10", "pgd20", "pgd100", "fgsm", "cw"]  # Table 15
    return {name: run_attack(model, spec, x, y, seed=0) for name, spec in specs.items()}


def test_robust_accuracy_never_exceeds_clean(batch, adversarial) -> None:
    model, x, y = batch
    clean = accuracy(model, x, y)
    assert clean > 0.5  # the undefended network learned something
    for name, x_adv in adversarial.items():
        assert accuracy(model, x_adv, y) <= clean, name


def test_pgd100_is_at_least_as_strong_as_pgd10(batch, adversarial) -> None:
    model, x, y = batch
    pgd10, pgd100 = accuracy(model, adversarial["pgd10"], y), accuracy(model, adversarial["pgd100"], y)
    assert pgd100 <= pgd10 + 1 / N + 1e-9  # tolerance: one example
    assert pgd10 < accuracy(model, x, y)  # eps 8/255 breaks an undefended network


def test_adversarial_examples_lie_within_eps(batch, adversarial) -> None:
    _, x, _ = batch
    for name in ("pgd10", "pgd20", "pgd100", "fgsm"):
        x_adv = adversarial[name]
        assert x_adv.min() >= 0 and x_adv.max() <= 1
        per_example = (x_adv - x).abs().flatten(1).max(dim=1).values
        assert bool((per_example <= 8 / 255 + 1e-6).all()), name


def test_chosen_cw_constants_succeed_on_an_undefended_network(batch, adversarial) -> None:
    model, x, y = batch
    assert accuracy(model, adversarial["cw"], y) <= 0.25 * accuracy(model, x, y)


def test_eps_zero_gives_exactly_the_clean_accuracy(batch) -> None:
    model, x, y = batch
    params = AttackParams(eps=0.0, alpha=2 / 255)
    _, specs = attack_specs(params, "cifar")
    clean = accuracy(model, x, y)
    for name in ("pgd10", "fgsm"):
        x_adv = run_attack(model, specs[name], x, y, seed=0)
        assert torch.equal(x_adv, x), name
        assert accuracy(model, x_adv, y) == clean


def test_attacks_score_file_states_every_parameter(trained: Path) -> None:
    ctx = ScoreContext.from_model_dir(trained, progress=False)
    rec = score(ctx, "attacks", {"num_examples": 12, "attacks": ["pgd10", "fgsm", "cw"], "cw_steps": 20})
    saved = json.loads((trained / "scores" / "attacks.json").read_text())
    assert saved == json.loads(json.dumps(rec))
    m = saved["metrics"]
    assert m["clean_acc"]["unit"] == "%" and saved["num_examples"] == 12 and saved["split"] == "test"
    for name in ("pgd10", "fgsm", "cw"):
        assert m[f"{name}_acc"]["value"] <= m["clean_acc"]["value"]
    assert m["cw_l2_mean"]["unit"] == "L2" and m["cw_success_rate"]["unit"] == "%"
    specs = saved["params"]["attack_specs"]
    assert specs["pgd10"] == {
        "class": "PGD",
        "eps": 8 / 255,
        "alpha": 2 / 255,
        "steps": 10,
        "random_start": True,
        "norm": "Linf",
    }
    assert specs["fgsm"] == {"class": "FGSM", "eps": 8 / 255, "norm": "Linf"}
    assert specs["cw"] == {"class": "CW", "c": 10.0, "kappa": 0.0, "steps": 20, "lr": 0.01, "norm": "L2"}
    for name in ("pgd10", "fgsm"):
        assert saved["checks"][name]["linf_max"] <= 8 / 255 + 1e-6
    assert saved["params"]["library"] == f"torchattacks {torchattacks.__version__}"


def test_imagenet_set_is_table_16() -> None:
    chosen, specs = attack_specs(AttackParams(), "imagenet")
    assert chosen == "imagenet" and list(specs) == ["pgd100", "fgsm", "cw"]


def test_torchattacks_imports_without_its_vendored_robustbench(tmp_path: Path) -> None:
    """torchattacks 3.5.1 ships a top-level `robustbench/` and pins requests~=2.25.1: wcbench needs
    neither, imports torchattacks lazily, and nothing it imports pulls them in."""
    code = (
        "import sys\n"
        "import wcbench.cli, wcbench.registry\n"
        "wcbench.registry.load_plugins()\n"
        "assert 'torchattacks' not in sys.modules, 'torchattacks must be imported lazily'\n"
        "import torchattacks, evaluators.attacks\n"
        "torchattacks.PGD, torchattacks.FGSM, torchattacks.CW\n"
        "bad = sorted(m for m in ('robustbench', 'requests', 'autoattack') if m in sys.modules)\n"
        "assert not bad, bad\n"
        "print('ok', torchattacks.__version__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=hang_guard(300)
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ok 3.5")
