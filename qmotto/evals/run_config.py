"""The pass@k runner's config (fields: configs/passk.py): checks, and the values derived from it.

`check_config` checks everything that needs no model or task loaded, so a
bad field fails in a fraction of a second, before any loading or sampling;
numbers may be Python, NumPy or JAX scalars (`qmotto.utils.numbers`).
`check_directories` then makes sure the run can write its directories.
"""

from __future__ import annotations

import json
from typing import Mapping, Sequence

from qmotto import metrics
from qmotto import sampling
from qmotto import tasks
from qmotto.tasks import prompting
from qmotto.utils import files
from qmotto.utils import numbers

# The i.i.d. sampler: the baseline of samples saved (p_i for the union bound come from all samplers).
BASELINE = "iid"
STYLES = ("auto",) + prompting.STYLES
# The integer fields and their smallest values.
INT_FIELDS = (
    ("num_problems", 1), ("group_size", 1), ("replications", 1), ("problems_per_call", 1), ("num_resamples", 1),
    ("start", 0), ("iid_replications", 0), ("max_new_tokens", 0), ("seed", 0), ("top_k", 0),
)


def group_sizes(sampler: str | sampling.Sampler, group_size: int, ks: Sequence[int]) -> list[int]:
  """Group sizes to sample for `sampler`: n first, then each k that no group of n serves.

  Args:
    sampler: a sampler name (see `qmotto.SAMPLERS`) or a `qmotto.Sampler`.
    group_size: n, config.group_size.
    ks: the k values, config.ks.

  Raises:
    ValueError: a group size the sampler cannot make, k > n, or a k that is
      neither a valid sub-group size of a group of n nor a group size the
      sampler can make on its own.
  """
  sampler = sampling.get_sampler(sampler)
  name = sampler.name
  try:
    allowed = metrics.allowed_subgroup_sizes(sampler, group_size)
  except ValueError as e:
    raise ValueError(f"config.group_size={group_size} for sampler {name!r}: {e}") from e
  sizes = [group_size]
  for k in ks:
    if k > group_size:
      raise ValueError(
          f"config.ks: k={k} exceeds config.group_size={group_size}; allowed k for sampler "
          f"{name!r}: 1..{group_size}."
      )
    if k in allowed:
      continue
    try:
      sampler.check_group_size(int(k))
    except ValueError as e:
      raise ValueError(
          f"config.ks: k={k} is not allowed for sampler {name!r}: it is not a valid sub-group "
          f"size of a group of {group_size} (allowed: {allowed}) and {e}"
      ) from e
    sizes.append(int(k))
  return sizes


def replications(config, sampler: str) -> int:
  """R, the groups of n per problem that `sampler` draws (the baseline: config.iid_replications, 0 = R)."""
  return int(config.iid_replications or config.replications) if sampler == BASELINE else int(config.replications)


def check_config(config) -> None:
  """Checks the fields that need no model or task (fast; raises ValueError)."""
  samplers = tuple(config.samplers)
  unknown = [s for s in samplers if s not in sampling.SAMPLERS]
  if unknown:
    raise ValueError(f"config.samplers: unknown {unknown}; allowed: {sorted(sampling.SAMPLERS)}.")
  if BASELINE not in samplers:
    raise ValueError(
        f"config.samplers must include {BASELINE!r}: it is the baseline of samples saved; got "
        f"{list(samplers)}."
    )
  if len(set(samplers)) != len(samplers):
    raise ValueError(f"config.samplers: each sampler once, got {list(samplers)}.")
  if config.style not in STYLES:
    raise ValueError(f"config.style must be one of {STYLES}, got {config.style!r}.")
  for name, minimum in INT_FIELDS:
    numbers.check_int(f"config.{name}", config[name], minimum=minimum)
  if "chat_shots" in config:
    numbers.check_int("config.chat_shots", config.chat_shots, minimum=0)
  if isinstance(config.ks, (str, bytes)) or not hasattr(config.ks, "__iter__"):
    raise ValueError(f"config.ks must be a non-empty list of ints >= 1, got {config.ks!r}.")
  ks = [numbers.check_int(f"config.ks[{i}]", k, minimum=1) for i, k in enumerate(config.ks)]
  if not ks:
    raise ValueError(f"config.ks must be a non-empty list of ints >= 1, got {list(config.ks)}.")
  if any(b <= a for a, b in zip(ks, ks[1:])):
    raise ValueError(f"config.ks must be strictly increasing, got {ks}.")
  for sampler in samplers:
    group_sizes(sampler, int(config.group_size), ks)
  numbers.check_float("config.temperature", config.temperature, minimum=0.0)
  numbers.check_float("config.top_p", config.top_p, minimum=0.0, maximum=1.0, exclusive_minimum=True)  # 1: off.
  if numbers.check_float("config.min_p", config.min_p, minimum=0.0, maximum=1.0) >= 1:
    raise ValueError(f"config.min_p must be in [0, 1) (0: off), got {config.min_p!r}.")
  numbers.check_float("config.correct_threshold", config.correct_threshold)
  task_options(config)
  check_task_name(config.task)


def check_directories(config) -> None:
  """Makes config.output_dir and config.workdir and checks that they can be written.

  Called at the start of a run, before loading the model: an unwritable path
  fails at once, not after the sampling.

  Raises:
    ValueError: naming the field and the path.
  """
  for name in ("output_dir", "workdir"):
    files.check_writable(config[name], f"config.{name}")


def check_task_name(name: str) -> None:
  """Raises ValueError unless `name` is "" (the checkpoint's task) or a task of `qmotto.tasks`."""
  if name and name not in tasks.TASK_NAMES:
    raise ValueError(f"config.task: unknown task {name!r}; allowed: {sorted(tasks.TASK_NAMES)}.")


def task_options(config) -> dict:
  """config.task_options as a dict: a JSON object string ("" = none) or a mapping."""
  options = config.task_options
  if isinstance(options, Mapping) or hasattr(options, "to_dict"):
    return dict(options.to_dict() if hasattr(options, "to_dict") else options)
  if not options:
    return {}
  try:
    parsed = json.loads(options)
  except json.JSONDecodeError as e:
    raise ValueError(f"config.task_options must be a JSON object string, got {options!r}: {e}") from e
  if not isinstance(parsed, dict):
    raise ValueError(f"config.task_options must be a JSON object, got {options!r}.")
  return parsed
