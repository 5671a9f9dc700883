"""Training curves for the tools people watch: TensorBoard, behind the ``tensorboard`` extra.

Chosen with ``--log tensorboard`` (search, retrain, evaluate, run; the API's ``log=``) or the
environment variable ``WCBENCH_LOG=tensorboard`` (which a SLURM job inherits); ``none`` switches it
off. The search and the retrain open one :class:`Tracker` each and write, per epoch, their curves
(losses, accuracies, learning rate, the strategy's numeric statistics) and the tester's sample grid
(the PNG the `ours` strategy writes, Fig. 2) under ``<stage dir>/tensorboard/``, so
``tensorboard --logdir runs/`` shows every run. ``history.jsonl`` stays the record; these event files
are a view of it, appended as training goes (a resumed stage drops the events of the epochs it redoes).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wcbench.errors import ConfigError

ENV = "WCBENCH_LOG"
BACKENDS = ("tensorboard",)
OFF = ("", "none", "off")


def log_backends(log: str | None = None) -> tuple[str, ...]:
    """The backends named by ``log`` (comma-separated), else by ``$WCBENCH_LOG``; () for none.

    Checked before any work: an unknown name or a backend that is not installed is a one-line error.
    """
    text = os.environ.get(ENV, "") if log is None else log
    names = [n.strip().lower() for n in str(text).split(",") if n.strip().lower() not in OFF]
    source = f"{ENV}={text!r}" if log is None else f"--log {text!r}"
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise ConfigError(f"{source}: unknown logger {unknown[0]!r}; choose {', '.join(BACKENDS)} or none")
    if "tensorboard" in names and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(f"{source} needs TensorBoard: pip install 'wcbench[tensorboard]'")
    return tuple(dict.fromkeys(names))


class Tracker:
    """Per-epoch scalars and images of one stage (``search``, ``retrain``) to the chosen backends.

    With no backend every method is a no-op, so the loops call it unconditionally. ``start_step``:
    the epoch a resumed stage starts from; TensorBoard drops older events at or after it
    (``SummaryWriter(purge_step=...)``), so redone epochs are not drawn twice.
    """

    def __init__(self, out_dir: str | Path, stage: str, log: str | None = None, start_step: int = 0) -> None:
        self.stage = stage
        self.backends = log_backends(log)
        self._tb: Any = None
        if "tensorboard" in self.backends:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                raise ConfigError(
                    f"--log tensorboard needs TensorBoard: pip install 'wcbench[tensorboard]' ({exc})"
                ) from None
            self._tb = SummaryWriter(
                log_dir=str(Path(out_dir) / "tensorboard"), purge_step=start_step if start_step > 0 else None
            )

    def scalars(self, step: int, values: Mapping[str, Any]) -> None:
        """``values``' finite numbers (booleans and None skipped) as ``<stage>/<name>`` at ``step``."""
        if self._tb is None:
            return
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                continue
            self._tb.add_scalar(f"{self.stage}/{name}", float(value), step)
        self._tb.flush()

    def image(self, tag: str, png: str | Path, step: int) -> None:
        """The PNG file ``png`` (a sample grid) as image ``<stage>/<tag>`` at ``step``."""
        if self._tb is None:
            return
        import numpy as np
        from PIL import Image

        with Image.open(png) as im:
            pixels = np.asarray(im.convert("RGB"))
        self._tb.add_image(f"{self.stage}/{tag}", pixels, step, dataformats="HWC")
        self._tb.flush()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
