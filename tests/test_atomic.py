"""Atomic writes through wcbench.runs: whole file or none, the user's umask, no temp files left over."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from wcbench.files import atomic_path, atomic_writer


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _umask_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def test_atomic_writer_streams_and_keeps_the_umask_mode(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "labels.npy"
    with atomic_writer(target) as fh:
        np.save(fh, np.arange(5))
        assert not target.exists()  # nothing at the final name until the write succeeded
    assert np.load(target).tolist() == [0, 1, 2, 3, 4]
    assert _mode(target) == _umask_mode()  # not mkstemp's 0600
    assert [p.name for p in target.parent.iterdir()] == ["labels.npy"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_writer(target) as fh:
        fh.write(b"half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_atomic_path_for_memory_maps(tmp_path: Path) -> None:
    target = tmp_path / "fog.npy"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(2, 3))
        out[:] = 7
        out.flush()
        del out
    assert np.load(target).sum() == 42 and _mode(target) == _umask_mode()
    with pytest.raises(ValueError), atomic_path(tmp_path / "bad.npy") as tmp:
        tmp.write_bytes(b"partial")
        raise ValueError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fog.npy"]


def test_genotype_plot_is_written_atomically_with_the_umask_mode(tmp_path: Path) -> None:
    from wcbench.genotype import PUBLISHED
    from wcbench.plot import plot_genotype

    out = plot_genotype(PUBLISHED["DARTS_V2"], tmp_path / "g.svg")
    assert out.read_text().lstrip().startswith(("<?xml", "<svg"))
    assert _mode(out) == _umask_mode()
    assert [p.name for p in tmp_path.iterdir()] == ["g.svg"]
