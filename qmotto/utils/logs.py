"""Absl log filtering for the runners: library INFO lines that bury a runner's own output are dropped.

    logs.quiet_orbax_logs()           # once, at the start of an experiment's main
    logs.quiet_jax_platform_logs()    # JAX's "Unable to initialize backend 'tpu'" and kin

Warnings and errors always pass; a runner offers a flag (e.g. experiments/passk.py
--verbose) that skips these calls.
"""

from __future__ import annotations

import logging
import os

# JAX's logger for backend discovery: it logs one INFO line per platform it
# probes and cannot start ("Unable to initialize backend 'tpu': ..."), and
# warnings when hardware is present without its jaxlib (those still pass).
JAX_PLATFORM_LOGGER = "jax._src.xla_bridge"


class _DropOrbaxInfo(logging.Filter):
  """Passes warnings and errors, and INFO lines from anything but orbax."""

  def filter(self, record: logging.LogRecord) -> bool:
    return record.levelno > logging.INFO or f"{os.sep}orbax{os.sep}" not in record.pathname


def quiet_orbax_logs() -> None:
  """Drops orbax's INFO lines (several per checkpoint) from the absl log."""
  for handler in logging.getLogger().handlers + logging.getLogger("absl").handlers:
    handler.addFilter(_DropOrbaxInfo())


def quiet_jax_platform_logs() -> None:
  """Drops JAX's INFO lines about backends it probes and cannot start (e.g. 'tpu' on a CPU machine).

  Call it before JAX first initializes its backends (the first array op);
  its warnings (a GPU present without a CUDA jaxlib) still show.
  """
  logging.getLogger(JAX_PLATFORM_LOGGER).setLevel(logging.WARNING)
