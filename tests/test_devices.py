"""Device choice and memory figures shared by the search loop and the evaluators."""

from __future__ import annotations

import pytest
import torch

from wcbench.devices import peak_memory_mb, resolve_device
from wcbench.errors import ConfigError


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="unknown device 'tpu0'"):
        resolve_device("tpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_it_names_the_fix() -> None:
    with pytest.raises(ConfigError, match="use --device cpu"):
        resolve_device("cuda")


def test_peak_memory_on_cpu_is_the_process_peak_rss() -> None:
    before, source = peak_memory_mb(torch.device("cpu"))
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    after, _ = peak_memory_mb(torch.device("cpu"))
    assert source == "process_peak_rss" and before > 0 and after >= before
    del block
