"""Scoring models from outside wcbench (issue #12): timm, torchvision, `module:function`, RobustBench.

Each kind is scored with clean, attacks and cifar-c through `wcbench score --model SPEC` and through
``wcbench.stages.score_model``, at toy size: random-init networks on 32x32 digits (tiny -C fixture in
the official layout), a tiny architecture registered in RobustBench's model zoo whose checkpoint the
test writes in RobustBench's own format and directory layout.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.test_cifar_c import write_c_fixture
from wcbench.cli import main
from wcbench.data import normalize
from wcbench.errors import ConfigError
from wcbench.models import FeedAs, load_model_spec
from wcbench.results import collect_runs
from wcbench.stages import score_model

REQUIRE = bool(os.environ.get("WCBENCH_REQUIRE_EXTRAS"))  # CI installs the extras: a missing one fails


def need(module: str, extra: str) -> None:
    """Skip without the extra, unless CI asked for every extra (then a missing one fails)."""
    if module == "robustbench":
        from wcbench.robustbench import import_robustbench

        try:
            import_robustbench()  # with its compatibility steps (wcbench.robustbench)
        except ConfigError as exc:
            if REQUIRE:
                raise
            pytest.skip(str(exc))
    elif REQUIRE:
        __import__(module)
    else:
        pytest.importorskip(module, reason=f'pip install "wcbench[{extra}]"')


SETTINGS = {  # toy sizes: 20 clean images, FGSM + PGD-10 on 4, one corruption x 5 severities x 4 images
    "clean.max_examples": 20,
    "attacks.num_examples": 4,
    "attacks.attacks": ["fgsm", "pgd10"],
    "cifar-c.corruptions": ["fog"],
}
SCORERS = "clean,attacks,cifar-c"


def cli_sets() -> list[str]:
    return [a for k, v in SETTINGS.items() for a in ("--set", f"{k}={json.dumps(v)}")]


@pytest.fixture
def digits_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data root with a tiny digits-C (official -C layout), where cifar-c looks for digits."""
    root = tmp_path / "data"
    write_c_fixture(root / "digits-C", ["fog"], n=4)
    monkeypatch.setenv("WCBENCH_DATA", str(root))
    return root


def check_records(records: dict[str, dict]) -> None:
    assert set(records) == {"clean", "attacks", "cifar-c"}
    assert records["clean"]["num_examples"] == 20 and records["attacks"]["num_examples"] == 4
    assert records["cifar-c"]["dataset"] == "digits-C" and set(records["cifar-c"]["table"]) == {"fog"}
    for rec in records.values():
        assert rec["genotype_hash"] is None and rec["model"]["external"] is True
    m = records["attacks"]["metrics"]
    assert m["pgd10_acc"]["value"] <= m["clean_acc"]["value"]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    assert main(argv + ["--scorers", SCORERS, "--json", "--no-progress", *cli_sets()]) == 0
    return {r["scorer"]: r for r in json.loads(capsys.readouterr().out)}


# --------------------------------------------------------------------------------------------------
# timm, torchvision, module:function


def test_timm_resnet18_state_dict_through_cli_and_api(
    tmp_path: Path, digits_c: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need("timm", "timm")
    import timm

    torch.manual_seed(3)
    net = timm.create_model("resnet18", num_classes=10)
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, tmp_path / "r18.pt")  # DDP-style
    runs = tmp_path / "runs"
    argv = ["score", "--model", "timm:resnet18", "--weights", str(tmp_path / "r18.pt"), "--dataset", "digits"]
    argv += ["--input-size", "32", "--runs-dir", str(runs)]
    cli = run_cli(argv, capsys)
    check_records(cli)
    model = cli["clean"]["model"]
    assert model["spec"] == "timm:resnet18" and model["input_size"] == 32 and model["num_classes"] == 10
    assert model["mean"] == pytest.approx([0.485, 0.456, 0.406])  # timm's pretrained_cfg
    assert len(model["weights_sha256"]) == 64 and model["notes"] == []
    run = runs / "digits" / "external-timm-resnet18" / "seed-0"
    assert {p.name for p in (run / "scores").iterdir()} == {"clean.json", "attacks.json", "cifar-c.json"}
    assert json.loads((run / "external.json").read_text())["spec"] == "timm:resnet18"

    # the same network as a Python object: the same numbers, so the CLI scored the saved weights
    net.mean, net.std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    api = score_model(net, SCORERS, "digits", settings=SETTINGS, runs_dir=runs, name="r18-object")
    check_records(api)
    for scorer, metric in (("clean", "top1_acc"), ("attacks", "fgsm_acc"), ("cifar-c", "error_fog")):
        assert api[scorer]["metrics"][metric]["value"] == cli[scorer]["metrics"][metric]["value"]

    # both appear in the runs table (and so on the boards), labelled external
    df = collect_runs(runs)
    assert {"external-timm-resnet18", "external-object-r18-object"} <= set(df["searcher"])


def test_random_init_is_said_and_cost_measures_the_model(
    tmp_path: Path, digits_c: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["score", "--model", "torchvision:resnet18", "--dataset", "digits", "--input-size", "32"]
    argv += ["--scorers", "clean,cost", "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    argv += [
        "--set",
        "clean.max_examples=8",
        "--set",
        "cost.latency_batch_sizes=[1]",
        "--set",
        "cost.measure_memory=false",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "external-torchvision-resnet18" in out and "random init" in out
    cost = json.loads(
        (tmp_path / "runs/digits/external-torchvision-resnet18/seed-0/scores/cost.json").read_text()
    )
    import torchvision

    ref = torchvision.models.resnet18(num_classes=10)
    assert cost["metrics"]["params"]["value"] == sum(p.numel() for p in ref.parameters())
    assert cost["params"]["input_size"] == [3, 32, 32] and cost["network"]["spec"] == "torchvision:resnet18"


def test_torchvision_model_through_cli_and_api(
    tmp_path: Path, digits_c: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torchvision

    torch.manual_seed(4)
    net = torchvision.models.get_model("shufflenet_v2_x0_5", num_classes=10)
    torch.save(net.state_dict(), tmp_path / "sn.pt")
    argv = ["score", "--model", "torchvision:shufflenet_v2_x0_5", "--weights", str(tmp_path / "sn.pt")]
    argv += ["--dataset", "digits", "--input-size", "32", "--runs-dir", str(tmp_path / "runs")]
    cli = run_cli(argv, capsys)
    check_records(cli)
    assert cli["clean"]["model"]["std"] == pytest.approx([0.229, 0.224, 0.225])  # the weights' metadata
    api = score_model(
        "torchvision:shufflenet_v2_x0_5",
        SCORERS,
        "digits",
        settings=SETTINGS,
        weights=tmp_path / "sn.pt",
        input_size=32,
        scores_dir=tmp_path / "api-scores",
    )
    check_records(api)
    assert api["clean"]["metrics"] == cli["clean"]["metrics"]
    assert {p.name for p in (tmp_path / "api-scores").iterdir()} == {
        "clean.json",
        "attacks.json",
        "cifar-c.json",
    }


class Tiny(nn.Module):
    """A tiny classifier of 32x32 images; ``seen`` keeps the range of its last input."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 4, 3, stride=4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, num_classes)
        )
        self.seen = (0.0, 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = (float(x.min()), float(x.max()))
        return self.body(x)


def tiny_declared() -> tuple[nn.Module, dict]:
    """`module:function` with the tuple convention: (module, declarations)."""
    torch.manual_seed(5)
    return Tiny(), {"mean": [0.5], "std": [0.25], "input_size": 32}


def tiny_attributes() -> nn.Module:
    """`module:function` with the attribute convention; nothing declared: [0, 1] inputs."""
    torch.manual_seed(5)
    return Tiny()


def test_module_function_through_cli_and_api(
    tmp_path: Path, digits_c: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["score", "--model", "tests.test_external:tiny_declared", "--dataset", "digits"]
    cli = run_cli(argv + ["--runs-dir", str(tmp_path / "runs")], capsys)
    check_records(cli)
    assert cli["clean"]["model"]["mean"] == [0.5, 0.5, 0.5] and cli["clean"]["model"]["std"] == [0.25] * 3
    assert cli["clean"]["model"]["label"] == "external-module-tests.test_external-tiny_declared"
    api = score_model(tiny_declared(), SCORERS, "digits", settings=SETTINGS, scores_dir=tmp_path / "s")
    assert api["clean"]["metrics"] == cli["clean"]["metrics"]
    # the other convention, declarations on the command line instead
    argv = ["score", "--model", "tests.test_external:tiny_attributes", "--dataset", "digits"]
    argv += ["--mean", "0.5", "--std", "0.25", "--scores-dir", str(tmp_path / "s2")]
    assert run_cli(argv, capsys)["clean"]["metrics"] == cli["clean"]["metrics"]


def test_feed_as_gives_the_model_its_own_normalisation_and_size() -> None:
    net = Tiny()
    x01 = torch.rand(2, 3, 16, 16)
    data_mean, data_std = (0.3, 0.4, 0.5), (0.2, 0.2, 0.2)
    fed = FeedAs(net, data_mean, data_std, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 32)
    out = fed(normalize(x01, data_mean, data_std))
    assert out.shape == (2, 10)
    lo, hi = net.seen
    assert -1e-5 <= lo and hi <= 1 + 1e-5  # [0, 1] images, resized 16 -> 32 (antialiased bilinear)
    same = FeedAs(net, data_mean, data_std, data_mean, data_std, 32)  # the data's own: nothing changes
    x = normalize(torch.rand(2, 3, 32, 32), data_mean, data_std)
    assert torch.allclose(same(x), net(x), atol=1e-5)


def test_bad_specs_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        ["--model", "torchvision:resnet81", "--dataset", "digits"],  # did you mean
        ["--model", "no_such_pkg.nets:build", "--dataset", "digits"],
        [
            "--model",
            "torchvision:resnet18",
            "--dataset",
            "digits",
            "--num-classes",
            "7",
            "--input-size",
            "32",
        ],
        ["--model", "torchvision:resnet18"],  # no dataset
        ["--model", "tests.test_external:tiny_attributes", "--dataset", "digits", "--scorers", "stl10"],
        ["--model", "robustbench:cifar10/Linf"],
    ]
    for argv in cases:
        scorer = [] if "--scorers" in argv else ["--scorers", "clean"]
        assert main(["score", *argv, *scorer, "--runs-dir", str(tmp_path / "runs")]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err, err
    assert main(["score", *cases[0], "--scorers", "clean"]) == 2
    assert "did you mean 'resnet18'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="7 outputs"):
        score_model(Tiny(7), "clean", "digits", scores_dir=tmp_path / "s")


# --------------------------------------------------------------------------------------------------
# RobustBench


class RBTiny(nn.Module):
    """A RobustBench-style model: takes [0, 1] images, normalises inside."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mu", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1))
        self.body = nn.Sequential(
            nn.Conv2d(3, 4, 3, stride=4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x - self.mu)


@pytest.fixture
def rb_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """RBTiny registered as cifar10/Linf/WcbenchTiny in RobustBench's model zoo, its checkpoint written as
    RobustBench keeps them: <model_dir>/cifar10/Linf/WcbenchTiny.pt, {'state_dict': {'module.*': ...}}."""
    need("robustbench", "robustbench")
    from wcbench.robustbench import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    zoo = model_dicts[BenchmarkDataset.cifar_10][ThreatModel.Linf]
    monkeypatch.setitem(zoo, "WcbenchTiny", {"model": RBTiny, "gdrive_id": "local-only"})
    torch.manual_seed(6)
    state = {f"module.{k}": v for k, v in RBTiny().state_dict().items()}
    folder = tmp_path / "models" / "cifar10" / "Linf"
    folder.mkdir(parents=True)
    torch.save({"state_dict": state, "epoch": 3}, folder / "WcbenchTiny.pt")
    return tmp_path / "models"


def test_robustbench_checkpoint_loads_by_robustbench_and_scores(
    tmp_path: Path, tiny_cifar10, rb_zoo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_c_fixture(tiny_cifar10.root / "CIFAR-10-C", ["fog"], n=4)  # the official folder name
    spec = "robustbench:cifar10/Linf/WcbenchTiny"
    ext = load_model_spec(spec, model_dir=rb_zoo)
    torch.manual_seed(6)
    expected = RBTiny().state_dict()
    assert all(torch.equal(ext.module.state_dict()[k], v) for k, v in expected.items())
    assert (ext.mean, ext.std, ext.input_size, ext.num_classes) == ((0, 0, 0), (1, 1, 1), 32, 10)

    settings = {**SETTINGS, "clean.max_examples": 10}
    argv = ["score", "--model", spec, "--model-dir", str(rb_zoo), "--data-root", str(tiny_cifar10.root)]
    argv += ["--runs-dir", str(tmp_path / "runs"), "--scorers", SCORERS, "--json", "--no-progress"]
    argv += [a for k, v in settings.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    assert main(argv) == 0
    cli = {r["scorer"]: r for r in json.loads(capsys.readouterr().out)}
    assert cli["clean"]["dataset"] == "cifar10" and cli["cifar-c"]["dataset"] == "cifar10-C"
    assert cli["clean"]["model"]["weights"].endswith("cifar10/Linf/WcbenchTiny.pt")
    api = score_model(
        spec,
        SCORERS,
        settings=settings,
        model_dir=rb_zoo,
        data_root=str(tiny_cifar10.root),
        scores_dir=tmp_path / "s",
    )
    assert api["clean"]["metrics"] == cli["clean"]["metrics"]
    assert api["attacks"]["metrics"] == cli["attacks"]["metrics"]

    # RobustBench's model-info JSON: exactly its ModelInfo fields
    run = tmp_path / "runs" / "cifar10" / "external-robustbench-cifar10-Linf-WcbenchTiny" / "seed-0"
    out = tmp_path / "model_info" / "WcbenchTiny.json"
    assert main(["export", "robustbench", str(run), "--file", str(out), "--field", "venue=test"]) == 0
    info = json.loads(out.read_text())
    from robustbench.utils import ModelInfo

    assert set(info) == set(ModelInfo.__dataclass_fields__)
    ModelInfo(**info)
    assert info["clean_acc"] == f"{cli['clean']['metrics']['top1_acc']['value']:.2f}"
    assert info["dataset"] == "cifar10" and info["venue"] == "test" and info["name"] == run.parent.name


def test_robustbench_never_downloads(
    tmp_path: Path, rb_zoo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "score",
        "--model",
        "robustbench:cifar10/Linf/Standard",
        "--model-dir",
        str(rb_zoo),
        "--scorers",
        "clean",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "never downloads" in err and "cifar10/Linf/Standard.pt" in err
    assert main([*argv[:2], "robustbench:cifar10/Linf/WcbenchTin", *argv[3:]]) == 2
    assert "did you mean 'WcbenchTiny'" in capsys.readouterr().err
    # the XCiT models robustbench takes from timm's hub instead of the model directory
    assert main([*argv[:2], "robustbench:cifar10/Linf/Debenedetti2022Light_XCiT-S12", *argv[3:]]) == 2
    assert "never downloads" in capsys.readouterr().err


def test_overwritten_robustbench_files_name_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchattacks 3.5.1 installed after robustbench overwrites its files with an old copy."""
    need("robustbench", "robustbench")
    from wcbench import robustbench as rbi

    assert rbi._record_mismatches("robustbench", "robustbench") == []  # this environment is sound
    monkeypatch.setattr(rbi, "_record_mismatches", lambda dist, package: ["robustbench/utils.py"])
    with pytest.raises(ConfigError, match="force-reinstall robustbench=="):
        rbi.import_robustbench()


def test_model_info_of_corruption_scores() -> None:
    from wcbench.robustbench import model_info

    scores = {
        "clean": {"metrics": {"top1_acc": {"value": 91.234}}, "trained_on": "cifar10"},
        "cifar-c": {"metrics": {"mean_corruption_error": {"value": 20.5}}},
        "autoattack": {"metrics": {"autoattack_acc": {"value": 50.0}}, "params": {"eps": 8 / 255}},
    }
    info = model_info(scores, None, name="m", threat="corruptions")
    assert (info["clean_acc"], info["corruptions_acc"], info["reported"]) == ("91.23", "79.50", "79.50")
    assert info["autoattack_acc"] is None and info["dataset"] == "cifar10"
    linf = model_info(scores, None, name="m", threat="Linf")
    assert (linf["eps"], linf["autoattack_acc"]) == ("8/255", "50.00")


def test_worst_case_and_autoattack_score_an_external_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other weight scorers take an external model too; worst-case's errors are the module's own
    mistakes on [0, 1] images (what an undeclared module:function model is fed)."""
    need("pyautoattack", "autoattack")
    from wcbench.data import get_dataset

    monkeypatch.setenv("WCBENCH_DATA", str(tmp_path / "data"))
    ids = tmp_path / "ids.txt"
    ids.write_text(" ".join(str(i) for i in range(0, 360, 9)))  # 40 of the 360 digits test images
    argv = ["data", "worst-case", "import", "--dataset", "digits", "--indices", str(ids)]
    assert main([*argv, "--provenance", "every ninth test image (a test)"]) == 0
    net = tiny_attributes()
    records = score_model(
        net,
        "worst-case,autoattack",
        "digits",
        settings={"autoattack.num_examples": 4},
        scores_dir=tmp_path / "s",
    )
    test = get_dataset("digits", "test")
    with torch.inference_mode():
        wrong = net(test.images.float() / 255.0).argmax(1) != test.labels
    worst = 100.0 * float(wrong[list(range(0, 360, 9))].float().mean())
    assert records["worst-case"]["metrics"]["worst_case_error"]["value"] == pytest.approx(worst)
    assert records["worst-case"]["metrics"]["all_error"]["value"] == pytest.approx(
        100.0 * float(wrong.float().mean())
    )
    aa = records["autoattack"]["metrics"]
    assert aa["autoattack_acc"]["value"] <= aa["clean_acc"]["value"]


def test_cost_memory_of_an_object_the_child_cannot_rebuild_is_reported_not_awaited(tmp_path: Path) -> None:
    """The CPU memory measurement runs in a fresh process; a model object that cannot get there (a
    local class; a class in a notebook's __main__) gives no number and says why, instead of hanging."""
    import multiprocessing as mp
    import sys
    import time

    from evaluators.cost import _child_result

    class Local(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3 * 32 * 32, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.flatten(1))

    settings = {"latency_batch_sizes": [1], "memory_batch_size": 4}
    rec = score_model(Local(), "cost", "digits", settings=settings, scores_dir=tmp_path)["cost"]
    assert rec["metrics"]["params"]["value"] == 3 * 32 * 32 * 10 + 10
    assert rec["metrics"]["peak_train_memory_mb"]["value"] is None and "skipped" in rec["memory_measure"]
    ctx = mp.get_context("spawn")
    proc, queue = ctx.Process(target=sys.exit, args=(3,)), ctx.Queue()
    proc.start()
    status, why = _child_result(proc, queue, deadline=time.monotonic() + 600.0)
    assert status == "error" and "exited with code 3 before reporting" in why


class RedOracle(nn.Module):
    """1000 outputs; on [0, 1] images, predicts ``targets[k]`` where the red level is 20 + 40 k."""

    def __init__(self, targets: list[int]) -> None:
        super().__init__()
        self.targets = targets
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = ((x[:, 0].mean(dim=(1, 2)) * 255.0 - 20) / 40).round().long().clamp(0, len(self.targets) - 1)
        out = torch.zeros(x.shape[0], 1000)
        out[torch.arange(x.shape[0]), torch.as_tensor(self.targets)[code]] = 10.0
        return out * self.scale


def test_imagenet_variant_scores_an_external_imagenet_model(tmp_path: Path) -> None:
    """`--dataset imagenet` names ImageNet-1k for the -A/-R/-Sketch/-C scorers, which read their own
    folders; the model's 1000 outputs are taken in the standard (sorted wnid) order."""
    from PIL import Image

    from evaluators.imagenet_classes import IMAGENET_A_INDICES, IMAGENET_A_WNIDS

    picks = [3, 77]
    for code, p in enumerate(picks):
        for i, level in enumerate(
            (code, code, 1 - code)
        ):  # the third image of each class looks like the other
            img = np.zeros((40, 40, 3), dtype=np.uint8)
            img[..., 0], img[..., 2] = 20 + 40 * level, 128
            path = tmp_path / "data" / "imagenet-a" / IMAGENET_A_WNIDS[p] / f"{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(path, quality=95)
    model = (RedOracle([IMAGENET_A_INDICES[p] for p in picks]), {"input_size": 32})
    rec = score_model(
        model, "imagenet-a", "imagenet", settings={"workers": 0}, data_root=str(tmp_path / "data"),
        scores_dir=tmp_path / "s",
    )["imagenet-a"]  # fmt: skip
    assert rec["num_examples"] == 6
    assert rec["metrics"]["top1_accuracy"]["value"] == pytest.approx(100 * 4 / 6)
