"""Shared pytest setup."""

import os
import sys

# Tests run on the CPU; keep XLA from grabbing every core's worth of threads
# per xdist worker.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The repository root: `configs` (the config files and configs.common) and `tests` import from it.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
