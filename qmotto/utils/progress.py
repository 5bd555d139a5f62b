"""Progress bars of the training loops, and the wall clock a resumed run keeps adding to.

    bar = progress.progress_bar(config.progress_bar, total=num_steps, initial=start, desc="train maze")
    clock = progress.Stopwatch()
    ...
    train_seconds = clock.lap()   # at each checkpoint
"""

from __future__ import annotations

import time

import tqdm

# config.progress_bar: "auto" shows the bar only when stderr is a terminal.
PROGRESS_BAR = ("auto", "on", "off")
# tqdm's `disable`: None lets tqdm turn the bar off when stderr is not a tty.
_DISABLE = {"auto": None, "on": False, "off": True}


def check_progress_bar(setting: str) -> str:
  """Raises ValueError unless `setting` (config.progress_bar) is one of PROGRESS_BAR."""
  if setting not in PROGRESS_BAR:
    raise ValueError(f"config.progress_bar must be one of {PROGRESS_BAR}, got {setting!r}.")
  return setting


def progress_bar(setting: str, *, total: int, initial: int, desc: str, unit: str = "it") -> tqdm.tqdm:
  """A tqdm bar over steps `initial` .. `total` (refreshed at most once a second).

  Args:
    setting: one of PROGRESS_BAR.
    total: the step the run ends at.
    initial: the step it starts (or resumes) from.
    desc: the bar's label.
    unit: what a step is, e.g. "chunk".
  """
  return tqdm.tqdm(
      total=total, initial=initial, desc=desc, unit=unit, disable=_DISABLE[check_progress_bar(setting)],
      dynamic_ncols=True, mininterval=1.0,
  )


class Stopwatch:
  """Wall time of a run summed over its processes: earlier processes' seconds plus this one's.

  Attributes:
    seconds: the total at the last `lap` (set it to a restored run's total).
  """

  def __init__(self, seconds: float = 0.0):
    self.seconds = seconds
    self._lap_start = time.perf_counter()

  def lap(self) -> float:
    """Adds the time since the previous lap (or since construction) to `seconds`; returns it."""
    now = time.perf_counter()
    self.seconds += now - self._lap_start
    self._lap_start = now
    return self.seconds
