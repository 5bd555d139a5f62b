"""Absl log filtering for the runners: orbax's INFO lines (several per checkpoint) are dropped.

    logs.quiet_orbax_logs()   # once, at the start of an experiment's main
"""

from __future__ import annotations

import logging
import os


class _DropOrbaxInfo(logging.Filter):
  """Passes warnings and errors, and INFO lines from anything but orbax."""

  def filter(self, record: logging.LogRecord) -> bool:
    return record.levelno > logging.INFO or f"{os.sep}orbax{os.sep}" not in record.pathname


def quiet_orbax_logs() -> None:
  """Drops orbax's INFO lines (several per checkpoint) from the absl log."""
  for handler in logging.getLogger().handlers + logging.getLogger("absl").handlers:
    handler.addFilter(_DropOrbaxInfo())
