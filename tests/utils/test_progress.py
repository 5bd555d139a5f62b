"""qmotto.utils.progress: the progress bar setting, and the wall clock a resumed run adds to."""

import pytest

from qmotto.utils import progress


def test_progress_bar_settings():
  bar = progress.progress_bar("off", total=10, initial=4, desc="train")
  assert bar.disable and bar.n == 4 and bar.total == 10
  bar.close()
  bar = progress.progress_bar("on", total=10, initial=0, desc="train")
  assert not bar.disable
  bar.close()
  with pytest.raises(ValueError, match=r"config.progress_bar must be one of \('auto', 'on', 'off'\), got 'maybe'"):
    progress.progress_bar("maybe", total=10, initial=0, desc="train")


def test_stopwatch_adds_laps_to_the_restored_seconds(monkeypatch):
  now = iter([100.0, 102.5, 110.0])
  monkeypatch.setattr(progress.time, "perf_counter", lambda: next(now))
  clock = progress.Stopwatch()
  clock.seconds = 7.0  # a resumed run's earlier processes.
  assert clock.lap() == 9.5 and clock.lap() == 17.0 and clock.seconds == 17.0
