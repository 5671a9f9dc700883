"""`wcbench data corrupt` (-C layout of a CIFAR-sized dataset) and `wcbench data worst-case` (subsets)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from wcbench.cli.app import app, console, console_err, print_json
from wcbench.cli.options import SEED_DEFAULT, option
from wcbench.config import one_stage, parse_overrides
from wcbench.errors import ConfigError

data_app = typer.Typer(
    help="Derived data: corruption variants (-C) and worst-case test subsets.", no_args_is_help=True
)
worst_app = typer.Typer(
    help="Worst-case test subsets (paper Table 1): build with a reference committee, import, show.",
    no_args_is_help=True,
)
imagenet_c_app = typer.Typer(
    help="ImageNet-C of your own ImageNet-layout data (official make_imagenet_c.py severities).",
    no_args_is_help=True,
)
data_app.add_typer(worst_app, name="worst-case")
data_app.add_typer(imagenet_c_app, name="imagenet-c")
app.add_typer(data_app, name="data")


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    from wcbench.corruptions import ALL_CORRUPTIONS

    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in ALL_CORRUPTIONS]
    if unknown or not names:
        raise ConfigError(f"unknown corruption(s) {unknown or text!r}; known: {', '.join(ALL_CORRUPTIONS)}")
    return names


@data_app.command("corrupt")
def corrupt_cmd(
    dataset: str = option("--dataset", ..., "CIFAR-sized."),
    out: Path | None = option(
        "--out", None, "Default: <data root>/<dataset>-C, where `cifar-c` looks.", file_okay=False
    ),
    split: str = option("--split", "test", "Here: the split to corrupt."),
    seed: int = option("--seed", SEED_DEFAULT, "The same seed gives the same bytes."),
    corruptions: str | None = option("--corruptions"),
    workers: int = option("--workers", 1, "", min=1),
    data_root: str | None = option("--data-root"),
    download: bool = option("--download", False),
    as_json: bool = option("--json", False, "Here: the manifest."),
) -> None:
    """Write the official CIFAR-10-C layout (<corruption>.npy, labels.npy) for a CIFAR-sized dataset."""
    from evaluators.cifar_c import default_c_root
    from wcbench.corruptions import write_c_layout
    from wcbench.data import get_dataset

    names = _names(corruptions)
    image_size = 32 if dataset.startswith("imagefolder:") else None
    ds = get_dataset(dataset, split, data_root, download, image_size=image_size)
    target = out or default_c_root(dataset, data_root)
    start = time.perf_counter()

    def progress(name: str, severity: int, seconds: float) -> None:
        if not as_json:  # severity 0: the five severities of one corruption, from a worker process
            done = len(ds) * (5 if severity == 0 else 1)
            which = "severities 1-5" if severity == 0 else f"severity {severity}"
            console_err.print(f"{name} {which}: {done / max(seconds, 1e-9):,.0f} images/s")

    manifest = write_c_layout(ds, target, seed, names, progress, workers=workers, source=f"{dataset} {split}")
    if as_json:
        print_json({"out": str(target), **manifest})
        return
    total = time.perf_counter() - start
    console.print(
        f"wrote {len(manifest['corruptions'])} corruptions x 5 severities of {len(ds)} {dataset} {split} "
        f"images to {target} in {total:.1f} s"
    )


@worst_app.command("build")
def build_cmd(
    dataset: str = option("--dataset", ..., "The paper's: cifar100."),
    per_class: int = option("--per-class", 20, "", min=1),
    committee: str = option("--committee", "paper"),
    seed: int = option("--seed", SEED_DEFAULT, "Here: the committee's."),
    split: str = option("--split", "test", "Here: the split to pick from."),
    file: Path | None = option(
        "--file",
        None,
        "Here: the subset file (default: <data root>/worst-case/<dataset>.json, where the scorer looks).",
    ),
    overrides: list[str] | None = option(
        "--set", None, "One stage: committee, e.g. --set epochs=30.", metavar="STAGE.KEY=VALUE"
    ),
    data_root: str | None = option("--data-root"),
    download: bool = option("--download", False),
    device: str | None = option("--device"),
    force: bool = option("--overwrite", False),
    as_json: bool = option("--json", False, "Here: the subset record."),
) -> None:
    """Train a reference committee on the train split and store the worst-case test subset."""
    from evaluators.worst_case import build_worst_case_subset, default_subset_path, read_subset

    target = file or default_subset_path(dataset, data_root)
    if target.is_file() and not force:
        existing = read_subset(target)
        raise ConfigError(
            f"a subset already exists at {target} (sha256 {existing.sha256[:12]}..., "
            f"{len(existing.indices)} images): every method must be scored on the same images; pass --force "
            f"to replace it or --file for another file"
        )
    subset = build_worst_case_subset(
        dataset,
        per_class=per_class,
        committee=committee,
        overrides=one_stage(parse_overrides(overrides), "committee"),
        seed=seed,
        split=split,
        data_root=data_root,
        download=download,
        device=device,
        out=target,
        log=None if as_json else console_err.print,
    )
    _show(subset, as_json)


@worst_app.command("import")
def import_cmd(
    dataset: str = option("--dataset", ..., "Here: the dataset the indices refer to."),
    indices: Path = option("--indices", ...),
    provenance: str = option("--provenance", ...),
    sha256: str | None = option("--sha256"),
    split: str = option("--split", "test", "Here: the split the indices refer to."),
    file: Path | None = option(
        "--file", None, "Here: the subset file (default: <data root>/worst-case/<dataset>.json)."
    ),
    data_root: str | None = option("--data-root"),
    force: bool = option("--overwrite", False),
    as_json: bool = option("--json", False, "Here: the subset record."),
) -> None:
    """Store a user-supplied list of test indices (with provenance and checksum) as the shared subset."""
    from evaluators.worst_case import default_subset_path, import_subset

    target = file or default_subset_path(dataset, data_root)
    if target.is_file() and not force:
        raise ConfigError(
            f"a subset already exists at {target}; pass --overwrite to replace it or --file for another file"
        )
    subset = import_subset(
        indices, dataset, provenance, split=split, sha256=sha256, out=target, data_root=data_root
    )
    _show(subset, as_json)


@worst_app.command("show")
def show_cmd(
    dataset: str | None = option("--dataset", None, "Here: show its default subset."),
    file: Path | None = option("--file", None, "Here: the subset file to show."),
    data_root: str | None = option("--data-root"),
    as_json: bool = option("--json", False, "Here: the subset record."),
) -> None:
    """Print a subset's dataset, size, checksum and provenance (verifying the checksum)."""
    from evaluators.worst_case import default_subset_path, read_subset

    if (dataset is None) == (file is None):
        raise ConfigError("give --dataset D or --file PATH")
    path = file or default_subset_path(dataset, data_root)  # type: ignore[arg-type]
    _show(read_subset(path), as_json)


def _show(subset, as_json: bool) -> None:  # noqa: ANN001 - WorstCaseSubset (imported lazily)
    record = subset.to_json()
    record["path"] = str(subset.path)
    if as_json:
        print_json(record)
        return
    record.pop("indices")
    console.print(
        f"{subset.path}: {len(subset.indices)} of {subset.num_examples_total} {subset.dataset} "
        f"{subset.split} images, sha256 {subset.sha256}"
    )
    console.print(f"provenance: {subset.provenance}")


@imagenet_c_app.command("build")
def imagenet_c_build_cmd(
    src: Path = option("--src", ..., file_okay=False),
    out: Path = option("--out", ..., "Here: <out>/<corruption>/<severity>/<wnid>/*.JPEG.", file_okay=False),
    seed: int = option("--seed", SEED_DEFAULT, "The same seed gives the same images."),
    corruptions: str | None = option("--corruptions", None, "Here: default the benchmark's 15."),
    severities: str = option("--severities", "1,2,3,4,5"),
    workers: int = option("--workers", 1, "Here: one (corruption, severity) each.", min=1),
    as_json: bool = option("--json", False, "Here: the manifest."),
) -> None:
    """Write ImageNet-C (224x224, official severities and layout) of the images of --src; rerun resumes."""
    from wcbench.corruptions.imagenet import build_imagenet_c

    names = _names(corruptions)
    try:
        sev = [int(v) for v in severities.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--severities takes comma-separated integers 1..5, got {severities!r}") from None
    start = time.perf_counter()

    def progress(name: str, severity: int, written: int, skipped: int) -> None:
        if not as_json:
            note = f" ({skipped} already there)" if skipped else ""
            console_err.print(f"{name} severity {severity}: {written} images written{note}")

    manifest = build_imagenet_c(
        src, out, seed=seed, corruptions=names, severities=sev, workers=workers, progress=progress
    )
    if as_json:
        print_json({"out": str(out), **manifest})
        return
    console.print(
        f"ImageNet-C of {manifest['num_images']} images ({manifest['num_classes']} classes) in {out} "
        f"in {time.perf_counter() - start:.1f} s; score it with --set imagenet-c.root={out}"
    )
