"""The paper's method as `wcbench run` runs it (issue: "the tester made real"): a tester stage that
pretrains once and is reused, searches at another resolution on a fixed split, BN statistics
recalibrated before validation, the tester's trajectory drawn, and paper rows that say which
configuration they are."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from searchers.loop import search_context
from searchers.spec import resolve_search
from searchers.splits import SplitData, recalibrate_batchnorm
from tests.test_pipeline import wcbench_run
from wcbench.cli import main
from wcbench.files import read_jsonl
from wcbench.report.build import paper_configuration
from wcbench.runs import RunDir

OURS_TINY = [
    "--set", "search.split_seed=0", "--set", "search.strategy.pretrain_iters=4",
    "--set", "search.strategy.aux_pretrain_iters=4", "--set", "search.strategy.reference_iters=4",
    "--set", "search.strategy.tester=gan", "--set", "search.strategy.probe_iters=0",
]  # fmt: skip


def test_run_pretrains_the_tester_once_and_a_second_seed_reuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WCBENCH_DATA", str(tmp_path / "data"))
    runs = tmp_path / "runs"
    assert main(wcbench_run(runs, "--seeds", "1-2", *OURS_TINY, searcher="ours-darts1st")) == 0
    out = capsys.readouterr().out
    notes = [RunDir(runs, "digits", "ours-darts1st", s).read_manifest()["stages"]["tester"] for s in (1, 2)]
    assert notes[0]["status"] == notes[1]["status"] == "done"
    assert notes[0]["note"].startswith("pretrained now, cache ")
    assert notes[1]["note"] == "cache " + notes[0]["note"].removeprefix("pretrained now, cache ")
    assert len(list((tmp_path / "data" / "testers").glob("tester-gan-digits-*.pt"))) == 1
    assert not list((tmp_path / "data" / "testers").glob("*partial*"))  # nor its checksum is left
    # the run's summary says what the search did: supernet accuracy, reference classifier on G's data
    assert "supernet val acc" in out and "reference acc." in out and "pretrained" in out
    history = read_jsonl(RunDir(runs, "digits", "ours-darts1st", 1).search_dir / "history.jsonl")
    strategy = history[-1]["strategy"]
    assert 0.0 <= strategy["reference_accuracy"] <= 1.0
    assert strategy["reference_accuracy"] == pytest.approx(1 - strategy["reference_error"])
    assert strategy["curves_png"] == "tester/curves.png"
    png = RunDir(runs, "digits", "ours-darts1st", 1).search_dir / "tester" / "curves.png"
    assert png.read_bytes().startswith(b"\x89PNG")


def test_a_strategy_without_a_tester_has_no_tester_stage(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert main(wcbench_run(runs, "--seeds", "1")) == 0
    assert "tester" not in RunDir(runs, "digits", "darts1st", 1).read_manifest()["stages"]


def test_an_untrained_tester_is_named_on_the_leaderboard_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WCBENCH_DATA", str(tmp_path / "data"))
    runs = tmp_path / "runs"
    scratch = ["--set", "search.strategy.tester_init=scratch", *OURS_TINY]
    assert main(wcbench_run(runs, "--seeds", "1", *scratch, searcher="ours-darts1st")) == 0
    assert "tester" not in RunDir(runs, "digits", "ours-darts1st", 1).read_manifest()["stages"]
    from wcbench.report import build_boards
    from wcbench.results import collect_runs

    labels = {r.label for board in build_boards(collect_runs(runs), runs_dir=runs) for r in board.rows}
    assert "ours-darts1st (untrained tester)" in labels


def test_search_at_another_resolution_on_a_fixed_split() -> None:
    spec = resolve_search(
        "ours-darts2nd", "digits", "smoke", 3, overrides={"resolution": 16, "split_seed": 0}
    )
    ctx = search_context(spec, "cpu")
    assert tuple(ctx.train.images.shape[-2:]) == (16, 16) and ctx.train.images.dtype == torch.uint8
    other = search_context(
        resolve_search("darts1st", "digits", "smoke", 5, overrides={"split_seed": 0}), "cpu"
    )
    assert torch.equal(ctx.train.dataset_indices, other.train.dataset_indices)  # the split ignores the seed
    assert tuple(other.train.images.shape[-2:]) == (32, 32)
    mine = search_context(resolve_search("darts1st", "digits", "smoke", 5), "cpu")
    assert not torch.equal(mine.train.dataset_indices, other.train.dataset_indices)  # default: the seed's


def test_bn_recalibration_makes_running_statistics_the_data_statistics() -> None:
    """After recalibration, eval mode normalises with the mean and variance of the data it saw, not
    with running averages that lag; the global RNG is left as it was."""
    torch.manual_seed(0)
    images = (torch.rand(40, 3, 8, 8) * 255).to(torch.uint8)
    labels, indices = torch.zeros(40, dtype=torch.long), torch.arange(40)
    data = SplitData(images, labels, indices, [0.5] * 3, [0.25] * 3, "cpu", augment=False)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
    x = torch.cat([b[1][0] for b in data.eval_batches(40)])
    feats = model[0](x).detach()
    state = torch.get_rng_state()
    recalibrate_batchnorm(model, data, 40)  # one batch: the statistics are exactly the data's
    assert torch.equal(torch.get_rng_state(), state)
    bn = model[1]
    assert torch.allclose(bn.running_mean, feats.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(bn.running_var, feats.var((0, 2, 3), unbiased=True), rtol=1e-3)
    assert bn.momentum == 0.1 and model.training  # momentum and mode restored


def test_quick_presets_search_digits_at_16_pixels_with_recalibrated_bn() -> None:
    for searcher in ("ours-pdarts", "ours-darts2nd", "darts1st", "pcdarts", "prdarts"):
        spec = resolve_search(searcher, None, "quick")
        cfg = spec.algorithm_config
        assert (
            spec.dataset == "digits" and cfg.resolution == 16 and cfg.bn_recalibrate and cfg.split_seed == 0
        )
        assert not cfg.augment  # a flipped digit is another digit
    assert resolve_search("ours-pdarts", None, "quick").strategy_config.tester_init == "cache"
    paper = resolve_search("ours-pdarts", "cifar10", "paper").algorithm_config
    assert paper.resolution is None and not paper.bn_recalibrate and paper.augment


def test_paper_settings_that_the_paper_contradicts_are_choices() -> None:
    base = resolve_search("ours-darts2nd", "cifar10", "paper")
    assert base.algorithm_config.epochs == 50 and not base.strategy_config.cr_halve_epochs
    halved = resolve_search("ours-darts2nd", "cifar10", "paper", overrides={"strategy.cr_halve_epochs": True})
    assert halved.algorithm_config.epochs == 25  # Sec. 3.3 "from 50 to 25"
    ncr = {"strategy.cr_halve_epochs": True, "strategy.cost_reduction": False}
    assert resolve_search("ours-darts2nd", "cifar10", "paper", overrides=ncr).algorithm_config.epochs == 50
    mine = {"strategy.cr_halve_epochs": True, "epochs": 7}  # the user's --set wins
    assert resolve_search("ours-darts2nd", "cifar10", "paper", overrides=mine).algorithm_config.epochs == 7
    assert (
        resolve_search("ours-pcdarts", "imagenet", "imagenet").algorithm_config.batch_size == 768
    )  # Table 31
    assert resolve_search("pcdarts", "imagenet", "imagenet").algorithm_config.batch_size == 1024
    assert not base.strategy_config.unroll_first_order and not base.strategy_config.decov_drives_tester


def test_unrolled_first_order_step_evaluates_at_w_prime(tmp_path: Path) -> None:
    """App. A's W' = W - eta grad for a first-order algorithm changes the architecture's gradient."""
    from searchers.loop import run_search

    over = {"epochs": 1, "max_steps_per_epoch": 2, "strategy.tester_init": "scratch",
            "strategy.reference_iters": 0, "strategy.hyper_every": 1, "lr": 0.5,
            "strategy.probe_iters": 0}  # fmt: skip
    run_search("ours-darts1st", "digits", "smoke", 0, "darts", tmp_path / "a", over, "cpu", progress=False)
    run_search("ours-darts1st", "digits", "smoke", 0, "darts", tmp_path / "b",
                   {**over, "strategy.unroll_first_order": True}, "cpu", progress=False)  # fmt: skip
    ha = read_jsonl(tmp_path / "a" / "history.jsonl")[-1]
    hb = read_jsonl(tmp_path / "b" / "history.jsonl")[-1]
    assert ha["arch"] != hb["arch"] and ha["arch_loss"] != hb["arch_loss"]


def test_each_paper_row_of_the_method_names_its_configuration() -> None:
    assert paper_configuration("Ours-pdarts", "ours-pdarts") == (
        "configuration: --searcher ours-pdarts (augmentation tester)"
    )
    assert paper_configuration("CR-pcdarts", "ours-pcdarts") == (
        "configuration: --searcher ours-pcdarts --set strategy.tester=gan (FQ-GAN tester)"
    )
    assert "strategy.generator=sngan" in paper_configuration("SNGAN-pcdarts", "ours-pcdarts")
    assert paper_configuration("NCR-darts2nd", "ours-darts2nd") == (
        "configuration: --searcher ours-darts2nd --set strategy.cost_reduction=false (FQ-GAN tester)"
    )
    assert paper_configuration("PNAS", "") == "" and paper_configuration("DARTS", "darts2nd") == ""


def test_paper_rows_on_the_board_carry_their_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["leaderboard", "--benchmark", "search_cost", "--format", "json", "--runs-dir", "nowhere"]) == 0
    )
    text = capsys.readouterr().out
    assert '"configuration": "--searcher ours-darts2nd --set strategy.cost_reduction=false' in text
