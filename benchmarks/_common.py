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


def last_level_cache_bytes() -> int | None:
  """The largest CPU cache (Linux sysfs, cpu0), None where unknown."""
  sizes = []
  root = "/sys/devices/system/cpu/cpu0/cache"
  try:
    for entry in os.listdir(root):
      if entry.startswith("index"):
        with open(os.path.join(root, entry, "size")) as f:
          text = f.read().strip().upper()
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        sizes.append(int(text.rstrip("KMG")) * scale)
  except (OSError, ValueError):
    return None
  return max(sizes) if sizes else None


def limit_cpu_threads(threads: int | None) -> dict:
  """Pins this process (and its children) to `threads` CPUs, before JAX starts its backend.

  XLA:CPU sizes its intra-op thread pool (the `tf_XLAEigen` threads) by the
  CPUs in the process's affinity mask when the backend starts, so a smaller
  mask is how JAX gets fewer threads; call this before anything touches
  `jax.devices()`. threads=None keeps the mask as it is. Returns what was
  set, for the metadata.
  """
  try:
    cpus = sorted(os.sched_getaffinity(0))
  except AttributeError:  # not Linux: nothing to pin, report the CPU count.
    return dict(threads=os.cpu_count(), cpus=None, how="os.cpu_count(); no affinity API")
  if threads is not None:
    if not 1 <= threads <= len(cpus):
      raise ValueError(f"--threads={threads} must be in [1, {len(cpus)}] (the CPUs this process may use).")
    cpus = cpus[:threads]
    os.sched_setaffinity(0, cpus)
  return dict(
      threads=len(cpus),
      cpus=cpus,
      how="sched_setaffinity before the JAX backend starts; XLA:CPU sizes its intra-op pool by the mask",
  )


def count_threads(name_prefix: str) -> int | None:
  """Threads of this process whose name starts with `name_prefix` (Linux /proc), None elsewhere."""
  try:
    tasks = os.listdir("/proc/self/task")
  except OSError:
    return None
  count = 0
  for tid in tasks:
    try:
      with open(f"/proc/self/task/{tid}/comm") as f:
        count += f.read().startswith(name_prefix)
    except OSError:
      pass
  return count


def package_versions(packages: tuple[str, ...]) -> dict:
  """{name_version: the installed distribution's version or None}, read without importing the package.

  (Importing torch into a JAX benchmark process would be enough to start its thread pools there.)
  """
  from importlib import metadata as importlib_metadata  # pylint: disable=g-import-not-at-top

  out = {}
  for p in packages:
    try:
      out[f"{p}_version"] = importlib_metadata.version(p)
    except importlib_metadata.PackageNotFoundError:
      out[f"{p}_version"] = None
  return out
