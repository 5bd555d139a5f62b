"""qmotto.utils.logs: orbax's INFO lines are dropped, its warnings and everyone else's lines kept."""

import logging
import os

from qmotto.utils import logs


def test_quiet_orbax_logs_filters_only_orbax_info(monkeypatch):
  handler = logging.Handler()
  monkeypatch.setattr(logging.getLogger(), "handlers", [handler])
  monkeypatch.setattr(logging.getLogger("absl"), "handlers", [])  # the test leaves absl's own handler alone.
  logs.quiet_orbax_logs()
  orbax_file = os.path.join(os.sep, "site-packages", "orbax", "checkpoint", "x.py")

  def record(level, pathname):
    return logging.LogRecord("x", level, pathname, 1, "message", (), None)

  assert not handler.filter(record(logging.INFO, orbax_file))
  assert handler.filter(record(logging.WARNING, orbax_file))
  assert handler.filter(record(logging.INFO, os.path.join(os.sep, "qmotto", "train", "sft.py")))
