"""wcbench: differentiable NAS with worst-case validation, and robustness benchmarks for its genotypes.

The reference is "Improving Neural Architecture Search by Minimizing Worst-Case Validation Loss".
The core package holds the vocabulary (genotypes, search spaces, networks, data, runs, statistics);
searchers and evaluators live in their own packages and meet here.
"""

__version__ = "0.1.0"
