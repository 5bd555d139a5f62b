"""Task names, default difficulty options and the reasoning-gym datasets behind them.

Every task is a reasoning-gym procedural dataset. Its options are the fields of
the dataset's config dataclass (`reasoning_gym.factory.DATASETS[name][1]`)
except `seed` and `size`, which the train/test splits manage, plus the
qmotto-only options of `EXTRA_OPTIONS`. `resolve_options` fills in every
option (overrides, then `DEFAULT_OPTIONS`, then reasoning-gym's own defaults),
so a saved task description reproduces its problems even if a default changes.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping

# The tasks, in a fixed order.
TASK_NAMES = (
    "countdown",
    "maze",
    "mini_sudoku",
    "sudoku",
    "arc_1d",
    "basic_arithmetic",
    "chain_sum",
    "gsm_symbolic",
)

# The four families learned from scratch by small character-level models.
FAMILIES = ("countdown", "maze", "mini_sudoku", "arc_1d")

# The tasks meant for a pretrained instruct model (SmolLM2-135M-Instruct).
CHAT_TASKS = ("basic_arithmetic", "chain_sum", "gsm_symbolic")

# Easy defaults (overrides of reasoning-gym's config defaults). The families
# aim at pass@1 of roughly 0.1-0.6 for a 1-5M parameter character-level
# transformer trained for ~10 CPU minutes; tune through `get_task` overrides.
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    # 3 numbers of 1-10 and targets up to 100: short expressions, many solutions.
    "countdown": dict(min_numbers=3, max_numbers=3, min_value=1, max_value=10, min_target=1, max_target=100),
    # 5x5-6x6 grids (3x3-4x4 interior) and 1-6 steps: single-digit answers.
    "maze": dict(min_grid_size=5, max_grid_size=6, min_dist=1, max_dist=6),
    # 4-8 blanks of 16: mostly forced cells, solvable by local constraint checks.
    "mini_sudoku": dict(min_empty=4, max_empty=8),
    # 10-20 blanks of 81 (reasoning-gym's default is 30-50); an extra, not a family.
    "sudoku": dict(min_empty=10, max_empty=20),
    # 8-10 cells with 3 examples: prompts of ~90 characters; all 70 rules.
    "arc_1d": dict(min_size=8, max_size=10, num_train=3),
    # Sized for SmolLM2-135M-Instruct, which with 3 solved examples gets single-digit
    # sums right ~8% of the time at temperature 1 and 2-3 terms of 1-2 digits ~0-3%.
    # 2 one-digit terms with + and -, no unary minus (parentheses stay allowed:
    # without them reasoning-gym's reference answers ignore precedence).
    "basic_arithmetic": dict(
        min_terms=2, max_terms=2, min_digits=1, max_digits=1, operators=("+", "-"), allow_negation=False
    ),
    # 2 one-digit terms.
    "chain_sum": dict(min_terms=2, max_terms=2, min_digits=1, max_digits=1),
    # reasoning-gym supports difficulty 1.0 only.
    "gsm_symbolic": dict(),
}

# qmotto-only options (not reasoning-gym config fields) and their defaults.
#   arc_1d.task_names: None (all rules) or a tuple of rule names from
#     `reasoning_gym.arc.arc_1d_tasks.ARC_1D_TASKS` to draw from (sorted, unique).
EXTRA_OPTIONS: dict[str, dict[str, Any]] = {"arc_1d": {"task_names": None}}

# Config fields the splits own.
MANAGED_FIELDS = ("seed", "size")


def check_name(name: str) -> str:
  """`name` if it is a task name; ValueError listing TASK_NAMES otherwise."""
  if not isinstance(name, str) or name not in TASK_NAMES:
    raise ValueError(f"Unknown task name {name!r}; expected one of {', '.join(TASK_NAMES)}.")
  return name


@functools.lru_cache(maxsize=None)
def _config_class(name: str):
  from reasoning_gym.factory import DATASETS  # pylint: disable=g-import-not-at-top

  return DATASETS[name]


@functools.lru_cache(maxsize=None)
def _rg_defaults(name: str) -> dict[str, Any]:
  """reasoning-gym's config defaults of task `name` (without seed and size)."""
  _, config_cls = _config_class(name)
  defaults = {}
  for field in dataclasses.fields(config_cls):
    if field.name in MANAGED_FIELDS:
      continue
    if field.default is not dataclasses.MISSING:
      defaults[field.name] = field.default
    elif field.default_factory is not dataclasses.MISSING:
      defaults[field.name] = field.default_factory()
    else:  # pragma: no cover - every reasoning-gym 0.1.25 field has a default.
      raise ValueError(f"task {name!r}: reasoning-gym config field {field.name!r} has no default.")
  return defaults


def option_names(name: str) -> tuple[str, ...]:
  """The options task `name` accepts, sorted."""
  check_name(name)
  return tuple(sorted({**_rg_defaults(name), **EXTRA_OPTIONS.get(name, {})}))


def _hashable(value: Any) -> Any:
  """Lists (also nested) become tuples so that options hash."""
  if isinstance(value, (list, tuple)):
    return tuple(_hashable(v) for v in value)
  return value


@functools.lru_cache(maxsize=None)
def _arc_rule_names() -> tuple[str, ...]:
  from reasoning_gym.arc.arc_1d_tasks import ARC_1D_TASKS  # pylint: disable=g-import-not-at-top

  return tuple(ARC_1D_TASKS)


def _check_extra(name: str, options: dict[str, Any]) -> None:
  if name == "arc_1d" and options["task_names"] is not None:
    names = options["task_names"]
    if isinstance(names, str) or not isinstance(names, tuple) or not names:
      raise ValueError(
          f"arc_1d option 'task_names' must be None or a non-empty list of rule names, got {names!r}."
      )
    unknown = [n for n in names if n not in _arc_rule_names()]
    if unknown:
      raise ValueError(
          f"arc_1d option 'task_names': unknown rules {unknown}; allowed: {', '.join(_arc_rule_names())}."
      )
    options["task_names"] = tuple(sorted(set(names)))


def _check_known_bugs(name: str, options: dict[str, Any]) -> None:
  if name == "basic_arithmetic" and not options["allow_parentheses"]:
    if set(options["operators"]) - {"+", "-"}:
      raise ValueError(
          "basic_arithmetic: allow_parentheses=False with operators '*' or '/' is not supported: "
          "reasoning-gym 0.1.25 then evaluates the expression left to right, ignoring operator "
          "precedence, so its reference answers are wrong. Use allow_parentheses=True or operators ('+', '-')."
      )


def resolve_options(name: str, overrides: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
  """All options of task `name`, sorted by key, with hashable values.

  Args:
    name: a task name (TASK_NAMES).
    overrides: option values; missing ones come from DEFAULT_OPTIONS, then
      EXTRA_OPTIONS, then reasoning-gym's config defaults.

  Raises:
    ValueError: unknown task or option (the message lists the allowed ones),
      `seed`/`size` (managed by the splits), or values reasoning-gym rejects.
  """
  check_name(name)
  allowed = option_names(name)
  for key in overrides:
    if key in MANAGED_FIELDS:
      raise ValueError(
          f"task {name!r}: option {key!r} is managed by the train/test splits and cannot be set; "
          f"allowed options: {', '.join(allowed)}."
      )
    if key not in allowed:
      raise ValueError(f"task {name!r}: unknown option {key!r}; allowed options: {', '.join(allowed)}.")
  options = {**_rg_defaults(name), **EXTRA_OPTIONS.get(name, {}), **DEFAULT_OPTIONS[name], **overrides}
  options = {k: _hashable(v) for k, v in options.items()}
  _check_extra(name, options)
  _check_known_bugs(name, options)
  _, config_cls = _config_class(name)
  rg_options = {k: v for k, v in options.items() if k not in EXTRA_OPTIONS.get(name, {})}
  try:
    config_cls(**rg_options, seed=0, size=1).validate()
  except (AssertionError, TypeError, ValueError) as e:
    raise ValueError(f"task {name!r}: invalid options {rg_options}: {e or type(e).__name__}") from e
  try:
    hash(tuple(options.items()))
  except TypeError as e:
    raise ValueError(f"task {name!r}: option values must be hashable (numbers, strings, lists): {options}") from e
  return tuple(sorted(options.items()))


def make_dataset(name: str, options: tuple[tuple[str, Any], ...], seed: int, size: int):
  """The reasoning-gym dataset of task `name` with resolved `options`."""
  import reasoning_gym  # pylint: disable=g-import-not-at-top

  extra = EXTRA_OPTIONS.get(name, {})
  rg_options = {k: v for k, v in options if k not in extra}
  dataset = reasoning_gym.create_dataset(name, seed=seed, size=size, **rg_options)
  if name == "arc_1d":
    task_names = dict(options).get("task_names")
    if task_names is not None:
      dataset.task_names = list(task_names)  # the rules `__getitem__` draws from.
  return dataset
