"""RobustBench interoperability: import its package as released, load its checkpoints, export model info.

RobustBench 1.1.1 (the PyPI release) is used as is, by its own code; three things stand between it
and an import on a current Python environment, and :func:`import_robustbench` deals with each:

- ``robustbench/loaders.py`` imports ``pkg_resources``, which setuptools 81 removed: the
  ``robustbench`` extra pins ``setuptools<81``; a missing ``pkg_resources`` is a one-line error.
- ``robustbench/eval.py`` imports the top-level ``autoattack`` (fra31/auto-attack installed from
  GitHub); PyPI ships the same code as ``pyautoattack`` (which robustbench itself requires). When no
  ``autoattack`` is importable, ``pyautoattack`` and ``pyautoattack.state`` are registered under
  those names in ``sys.modules`` before robustbench is imported; nothing is written to disk.
- torchattacks 3.5.1's wheel carries an old partial copy of robustbench as a top-level
  ``robustbench/``; whichever of the two wheels is installed last owns the shared files. The files
  on disk are checked against robustbench's own install record (``RECORD`` hashes); a mismatch
  names the fix (reinstall robustbench after torchattacks).

:func:`load_robustbench_model` calls ``robustbench.utils.load_model(model_name, model_dir, dataset,
threat_model)`` on a checkpoint already on disk (``<model_dir>/<dataset>/<threat>/<name>.pt``, the
layout robustbench downloads into) and never lets it download; ``torch.load`` runs with
``weights_only`` forced on. The few models robustbench 1.1.1 takes from timm's hub instead
(``timm.is_model("<name>_<dataset>_<threat>")``: the XCiT ones) are refused with a one-line error.
:func:`model_info` writes a score in robustbench's ``model_info/<dataset>/<threat>/<name>.json`` format.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib
import importlib.metadata as metadata
import os
import pickle
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from wcbench.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from torch import nn

DATASETS = ("cifar10", "cifar100", "imagenet")
THREATS = ("Linf", "L2", "corruptions", "corruptions_3d")
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet": 1000}
INPUT_SIZE = {"cifar10": 32, "cifar100": 32, "imagenet": 224}
INSTALL = (
    'pip install "wcbench[robustbench]" && pip install --no-deps --force-reinstall robustbench==1.1.1 '
    "(see the README, RobustBench)"
)

# the fields of robustbench's model_info/<dataset>/<threat>/<name>.json (robustbench.utils.ModelInfo, 1.1.1)
MODEL_INFO_FIELDS = (
    "link", "name", "authors", "additional_data", "number_forward_passes", "dataset", "venue",
    "architecture", "eps", "clean_acc", "reported", "corruptions_acc", "corruptions_acc_3d",
    "corruptions_mce", "corruptions_mce_3d", "autoattack_acc", "footnote",
)  # fmt: skip


def _record_mismatches(dist: str, package: str) -> list[str]:
    """Files of ``package`` whose content differs from what ``dist``'s install RECORD says."""
    bad = []
    for f in metadata.files(dist) or []:
        name = str(f)
        if not (name.startswith(f"{package}/") and name.endswith(".py") and f.hash):
            continue
        try:
            data = Path(str(f.locate())).read_bytes()
        except OSError:
            bad.append(name)
            continue
        digest = base64.urlsafe_b64encode(hashlib.new(f.hash.mode, data).digest()).rstrip(b"=").decode()
        if digest != f.hash.value:
            bad.append(name)
    return bad


def import_robustbench() -> ModuleType:
    """``robustbench`` (the PyPI release), imported with the compatibility steps above; one-line errors."""
    try:
        version = metadata.version("robustbench")
    except metadata.PackageNotFoundError:
        raise ConfigError(
            f"RobustBench is not installed (a bare `robustbench/` folder is torchattacks' vendored copy); "
            f"{INSTALL}"
        ) from None
    bad = _record_mismatches("robustbench", "robustbench")
    if bad:
        raise ConfigError(
            f"robustbench {version}'s files were overwritten ({bad[0]} and {len(bad) - 1} more; torchattacks "
            f"3.5.1 ships an old copy): pip install --no-deps --force-reinstall robustbench=={version}"
        )
    if importlib.util.find_spec("autoattack") is None:
        try:
            paa = importlib.import_module("pyautoattack")
            state = importlib.import_module("pyautoattack.state")
        except ModuleNotFoundError:
            raise ConfigError(f"robustbench needs AutoAttack (pyautoattack); {INSTALL}") from None
        sys.modules.setdefault("autoattack", paa)
        sys.modules.setdefault("autoattack.state", state)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
            return importlib.import_module("robustbench")
    except ModuleNotFoundError as exc:
        if exc.name == "pkg_resources":
            raise ConfigError(
                "robustbench 1.1.1 imports pkg_resources, which setuptools >= 81 removed: "
                'pip install "setuptools<81"'
            ) from None
        raise ConfigError(f"robustbench cannot be imported ({exc}); {INSTALL}") from None


def parse_name(name: str) -> tuple[str, str, str]:
    """``cifar10/Linf/Standard`` -> (dataset, threat model, model name), checked."""
    parts = name.split("/")
    if len(parts) != 3 or not all(parts):
        raise ConfigError(
            f"robustbench model {name!r}: write robustbench:<dataset>/<threat model>/<name>, "
            f"e.g. robustbench:cifar10/Linf/Standard"
        )
    dataset, threat, model_name = parts
    if dataset not in DATASETS:
        raise ConfigError(f"robustbench dataset {dataset!r} is not one of {', '.join(DATASETS)}")
    if threat not in THREATS:
        raise ConfigError(f"robustbench threat model {threat!r} is not one of {', '.join(THREATS)}")
    return dataset, threat, model_name


def checkpoint_paths(model_dir: str | os.PathLike[str], dataset: str, threat: str, name: str) -> list[Path]:
    """Where robustbench keeps ``name``'s checkpoint(s): ``<dir>/<dataset>/<threat>/<name>.pt``
    (ensembles: ``<name>.pt_m0.pt``, ``_m1.pt``, ...). Corruption models live under ``corruptions``."""
    folder = Path(model_dir) / dataset / threat.replace("_3d", "")
    return [folder / f"{name}.pt"]


@contextlib.contextmanager
def _weights_only_loads() -> Iterator[None]:
    """Every ``torch.load`` in the block runs with weights_only=True, whatever the call site passes."""
    old = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = old


def load_robustbench_model(name: str, model_dir: str | os.PathLike[str] | None) -> nn.Module:
    """``robustbench.utils.load_model`` on a local checkpoint (``name`` = ``<dataset>/<threat>/<model>``).

    The model takes images in [0, 1] (RobustBench models normalise inside). Nothing is downloaded:
    a missing checkpoint is a one-line error naming the path robustbench would read.
    """
    dataset, threat, model_name = parse_name(name)
    rb = import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    root = Path(model_dir) if model_dir is not None else Path("models")
    zoo = model_dicts[BenchmarkDataset(dataset)][ThreatModel(threat.replace("_3d", ""))]
    if model_name not in zoo:
        import difflib

        close = difflib.get_close_matches(model_name, list(zoo), n=1)
        maybe = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"robustbench has no model {model_name!r} for {dataset}/{threat}{maybe}")
    entry = zoo[model_name]
    timm_name = f"{model_name.lower().replace('-', '_')}_{dataset}_{threat.replace('_3d', '').lower()}"
    if rb.utils.timm.is_model(timm_name):
        raise ConfigError(
            f"robustbench 1.1.1 fetches {model_name} from timm's hub ({timm_name}), not from --model-dir; "
            f"wcbench never downloads: score it as a module:function model that builds it from your file"
        )
    paths = checkpoint_paths(root, dataset, threat, model_name)
    if isinstance(entry.get("gdrive_id"), list):
        paths = [Path(f"{paths[0]}_m{i}.pt") for i in range(len(entry["gdrive_id"]))]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ConfigError(
            f"no RobustBench checkpoint at {missing[0]}; wcbench never downloads: put the file robustbench "
            f"downloads there (or pass --model-dir DIR holding <dataset>/<threat>/<name>.pt)"
        )
    import torch

    with _weights_only_loads():
        try:
            model = rb.utils.load_model(model_name, str(root), dataset, threat)
        except (RuntimeError, KeyError, EOFError, ValueError, OSError, pickle.UnpicklingError) as exc:
            first = " ".join(str(exc).split())[:200]
            raise CheckpointError(f"{paths[0]} does not load as RobustBench's {name} ({first})") from exc
    if not isinstance(model, torch.nn.Module):
        raise CheckpointError(f"robustbench returned {type(model).__name__} for {name}, not a module")
    return model.eval()


# --------------------------------------------------------------------------------------------------
# model info export


def _acc(scores: Mapping[str, Mapping[str, Any]], scorer: str, metric: str) -> float | None:
    rec = scores.get(scorer)
    value = (rec or {}).get("metrics", {}).get(metric, {}).get("value") if rec else None
    return None if value is None else round(float(value), 2)


def model_info(
    scores: Mapping[str, Mapping[str, Any]],
    model: Mapping[str, Any] | None,
    *,
    name: str,
    threat: str,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A RobustBench ``model_info`` record (every field of ``robustbench.utils.ModelInfo``) from wcbench
    score records (``scorer name -> record``) of one model.

    ``clean_acc``: ``clean`` top-1 accuracy (else AutoAttack's / the attacks' clean accuracy);
    ``autoattack_acc``: the ``autoattack`` score, with its ``eps`` written as robustbench does
    (``"8/255"``); for ``corruptions``, ``corruptions_acc`` = 100 - ``cifar-c``'s mean corruption
    error. ``reported`` repeats the measured headline number; what wcbench cannot know (link,
    authors, venue) is an empty string for the submitter to fill. Accuracies are strings with two
    decimals, as in robustbench's own files.
    """
    if threat not in THREATS:
        raise ConfigError(f"threat model {threat!r} is not one of {', '.join(THREATS)}")
    aa = scores.get("autoattack") or {}
    eps = (aa.get("params") or {}).get("eps") if isinstance(aa, Mapping) else None
    clean = _acc(scores, "clean", "top1_acc")
    if clean is None:
        clean = _acc(scores, "autoattack", "clean_acc")
    if clean is None:
        clean = _acc(scores, "attacks", "clean_acc")
    first = next(iter(scores.values()), {}) if scores else {}
    model = model or {}
    info: dict[str, Any] = dict.fromkeys(MODEL_INFO_FIELDS)
    info.update(
        link="",
        name=name,
        authors="",
        additional_data=False,
        number_forward_passes=1,
        dataset=str(model.get("dataset") or first.get("trained_on") or first.get("dataset") or ""),
        venue="",
        architecture=str(model.get("architecture") or model.get("spec") or ""),
        clean_acc=_text(clean),
        footnote="measured with wcbench",
    )
    if threat.startswith("corruptions"):
        mce = _acc(scores, "cifar-c", "mean_corruption_error")
        suffix = "_3d" if threat.endswith("_3d") else ""
        info[f"corruptions_acc{suffix}"] = _text(None if mce is None else 100.0 - mce)
        info["reported"] = info[f"corruptions_acc{suffix}"]
    else:
        info["eps"] = _eps_text(float(eps)) if eps is not None else None
        info["autoattack_acc"] = _text(_acc(scores, "autoattack", "autoattack_acc"))
        info["reported"] = info["autoattack_acc"]
    unknown = sorted(set(overrides or {}) - set(MODEL_INFO_FIELDS))
    if unknown:
        raise ConfigError(f"unknown model-info field(s) {unknown}; known: {', '.join(MODEL_INFO_FIELDS)}")
    info.update(dict(overrides or {}))
    return info


def _text(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _eps_text(eps: float) -> str:
    """8/255 as robustbench writes it ("8/255"); other radii as a plain decimal."""
    for den in (255, 256):
        num = eps * den
        if abs(num - round(num)) < 1e-6 and round(num) > 0:
            return f"{round(num)}/{den}"
    return f"{eps:g}"
