"""One meaning per flag: every `wcbench` option is declared through :func:`option`, whose help text starts
with the flag's one meaning from :data:`FLAGS` (the README's flag table lists the same rows, and
tests/test_cli_grammar.py checks both). A command may add detail after the meaning, never another one.

The grammar, in short: `--out` is always a folder the command writes into and `--file` a single file;
`--set stage.key=value` names its stage (the prefix may be left out where a command has one stage);
`--scorers` takes a comma-separated list; `--json` prints one JSON document on stdout; `--seed`
defaults to 1, as `run --seeds` does; switches take no value.
"""

from __future__ import annotations

from typing import Any

import typer

SEED_DEFAULT = 1  # the paper's seeds are 1-10; `run --seeds`, `search --seed`, ... all start there

FLAGS: dict[str, str] = {
    "--algorithm": "Search algorithm whose `ours` preset sizes the tester.",
    "--allow-different": "Test runs whose settings differ in more than the seed (the keys are named).",
    "--alpha": "Significance level of the t-tests (Holm's procedure over several).",
    "--batch-size": "Shorthand for --set batch_size=N.",
    "--benchmark": "One board (e.g. worst_case_cifar100, or other_scorers); every board by default.",
    "--committee": "Committee that picks the worst-case images: paper (3 ResNet-18) | darts | quick.",
    "--corruptions": "Corruptions, comma-separated (default: all 19, the 15 and the 4 extra).",
    "--cpus": "CPUs per SLURM task.",
    "--data-root": "Data root (default $WCBENCH_DATA, else ~/.cache/wcbench/data).",
    "--dataset": "Dataset the command works on: digits | cifar10 | cifar100 | stl10 | imagenet | "
    "imagefolder:<path> ...",
    "--debug": "Show tracebacks instead of one-line errors.",
    "--device": "cpu | cuda | cuda:N (default: cuda if available).",
    "--download": "Download the dataset if the library can.",
    "--dry-run": "Resolve every setting and check every input, print the plan as JSON, create nothing.",
    "--epochs": "Shorthand for --set epochs=N.",
    "--eval-dataset": "Only scores measured on this dataset (e.g. imagenet-r).",
    "--executor": "local | slurm | submitit-local.",
    "--family": "Retrain table to follow: darts (Table 33), pdarts | pcdarts (Table 34), prdarts (Table 35), "
    "imagenet (Table 36); default: the one the search recorded, or the published name's, else darts.",
    "--field": "Set a field wcbench cannot know: --field venue='ICLR 2026' (repeatable).",
    "--file": "A single file the command reads or writes (its suffix picks the format).",
    "--force": "Redo a finished stage whose settings differ: search, retrain, score or a scorer's name "
    "(repeatable; what depends on it is redone too).",
    "--format": "Output format.",
    "--genotype": "Published name (DARTS_V2), genotype file, search or run folder, or DARTS string.",
    "--gpus": "GPUs per SLURM task.",
    "--input-size": "An external model's input resolution (default: what the model declares).",
    "--indices": "JSON list, JSON {indices: [...]}, or text of integers.",
    "--json": "Print one JSON document on stdout instead of tables.",
    "--log": "Curves to: tensorboard (under the output folder) | none (default: $WCBENCH_LOG).",
    "--load-procs": "Busy processes of the competing load (default: one per allowed CPU).",
    "--load-searcher": "Searcher of the load figure.",
    "--metric": "A metric as its scorer declares it (e.g. worst_case_error, top1_error, pgd10_acc); "
    "repeatable.",
    "--mean": "An external model's input mean, e.g. 0.5,0.5,0.5 (default: what the model declares).",
    "--model": "A retrain folder (`wcbench retrain --out`, or <run>/retrain/<dataset>), or an external "
    "model: timm:<arch>, torchvision:<arch>, robustbench:<dataset>/<threat>/<name>, package.module:function.",
    "--model-dir": "RobustBench's local model folder (<dataset>/<threat>/<name>.pt); nothing is downloaded.",
    "--name": "The model's name (default: its run folder's).",
    "--no-progress": "No progress bars.",
    "--num-classes": "An external timm/torchvision model's head size (default: the dataset's classes).",
    "--out": "Folder the command writes into (created if missing).",
    "--overwrite": "Replace an existing file.",
    "--paper": "Also show the paper's reported numbers, after your runs.",
    "--partition": "SLURM partition.",
    "--parts": "Measurements to take, comma-separated.",
    "--per-class": "Worst-case images per class (paper: 20).",
    "--preset": "paper (the paper's tables) | quick (CPU, minutes, digits) | smoke (CPU, seconds; tests).",
    "--provenance": "Who picked the images, how, and where from.",
    "--rehearse": "Rehearse: every stage of this configuration for N steps (first seed), timed, with a "
    "projection of the full run; written to <runs-dir>/rehearsal/.../rehearsal.json, never to a leaderboard.",
    "--rehearse-examples": "Test examples each scorer scores in a rehearsal.",
    "--runs-dir": "Root of the run tree (<runs-dir>/<dataset>/<searcher>/seed-<n>/).",
    "--scorers": "Scorers, comma-separated (see `wcbench list scorers`).",
    "--scores-dir": "Folder for <scorer>.json (default: the run's scores/, or <model>/scores).",
    "--searcher": "<strategy>-<algorithm>, e.g. ours-pdarts, spcl-pcdarts, or pdarts alone.",
    "--searchers": "Base searchers, comma-separated.",
    "--severities": "Severities, comma-separated subset of 1..5.",
    "--seed": f"Random seed (default {SEED_DEFAULT}, as `run --seeds`).",
    "--seeds": "Seeds: 1-10, 1,3,5 or 0.",
    "--set": "A setting, stage.key=value (stage. may go where the command has one stage); repeatable.",
    "--sha256": "Expected checksum of the sorted indices.",
    "--space": "Search space: darts | s1 | s2 | s3 | s4 (RobustDARTS, Table 4).",
    "--split": "Dataset split.",
    "--std": "An external model's input std, e.g. 0.25,0.25,0.25 (default: what the model declares).",
    "--src": "An ImageNet-layout folder of images: <src>/<wnid>/*.JPEG.",
    "--steps": "Search steps measured per searcher.",
    "--test": "welch | paired (same seeds) | one-sample.",
    "--tester": "gan (FQ-GAN by default) | augment (DADA policy).",
    "--threat": "RobustBench threat model: Linf | L2 | corruptions | corruptions_3d (default: the scores').",
    "--time-min": "SLURM time limit per task, minutes.",
    "--to": "json | darts.",
    "--version": "Print the version.",
    "--wait-policies": "Repeat the load figure per OpenMP wait policy, comma-separated: default,passive.",
    "--weights": "A state dict for an external timm/torchvision/module model (else random init).",
    "--workers": "Processes, one corruption each.",
}


def option(flag: str, default: Any = None, detail: str = "", *extra_names: str, **kwargs: Any) -> Any:
    """A typer option for `flag` whose help is the flag's one meaning, then `detail`."""
    help_text = f"{FLAGS[flag]} {detail}".strip()
    if flag == "--seed":
        kwargs.setdefault("min", 0)  # a seed is a 31-bit integer everywhere (no huge allocations)
        kwargs.setdefault("max", 2**31 - 1)
    return typer.Option(default, flag, *extra_names, help=help_text, **kwargs)


def deprecated(flag: str, default: Any = None) -> Any:
    """A hidden, deprecated spelling kept so old scripts keep working; :func:`warn_deprecated` warns."""
    return typer.Option(default, flag, hidden=True)


def warn_deprecated(old: str, new: str) -> None:
    """One line on stderr: `old` still works but will go."""
    from wcbench.progress import console_err  # the one stderr console

    console_err.print(f"warning: {old} is deprecated; use {new}", markup=False, highlight=False)
