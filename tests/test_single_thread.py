"""Searches on one CPU thread (SLURM_CPUS_PER_TASK=1, a 1-CPU cgroup, OMP_NUM_THREADS=1).

On one intra-op thread, torch 2.14.1's oneDNN computes the weight gradient of small 1x1 convolutions
in channels_last past the end of its buffer (``jit_avx2_1x1_convolution_bwd_weights``): a PC-DARTS
search, whose partial-channel FactorizedReduce convolves 2-4 channels, aborted with glibc heap
corruption, and with two threads a search hung inside that kernel. The search loop keeps CPU runs in
the contiguous layout, as the retrain does (:func:`searchers.loop.use_channels_last`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from searchers.base import SearchConfig
from searchers.loop import use_channels_last
from tests.timeouts import hang_guard

ROOT = Path(__file__).resolve().parents[1]

SEARCH = """
import sys
import torch
import torch.nn.functional as F
import wcbench.data
from wcbench.cli import main

real = wcbench.data.get_dataset

def get_dataset(name, split="train", root=None, download=False, **kw):
    ds = real(name, split, root, download, **kw)
    small = F.interpolate(ds.images.float(), size=(8, 8), mode="area").round().to(torch.uint8)
    return type(ds)(ds.name, small, ds.labels, ds.classes, ds.mean, ds.std)

wcbench.data.get_dataset = get_dataset
tiny = ["epochs=2", "warmup_epochs=1", "batch_size=8", "init_channels=8", "layers=3",
        "max_steps_per_epoch=3", "max_examples=48", "eval_batch_size=48"]
args = ["search", "--searcher", "pcdarts", "--preset", "smoke", "--out", sys.argv[1]]
for s in tiny:
    args += ["--set", s]
sys.exit(main([*args, "--device", "cpu", "--no-progress"]))
"""


def test_channels_last_is_kept_off_on_cpus() -> None:
    cfg = SearchConfig()
    assert cfg.channels_last
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            assert not use_channels_last(cfg, torch.device("cpu"))
    finally:
        torch.set_num_threads(before)
    assert use_channels_last(cfg, torch.device("cuda"))
    assert not use_channels_last(cfg.model_copy(update={"channels_last": False}), torch.device("cuda"))


def test_a_pcdarts_search_on_one_thread_finishes(tmp_path: Path) -> None:
    # in a subprocess: the heap corruption aborts the process, which must fail this test, not kill pytest
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "WCBENCH_DATA": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", SEARCH, str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=hang_guard(600),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "out" / "genotype.json").is_file()
