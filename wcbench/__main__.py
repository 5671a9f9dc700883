"""`python -m wcbench ...` (also `torchrun -m wcbench retrain ...` for multi-GPU retraining)."""

import sys

from wcbench.cli import main

sys.exit(main())
