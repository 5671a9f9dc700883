"""`wcbench data corrupt` (-C layout of a CIFAR-sized dataset) and `wcbench data worst-case` (subsets)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from wcbench.cli.app import app, console, console_err, print_json
from wcbench.config import parse_overrides
from wcbench.errors import ConfigError

data_app = typer.Typer(
    help="Derived data: corruption variants (-C) and worst-case test subsets.", no_args_is_help=True
)
worst_app = typer.Typer(
    help="Worst-case test subsets (paper Table 1): build with a reference committee, import, show.",
    no_args_is_help=True,
)
data_app.add_typer(worst_app, name="worst-case")
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
    dataset: str = typer.Option(
        ..., "--dataset", help="digits | cifar100 | cifar10 | imagefolder:<path> ..."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Output folder (default: <data root>/<dataset>-C, where `cifar-c` looks)."
    ),
    split: str = typer.Option("test", "--split", help="The split to corrupt."),
    seed: int = typer.Option(
        0, "--seed", min=0, max=2**31 - 1, help="Seed: the same seed gives the same bytes."
    ),
    corruptions: str | None = typer.Option(
        None, "--corruptions", help="Comma-separated subset (default: all 19, the 15 and the 4 extra)."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes, one corruption each."),
    data_root: str | None = typer.Option(None, "--data-root", help="Data root (default $WCBENCH_DATA)."),
    download: bool = typer.Option(False, "--download", help="Download the dataset if the library can."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
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
    dataset: str = typer.Option(..., "--dataset", help="cifar100 (the paper's) | cifar10 | digits | ..."),
    per_class: int = typer.Option(20, "--per-class", min=1, help="Worst-case images per class (paper: 20)."),
    committee: str = typer.Option(
        "paper", "--committee", help="paper (3 ResNet-18) | darts (3 DARTS_V2) | quick"
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=2**31 - 1, help="Seed of the committee."),
    split: str = typer.Option("test", "--split", help="The split to pick from."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Subset file (default: <data root>/worst-case/<dataset>.json, where the scorer looks).",
    ),
    overrides: list[str] | None = typer.Option(None, "--set", help="Committee setting: --set epochs=30."),
    data_root: str | None = typer.Option(None, "--data-root", help="Data root (default $WCBENCH_DATA)."),
    download: bool = typer.Option(False, "--download", help="Download the dataset if the library can."),
    device: str | None = typer.Option(
        None, "--device", help="cpu | cuda | cuda:N (default: cuda if available)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing subset file."),
    as_json: bool = typer.Option(False, "--json", help="Print the subset record as JSON."),
) -> None:
    """Train a reference committee on the train split and store the worst-case test subset."""
    from evaluators.worst_case import build_worst_case_subset, default_subset_path, read_subset

    target = out or default_subset_path(dataset, data_root)
    if target.is_file() and not force:
        existing = read_subset(target)
        raise ConfigError(
            f"a subset already exists at {target} (sha256 {existing.sha256[:12]}..., "
            f"{len(existing.indices)} images): every method must be scored on the same images; pass --force "
            f"to replace it or --out for another file"
        )
    subset = build_worst_case_subset(
        dataset,
        per_class=per_class,
        committee=committee,
        overrides=parse_overrides(overrides),
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
    dataset: str = typer.Option(..., "--dataset", help="The dataset the indices refer to (its test split)."),
    indices: Path = typer.Option(
        ..., "--indices", help="JSON list, JSON {indices: [...]}, or text of integers."
    ),
    provenance: str = typer.Option(..., "--provenance", help="Who picked the images, how, and where from."),
    sha256: str | None = typer.Option(None, "--sha256", help="Expected checksum of the sorted indices."),
    split: str = typer.Option("test", "--split"),
    out: Path | None = typer.Option(
        None, "--out", help="Subset file (default: <data root>/worst-case/<dataset>.json)."
    ),
    data_root: str | None = typer.Option(None, "--data-root", help="Data root (default $WCBENCH_DATA)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing subset file."),
    as_json: bool = typer.Option(False, "--json", help="Print the subset record as JSON."),
) -> None:
    """Store a user-supplied list of test indices (with provenance and checksum) as the shared subset."""
    from evaluators.worst_case import default_subset_path, import_subset

    target = out or default_subset_path(dataset, data_root)
    if target.is_file() and not force:
        raise ConfigError(
            f"a subset already exists at {target}; pass --force to replace it or --out for another file"
        )
    subset = import_subset(
        indices, dataset, provenance, split=split, sha256=sha256, out=target, data_root=data_root
    )
    _show(subset, as_json)


@worst_app.command("show")
def show_cmd(
    dataset: str | None = typer.Option(None, "--dataset", help="Show the default subset of this dataset."),
    file: Path | None = typer.Option(None, "--file", help="Show this subset file."),
    data_root: str | None = typer.Option(None, "--data-root", help="Data root (default $WCBENCH_DATA)."),
    as_json: bool = typer.Option(False, "--json", help="Print the subset record as JSON."),
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
