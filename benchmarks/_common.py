"""Helpers shared by the benchmark scripts: timing summaries, run metadata, output."""

from __future__ import annotations

import datetime
import importlib
import os
import platform
import statistics
import sys

import jax
import numpy as np

import qmotto
from qmotto.utils import files


def log(msg: str) -> None:
  stamp = datetime.datetime.now().strftime("%H:%M:%S")
  print(f"[{stamp}] {msg}", file=sys.stderr, flush=True)


def summary(times: list[float]) -> dict:
  """median / min / max seconds of repeated calls."""
  return dict(
      median_s=statistics.median(times), min_s=min(times), max_s=max(times), repeats=len(times)
  )


def loadavg():
  try:
    return list(os.getloadavg())
  except OSError:
    return None


def _version(package: str):
  try:
    return importlib.import_module(package).__version__
  except Exception:  # pylint: disable=broad-except
    return None


def metadata(argv, module: str, packages: tuple[str, ...], settings: dict) -> dict:
  """What a result file records about the run: command, versions, machine, load.

  Args:
    argv: absl's argv.
    module: the script's module name, e.g. "benchmarks.bench_decode".
    packages: extra packages whose versions to record (None if missing).
    settings: the run's settings.
  """
  try:
    affinity = len(os.sched_getaffinity(0))
  except AttributeError:
    affinity = None
  script = ["-m", module] if __package__ else [sys.argv[0]]
  return dict(
      timestamp_utc=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      command_line=" ".join([sys.executable] + script + list(sys.argv[1:])),
      argv=list(argv),
      jax_version=jax.__version__,
      numpy_version=np.__version__,
      qmotto_version=qmotto.__version__,
      **{f"{p}_version": _version(p) for p in ("jaxlib",) + tuple(packages)},
      python_version=platform.python_version(),
      platform=platform.platform(),
      backend=jax.default_backend(),
      device_kind=jax.devices()[0].device_kind,
      device_count=jax.device_count(),
      cpu_count=os.cpu_count(),
      cpu_affinity_count=affinity,
      loadavg_start=loadavg(),
      settings=settings,
  )


def write_json(record: dict, path: str) -> None:
  """Writes atomically, so an interrupted run leaves no half-written file."""
  files.write_json(record, path)
