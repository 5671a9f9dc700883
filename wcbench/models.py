"""Models from outside wcbench: a spec (``timm:<arch>``, ``torchvision:<arch>``,
``robustbench:<dataset>/<threat>/<name>``, ``package.module:function``) or an ``nn.Module`` object,
with what the scorers need to feed it.

:func:`load_model_spec` builds the network of a spec and returns an :class:`ExternalModel`: the
module, the normalisation it expects (``mean``/``std`` of images in [0, 1]), its input resolution,
its number of outputs, and where its weights came from. Spec kinds are registered by decorator in
:data:`MODEL_KINDS`; a spec whose prefix is not a registered kind is ``module:function``.

- ``timm:<arch>``: ``timm.create_model(arch, num_classes=...)``; normalisation and input size from the
  model's own ``pretrained_cfg``. ``--weights FILE`` is a state dict (``torch.load(weights_only=True)``;
  a ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper and a DDP ``module.`` prefix are accepted);
  without it the network keeps its random initialisation, and the score says so.
- ``torchvision:<arch>``: ``torchvision.models.get_model(arch, weights=None, num_classes=...)``;
  normalisation and crop size from the architecture's default weights' transform metadata (the
  ImageNet mean/std, 224 for most), read without downloading; weights as for timm.
- ``robustbench:<dataset>/<threat>/<name>``: RobustBench's own ``load_model`` on a local model
  directory (:mod:`wcbench.robustbench`); the model takes [0, 1] images (mean 0, std 1).
- ``module:function`` (``my_pkg.nets:build``): ``function()`` returns an ``nn.Module``, or a tuple
  ``(module, {"mean": ..., "std": ..., "input_size": ..., "num_classes": ..., "classes": ...})``;
  without the mapping the same names are read as attributes of the module. Undeclared, the module
  takes [0, 1] images (mean 0, std 1, as RobustBench models do) at the scored dataset's resolution.

:class:`FeedAs` puts an external module behind the scorers' convention (images normalised with the
scored dataset's statistics): it undoes that normalisation, resizes to the model's resolution when
they differ, applies the model's own normalisation and returns the logits alone.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wcbench.errors import CheckpointError, ConfigError
from wcbench.files import sha256_file
from wcbench.registry import Registry

Triple = tuple[float, float, float]
UNIT_MEAN: Triple = (0.0, 0.0, 0.0)
UNIT_STD: Triple = (1.0, 1.0, 1.0)
EXTERNAL_PREFIX = "external-"
"""Runs of external models live in ``runs/<dataset>/external-<slug>/seed-<n>/``: the prefix labels them."""


@dataclass
class ExternalModel:
    """A network from outside wcbench and how to feed it.

    ``input_size`` None: any resolution (fed at the scored dataset's own). ``source`` is a JSON-able
    record of where it came from (spec, weights file and SHA-256, or "random init").
    """

    module: nn.Module
    kind: str
    name: str
    mean: Triple = UNIT_MEAN
    std: Triple = UNIT_STD
    input_size: int | None = None
    num_classes: int | None = None
    classes: list[str] | None = None
    weights: str | None = None
    weights_sha256: str | None = None
    notes: list[str] = field(default_factory=list)
    spec_args: dict[str, Any] | None = None  # load_model_spec's arguments, to load it again elsewhere

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def slug(self) -> str:
        """A directory-safe name: ``timm:resnet18`` -> ``timm-resnet18``."""
        text = f"{self.kind}-{self.name}".replace(":", "-").replace("/", "-")
        return re.sub(r"[^A-Za-z0-9_.=\-]", "_", text).strip("._-") or "model"

    @property
    def label(self) -> str:
        """The name it carries on the boards: ``external-<slug>``."""
        return EXTERNAL_PREFIX + self.slug

    def describe(self) -> dict[str, Any]:
        """What a score file records about the model (JSON)."""
        return {
            "external": True,
            "kind": self.kind,
            "spec": self.spec,
            "label": self.label,
            "architecture": self.name if self.kind in ("timm", "torchvision") else type(self.module).__name__,
            "mean": list(self.mean),
            "std": list(self.std),
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            "weights": self.weights,
            "weights_sha256": self.weights_sha256,
            "notes": list(self.notes),
        }


MODEL_KINDS: Registry[Callable[..., ExternalModel]] = Registry(
    "model kind",
    "write timm:<arch>, torchvision:<arch>, robustbench:<dataset>/<threat>/<name> or module:function",
)


@dataclass(frozen=True)
class LoadOptions:
    """What the user said besides the spec (None: the model's own, or the dataset's)."""

    weights: str | None = None
    model_dir: str | None = None
    num_classes: int | None = None


def _triple(values: Sequence[float] | None, what: str) -> Triple | None:
    if values is None:
        return None
    out = tuple(float(v) for v in values)
    if len(out) == 1:
        out = out * 3
    if len(out) != 3:
        raise ConfigError(f"{what} needs 1 or 3 numbers (R, G, B), got {list(values)}")
    if what == "std" and any(v <= 0 for v in out):
        raise ConfigError(f"std must be positive, got {list(out)}")
    return out  # type: ignore[return-value]


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``path`` (weights_only): plain, or under ``state_dict``/``model``; ``module.``
    prefixes of DataParallel/DDP stripped, as RobustBench's loader strips them."""
    from wcbench.checkpoints import load_checkpoint

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--weights {p}: no such file")
    obj: Any = load_checkpoint(p, map_location="cpu")
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{p} is not a state dict (name -> tensor); save model.state_dict()")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}


def load_weights(module: nn.Module, path: str | Path) -> str:
    """Load a state dict file into ``module`` (strict); returns the file's SHA-256."""
    state = read_state_dict(path)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:240]
        raise CheckpointError(
            f"{path} does not fit the network ({first}); is --num-classes right for these weights?"
        ) from exc
    return sha256_file(path)


def _with_weights(model: ExternalModel, opts: LoadOptions) -> ExternalModel:
    if opts.weights:
        model.weights = str(opts.weights)
        model.weights_sha256 = load_weights(model.module, opts.weights)
    else:
        model.notes.append("random init: no --weights given")
    return model


@MODEL_KINDS.register("timm")
def _timm(name: str, opts: LoadOptions) -> ExternalModel:
    """``timm.create_model(name)`` with its pretrained_cfg's mean, std and input size."""
    try:
        timm = importlib.import_module("timm")
    except ModuleNotFoundError:
        raise ConfigError('timm is not installed: pip install "wcbench[timm]"') from None
    if not timm.is_model(name):
        import difflib

        close = difflib.get_close_matches(name, timm.list_models(), n=1)
        maybe = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"timm has no model {name!r}{maybe}; see timm.list_models()")
    kwargs = {} if opts.num_classes is None else {"num_classes": int(opts.num_classes)}
    module = timm.create_model(name, pretrained=False, **kwargs)
    cfg = dict(getattr(module, "pretrained_cfg", None) or {})
    size = cfg.get("input_size") or (3, 224, 224)
    model = ExternalModel(
        module,
        "timm",
        name,
        mean=_triple(cfg.get("mean"), "mean") or (0.485, 0.456, 0.406),
        std=_triple(cfg.get("std"), "std") or (0.229, 0.224, 0.225),
        input_size=int(size[-1]),
        num_classes=int(getattr(module, "num_classes", 0) or 0) or opts.num_classes,
    )
    return _with_weights(model, opts)


@MODEL_KINDS.register("torchvision")
def _torchvision(name: str, opts: LoadOptions) -> ExternalModel:
    """``torchvision.models.get_model(name, weights=None)``; mean, std and crop size from the metadata
    of its default weights (nothing downloaded)."""
    from torchvision import models as tvm

    if name not in tvm.list_models():
        import difflib

        close = difflib.get_close_matches(name, tvm.list_models(), n=1)
        maybe = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"torchvision has no model {name!r}{maybe}; see torchvision.models.list_models()")
    kwargs = {} if opts.num_classes is None else {"num_classes": int(opts.num_classes)}
    module = tvm.get_model(name, weights=None, **kwargs)
    mean, std, size = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 224
    try:
        preset = tvm.get_model_weights(name).DEFAULT.transforms()
        mean, std = tuple(preset.mean), tuple(preset.std)
        size = int(preset.crop_size[0])
    except (ValueError, AttributeError, IndexError, TypeError):
        pass  # no weight metadata (or another transform): the ImageNet defaults
    model = ExternalModel(
        module, "torchvision", name, mean=mean, std=std, input_size=size, num_classes=opts.num_classes
    )  # type: ignore[arg-type]
    return _with_weights(model, opts)


@MODEL_KINDS.register("robustbench")
def _robustbench(name: str, opts: LoadOptions) -> ExternalModel:
    """RobustBench's ``load_model`` on ``--model-dir``; [0, 1] inputs at the benchmark's resolution."""
    from wcbench import robustbench as rbi

    if opts.weights:
        raise ConfigError(
            "robustbench models load from --model-dir DIR (<dataset>/<threat>/<name>.pt), not --weights"
        )
    dataset, threat, model_name = rbi.parse_name(name)
    module = rbi.load_robustbench_model(name, opts.model_dir)
    path = rbi.checkpoint_paths(opts.model_dir or "models", dataset, threat, model_name)[0]
    return ExternalModel(
        module,
        "robustbench",
        name,
        input_size=rbi.INPUT_SIZE[dataset],
        num_classes=rbi.NUM_CLASSES[dataset],
        weights=str(path),
        weights_sha256=sha256_file(path) if path.is_file() else None,
        notes=[f"loaded by robustbench.utils.load_model({model_name!r}, model_dir, {dataset!r}, {threat!r})"],
    )


def _declared(module: nn.Module, given: Mapping[str, Any] | None) -> dict[str, Any]:
    names = ("mean", "std", "input_size", "num_classes", "classes")
    if given is not None:
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ConfigError(f"unknown model declaration(s) {unknown}; use {', '.join(names)}")
        return dict(given)
    return {n: getattr(module, n) for n in names if getattr(module, n, None) is not None}


def from_module(
    obj: Any, kind: str = "object", name: str | None = None, opts: LoadOptions | None = None
) -> ExternalModel:
    """An :class:`ExternalModel` from an ``nn.Module`` or a ``(module, declarations)`` tuple."""
    opts = opts or LoadOptions()
    declared: Mapping[str, Any] | None = None
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[1], Mapping):
        obj, declared = obj
    if not isinstance(obj, nn.Module):
        raise ConfigError(
            f"{name or 'the model'} gave {type(obj).__name__}, not an nn.Module (or a (module, dict) tuple)"
        )
    d = _declared(obj, declared)
    size = d.get("input_size")
    if isinstance(size, Sequence):
        size = size[-1]
    classes = d.get("classes")
    model = ExternalModel(
        obj,
        kind,
        name or type(obj).__name__,
        mean=_triple(d.get("mean"), "mean") or UNIT_MEAN,
        std=_triple(d.get("std"), "std") or UNIT_STD,
        input_size=int(size) if size is not None else None,
        num_classes=int(d["num_classes"]) if d.get("num_classes") is not None else opts.num_classes,
        classes=[str(c) for c in classes] if classes is not None else None,
    )
    if opts.weights:
        return _with_weights(model, opts)
    return model


def _function(spec: str, opts: LoadOptions) -> ExternalModel:
    """``package.module:function``: the function's module (or (module, declarations) tuple)."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(
            f"--model {spec!r} is neither a directory nor a spec: use a retrain directory, timm:<arch>, "
            f"torchvision:<arch>, robustbench:<dataset>/<threat>/<name> or package.module:function"
        )
    try:
        mod = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"cannot import {module_name!r} for --model {spec} ({exc})") from None
    fn = mod
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise ConfigError(f"{module_name!r} has no {attr!r} (--model {spec})")
    if not callable(fn):
        raise ConfigError(f"--model {spec}: {attr!r} is not callable")
    built = fn() if not isinstance(fn, nn.Module) else fn
    return from_module(built, "module", spec, opts)


def load_model_spec(
    spec: str,
    weights: str | Path | None = None,
    *,
    model_dir: str | Path | None = None,
    num_classes: int | None = None,
    input_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> ExternalModel:
    """The network ``spec`` names, in eval mode on the CPU, with what the scorers need to feed it.

    ``num_classes`` sizes the head of timm/torchvision networks (default: their own, 1000);
    ``input_size``, ``mean`` and ``std`` override what the model declares.
    """
    opts = LoadOptions(str(weights) if weights else None, str(model_dir) if model_dir else None, num_classes)
    kind, sep, rest = spec.partition(":")
    if sep and kind in MODEL_KINDS:
        if not rest:
            raise ConfigError(f"--model {spec!r}: name the model after '{kind}:'")
        model = MODEL_KINDS.get(kind)(rest, opts)
    else:
        model = _function(spec, opts)
    model.spec_args = {
        "spec": spec,
        "weights": opts.weights,
        "model_dir": opts.model_dir,
        "num_classes": num_classes,
        "input_size": input_size,
        "mean": list(mean) if mean is not None else None,
        "std": list(std) if std is not None else None,
    }
    return override(model, input_size=input_size, mean=mean, std=std)


def override(
    model: ExternalModel,
    *,
    input_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> ExternalModel:
    """``model`` with the user's declarations in place of its own (each None: keep)."""
    if input_size is not None and int(input_size) < 1:
        raise ConfigError(f"input size must be positive, got {input_size}")
    changes: dict[str, Any] = {}
    if input_size is not None:
        changes["input_size"] = int(input_size)
    if mean is not None:
        changes["mean"] = _triple(mean, "mean")
    if std is not None:
        changes["std"] = _triple(std, "std")
    out = replace(model, **changes) if changes else model
    out.module.eval()
    return out


def output_count(module: nn.Module, size: int) -> int:
    """Number of outputs of ``module`` on one image of ``size`` (one CPU forward pass)."""
    was = module.training
    module.eval()
    try:
        with torch.no_grad():
            param = next(module.parameters(), None)
            out = module(torch.zeros(1, 3, size, size, device=param.device if param is not None else "cpu"))
    except Exception as exc:  # noqa: BLE001 - any failure here means the model cannot be fed this input
        raise ConfigError(
            f"the model fails on a 3x{size}x{size} input ({type(exc).__name__}: {exc}); "
            f"pass --input-size N or check the spec"
        ) from exc
    finally:
        module.train(was)
    out = out[0] if isinstance(out, tuple | list) else out
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise ConfigError("the model must return logits of shape (N, classes), or a tuple starting with them")
    return int(out.shape[1])


class FeedAs(nn.Module):
    """``module`` fed as it expects, from images normalised with ``(data_mean, data_std)``.

    Undoes the data normalisation (back to [0, 1]), resizes (bilinear, antialiased) to ``size`` when
    the images differ from it, normalises with the model's ``(mean, std)``, and returns the logits
    (the first element when the module returns a tuple). Differentiable, so attacks see through it.
    """

    def __init__(
        self,
        module: nn.Module,
        data_mean: Sequence[float],
        data_std: Sequence[float],
        mean: Sequence[float],
        std: Sequence[float],
        size: int | None,
    ) -> None:
        super().__init__()
        self.module = module
        self.size = size
        for key, v in (("data_mean", data_mean), ("data_std", data_std), ("mean", mean), ("std", std)):
            self.register_buffer(key, torch.tensor(list(v), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.data_std.to(x.dtype) + self.data_mean.to(x.dtype)
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            x = nn.functional.interpolate(
                x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True
            )
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out = self.module(x)
        return out[0] if isinstance(out, tuple | list) else out


def rebuild(args: Mapping[str, Any]) -> nn.Module:
    """The module of :attr:`ExternalModel.spec_args` loaded again (a cost measurement's child process)."""
    a = dict(args)
    return load_model_spec(a.pop("spec"), a.pop("weights"), **a).module
