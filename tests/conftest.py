"""Shared pytest setup."""

import os
import sys

# Tests run on the CPU; keep XLA from grabbing every core's worth of threads
# per xdist worker.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The tests compile many hundreds of small programs: with a warm compilation
# cache tests/evals, rl and train take 1:43 instead of 3:55, and LLVM's
# optimization passes are much of each compile. At backend optimization level 0 XLA
# compiles the same HLO without them, to the same IEEE float32 arithmetic
# (subnormals are flushed by a runtime mode, as at every level); sums may
# round in another order where a loop is no longer vectorized, and no test
# depends on that. Measured on 2 cores (user + system CPU seconds): tests/evals,
# rl and train 207 against 312; tests/sampling with the rounds and
# SmolLM2 tests, which run more than they compile, 293 against 366. The whole
# suite passes at both levels; to test at another, set it in XLA_FLAGS.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
# The repository root: `configs` (the config files and configs.common) and `tests` import from it.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
