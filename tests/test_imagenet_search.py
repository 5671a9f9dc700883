"""PC-DARTS's ImageNet search (paper Table 31): the three-conv stem, per-class 10% / 2.5% subsets, and
a search split streamed from an ImageNet-layout folder with decoding in DataLoader workers."""

from __future__ import annotations

import json

import pytest
import torch

from searchers.supernet import Supernet
from wcbench.data.split import per_class_subsets
from wcbench.errors import ConfigError
from wcbench.genotype import Genotype
from wcbench.space import SPACES, FactorizedReduce

# tiny sizes for --preset imagenet: 32x32 crops (stem 32 -> 8), C = 4 (K = 2: 2 channels per op)
TINY = [
    "image_size=32",
    "batch_size=4",
    "eval_batch_size=6",
    "init_channels=4",
    "layers=3",
    "epochs=1",
    "warmup_epochs=0",
    "max_steps_per_epoch=2",
    "train_fraction=0.5",
    "val_fraction=0.25",
    "workers=0",
]


def test_imagenet_stem_is_pc_darts_three_stride_two_convs() -> None:
    """model_search_imagenet.py: stem0 = conv s2 (3C/2), BN, ReLU, conv s2 (3C), BN; stem1 = ReLU,
    conv s2, BN; the first cell reads stem0 (twice stem1's size) through a FactorizedReduce."""
    net = Supernet(8, 10, 3, SPACES["darts"], stem="imagenet")
    convs0 = [m for m in net.stem0 if isinstance(m, torch.nn.Conv2d)]
    convs1 = [m for m in net.stem1 if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in convs0] == [(3, 12, (2, 2)), (12, 24, (2, 2))]
    assert [(c.in_channels, c.out_channels, c.stride) for c in convs1] == [(24, 24, (2, 2))]
    assert [type(m).__name__ for m in net.stem1] == ["ReLU", "Conv2d", "BatchNorm2d"]
    assert isinstance(net.cells[0].preprocess0, FactorizedReduce)
    assert not hasattr(net, "stem")
    x = torch.randn(2, 3, 32, 32)
    s0 = net.stem0(x)
    assert s0.shape[-1] == 8 and net.stem1(s0).shape[-1] == 4  # 224 -> 56 -> 28 at full size
    w = torch.full((14, 8), 1 / 8)
    assert net(x, w, w).shape == (2, 10)


def test_cifar_stem_is_unchanged() -> None:
    net = Supernet(8, 10, 3, SPACES["darts"])
    assert isinstance(net.stem, torch.nn.Sequential) and not hasattr(net, "stem0")
    assert not isinstance(net.cells[0].preprocess0, FactorizedReduce)
    with pytest.raises(ConfigError, match="stem"):
        Supernet(8, 10, 3, SPACES["darts"], stem="mobile")


def test_per_class_subsets_sample_each_class_disjointly() -> None:
    labels = torch.arange(4).repeat_interleave(40)  # 4 classes x 40
    train, val = per_class_subsets(labels, 0, 0.1, 0.025)
    assert torch.bincount(labels[train]).tolist() == [4, 4, 4, 4]  # 10% of each class
    assert torch.bincount(labels[val]).tolist() == [1, 1, 1, 1]  # 2.5% of each class
    assert not set(train.tolist()) & set(val.tolist())
    again = per_class_subsets(labels, 0, 0.1, 0.025)
    assert torch.equal(again[0], train) and torch.equal(again[1], val)
    assert not torch.equal(per_class_subsets(labels, 1, 0.1, 0.025)[0], train)
    with pytest.raises(ConfigError, match="sum to at most 1"):
        per_class_subsets(labels, 0, 0.8, 0.5)


def test_imagenet_presets_follow_pc_darts_and_table_31() -> None:
    from searchers.spec import resolve_search

    plain = resolve_search("pcdarts", "imagefolder:x", "imagenet").algorithm_config
    assert (plain.batch_size, plain.lr, plain.lr_min, plain.arch_lr, plain.partial_channels) == (
        1024,
        0.5,
        0.0,
        6e-3,
        2,
    )
    assert (plain.network, plain.stream, plain.image_size, plain.arch_grad_clip) == (
        "imagenet",
        True,
        224,
        5.0,
    )
    assert (plain.train_fraction, plain.val_fraction, plain.warmup_epochs, plain.lr_warmup_epochs) == (
        0.1,
        0.025,
        35,
        5,
    )
    ours = resolve_search("ours-pcdarts", "imagefolder:x", "imagenet")
    assert ours.algorithm_config.batch_size == 768  # Table 31
    assert ours.strategy_config.b_lr == 6e-3
    cifar = resolve_search("pcdarts", "cifar10", "paper").algorithm_config
    assert (cifar.network, cifar.stream, cifar.train_fraction, cifar.arch_grad_clip) == (
        "cifar",
        False,
        None,
        0.0,
    )


def _streamed(tiny_imagenet, workers: int):  # noqa: ANN001, ANN202
    from searchers.loop import _streamed_splits
    from searchers.spec import resolve_search

    over = {s.split("=")[0]: s.split("=")[1] for s in TINY}
    over["workers"] = str(workers)
    spec = resolve_search("pcdarts", tiny_imagenet.name, "imagenet", seed=3, overrides=over)
    return _streamed_splits(spec, torch.device("cpu"), None)


def test_streamed_split_is_per_class_and_decodes_the_same_in_workers(tiny_imagenet) -> None:
    train, val, classes, channels = _streamed(tiny_imagenet, workers=0)
    assert (classes, channels, len(train), len(val)) == (3, 3, 12, 6)  # 50% / 25% of 8 per class
    assert torch.bincount(train.labels).tolist() == [4, 4, 4]
    assert not hasattr(train, "images")  # nothing held in memory but labels
    in_process = [(p, x, y) for p, (x, y) in train.epoch_batches(4, seed=3, epoch=1)]
    train_w, *_ = _streamed(tiny_imagenet, workers=1)
    in_workers = [(p, x, y) for p, (x, y) in train_w.epoch_batches(4, seed=3, epoch=1)]
    assert len(in_process) == 3
    for (p0, x0, y0), (p1, x1, y1) in zip(in_process, in_workers, strict=True):
        assert torch.equal(p0, p1) and torch.equal(y0, y1) and torch.equal(x0, x1)
        assert x0.shape == (4, 3, 32, 32) and torch.equal(y0, train.labels[p0])
    other = [x for _, (x, _) in train.epoch_batches(4, seed=3, epoch=2)]
    assert not torch.equal(other[0], in_process[0][1])  # a new order and new crops per epoch
    # evaluation view: centre crop, normalised with ImageNet's mean/std; raw: [0, 1]
    (pos, (xe, ye)), *_ = list(val.eval_batches(6))
    assert torch.equal(pos, torch.arange(6)) and xe.shape == (6, 3, 32, 32)
    raw, _ = val.raw(pos)
    assert torch.allclose(raw, xe * val.std + val.mean, atol=1e-5)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(val.batch(pos, g1)[0], val.batch(pos, g2)[0])


def _search(tmp_path, searcher: str, dataset: str, extra: list[str]) -> dict:  # noqa: ANN001
    from wcbench.cli import main

    out = tmp_path / searcher
    args = ["search", "--searcher", searcher, "--preset", "imagenet", "--dataset", dataset, "--out", str(out)]
    for s in TINY + extra:
        args += ["--set", s]
    assert main([*args, "--device", "cpu", "--no-progress"]) == 0
    SPACES["darts"].check_genotype(Genotype.from_json((out / "genotype.json").read_text()))
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    config = json.loads((out / "config.json").read_text())
    return {"history": history, "config": config}


def test_pcdarts_imagenet_search_streams_from_an_imagenet_folder(tmp_path, tiny_imagenet) -> None:
    run = _search(tmp_path, "pcdarts", tiny_imagenet.name, ["workers=1"])  # decoded in a worker process
    cfg = run["config"]["algorithm_config"]
    assert (cfg["network"], cfg["stream"], cfg["partial_channels"], cfg["workers"]) == (
        "imagenet",
        True,
        2,
        1,
    )
    assert [(r["steps"], r["arch_steps"]) for r in run["history"]] == [(2, 2)]
    assert run["history"][0]["val_loss"] > 0


def test_ours_pcdarts_imagenet_search_runs(tmp_path, tiny_imagenet) -> None:
    tiny_tester = ["strategy.aux_arch=small", "strategy.aux_width=4", "strategy.diag_samples=4"]
    tiny_tester += ["strategy.grid=0", "strategy.tester_init=scratch", "strategy.hyper_every=1"]
    run = _search(tmp_path, "ours-pcdarts", tiny_imagenet.name, tiny_tester)
    assert run["history"][-1]["arch_steps"] == 2
    assert run["history"][-1]["arch_loss"] is not None


def test_streaming_needs_an_image_folder(tmp_path) -> None:
    from wcbench.cli import main

    args = ["search", "--searcher", "pcdarts", "--preset", "imagenet", "--dataset", "digits"]
    assert main([*args, "--out", str(tmp_path / "s"), "--device", "cpu", "--no-progress"]) == 2


def test_arch_gradients_are_clipped_when_asked() -> None:
    """train_search_imagenet.py clips the architecture gradient norm to grad_clip (5) before Adam steps."""
    from types import SimpleNamespace

    from searchers.pcdarts import PCDarts, PCDartsConfig

    for clip, want in ((0.0, 200.0), (0.5, 0.5)):
        cfg = PCDartsConfig(init_channels=4, layers=3, partial_channels=2, arch_grad_clip=clip)
        algo = PCDarts(cfg, SPACES["darts"], 3)
        arch = algo.arch_parameters()
        ctx = SimpleNamespace(arch_optimizer=algo.make_arch_optimizer())
        grads = [torch.zeros_like(p) for p in arch]
        grads[0].view(-1)[0] = 200.0
        algo.apply_arch_grads(arch, grads, ctx)
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in arch]))
        assert float(norm) == pytest.approx(want, rel=1e-5)
