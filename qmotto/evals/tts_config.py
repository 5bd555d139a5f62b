"""The test-time-scaling runner's config (fields: configs/tts.py): checks before any loading or sampling.

`check_config` checks the fields of the strategies (names, ks for every
sampler and strategy, the budget and round size of first_success, the
verifier's false-positive rates, the breakdown's ks) and then the fields the
runner shares with the pass@k runner (`run_config.check_config`: samplers,
sampling, task, ...). Every error is a ValueError naming the config field
and the allowed values, raised in a fraction of a second.

The budget N of first_success is config.group_size: the runner draws one
group of N per problem and sampler (R groups; i.i.d. may pool more, see
`run_config.replications`) and reads every strategy from it, so every k in
config.ks must be a valid sub-group size of a group of N for every coupled
sampler (there are no separate groups of size k as in the pass@k runner).
"""

from __future__ import annotations

from qmotto import metrics
from qmotto import sampling
from qmotto.evals import run_config
from qmotto.utils import numbers

# The strategies a run may ask for: those of `metrics.STRATEGIES`, read at
# each k, and sampling until verified.
FIRST_SUCCESS = "first_success"
TTS_STRATEGIES = tuple(metrics.STRATEGIES) + (FIRST_SUCCESS,)
# The metric of each strategy, as rows and summary.json name it.
METRICS = {name: metrics.get_strategy(name).label for name in metrics.STRATEGIES} | {FIRST_SUCCESS: FIRST_SUCCESS}


def _sequence(name: str, value, what: str) -> list:
  if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
    raise ValueError(f"config.{name} must be a list of {what}, got {value!r}.")
  return list(value)


def strategy_names(config) -> tuple[str, ...]:
  """config.strategies, checked: a non-empty list of TTS_STRATEGIES, each once."""
  names = _sequence("strategies", config.strategies, f"strategy names from {TTS_STRATEGIES}")
  unknown = [n for n in names if n not in TTS_STRATEGIES]
  if unknown or not names:
    raise ValueError(
        f"config.strategies: unknown {unknown if unknown else 'none given'}; allowed: {TTS_STRATEGIES} "
        f"(e.g. ('pass', 'majority', '{FIRST_SUCCESS}')), got {names}."
    )
  if len(set(names)) != len(names):
    raise ValueError(f"config.strategies: each strategy once, got {names}.")
  return tuple(names)


def k_strategies(config) -> tuple[str, ...]:
  """The strategies read at each k of config.ks (all but first_success), in config order."""
  return tuple(n for n in strategy_names(config) if n != FIRST_SUCCESS)


def false_positive_rates(config) -> tuple[float, ...]:
  """config.false_positive_rates, checked: a non-empty list of distinct q in [0, 1]."""
  values = _sequence("false_positive_rates", config.false_positive_rates, "rates q in [0, 1]")
  qs = tuple(
      numbers.check_float(f"config.false_positive_rates[{i}]", q, minimum=0.0, maximum=1.0)
      for i, q in enumerate(values)
  )
  if not qs or len(set(qs)) != len(qs):
    raise ValueError(
        f"config.false_positive_rates must list distinct rates q in [0, 1] (the probability that the "
        f"verifier accepts a wrong sample), e.g. (0.0, 0.05, 0.2); got {values}."
    )
  return qs


def extensible_samplers() -> list[str]:
  """The names in `qmotto.SAMPLERS` that can run first_success (`metrics.is_extensible`)."""
  return [name for name, s in sampling.SAMPLERS.items() if metrics.is_extensible(s)]


def _ks(config) -> list[int]:
  values = _sequence("ks", config.ks, "ints >= 1")
  ks = [numbers.check_int(f"config.ks[{i}]", k, minimum=1) for i, k in enumerate(values)]
  if not ks or any(b <= a for a, b in zip(ks, ks[1:])):
    raise ValueError(f"config.ks must be a non-empty, strictly increasing list of ints >= 1, got {values}.")
  return ks


def _check_ks(config, names: tuple[str, ...], group_size: int, ks: list[int]) -> None:
  """Every k is an estimable size for every sampler and k-strategy (one group of N per problem)."""
  for name in config.samplers:
    sampler = sampling.get_sampler(name)
    try:
      allowed = metrics.allowed_subgroup_sizes(sampler, group_size)
    except ValueError as e:
      raise ValueError(f"config.group_size={group_size} for sampler {name!r}: {e}") from e
    for k in ks:
      if k > group_size:
        raise ValueError(
            f"config.ks: k={k} exceeds config.group_size={group_size}; the runner draws one group of "
            f"config.group_size per problem and sampler, so k <= {group_size}."
        )
      if sampler.independent or k in allowed:
        continue
      strategy = names[0]
      raise ValueError(
          f"config.ks: k={k} is not valid for sampler {name!r} and strategy {strategy!r} "
          f"({METRICS[strategy]}): its estimator reads valid sub-groups of the one group of "
          f"config.group_size={group_size} per problem, and {name!r} has sub-groups of sizes {allowed} only "
          f"(group structure {sampler.group_structure!r}). Use ks from {allowed}, or drop {name!r} from "
          "config.samplers."
      )


def _check_first_success(config, group_size: int) -> None:
  round_size = numbers.check_int("config.round_size", config.round_size, minimum=1)
  if group_size < round_size:
    raise ValueError(
        f"config.group_size={group_size} (the budget N of {FIRST_SUCCESS}) is smaller than one round, "
        f"config.round_size={round_size}; the budget holds at least one round."
    )
  if group_size % round_size:
    lower = group_size - group_size % round_size
    raise ValueError(
        f"config.group_size={group_size} (the budget N of {FIRST_SUCCESS}) is not a multiple of "
        f"config.round_size={round_size}: sampling stops after whole rounds, so N = m * b (e.g. "
        f"config.group_size={lower} or {lower + round_size}, or another round size)."
    )
  for name in config.samplers:
    if not metrics.is_extensible(sampling.get_sampler(name)):
      raise ValueError(
          f"config.samplers: {name!r} is not extensible, so it cannot run strategy {FIRST_SUCCESS!r} "
          "(slot i of its groups depends on the group size: the first slots of a group of N are not what "
          f"drawing in rounds would give). Extensible samplers: {extensible_samplers()}. Drop {name!r} from "
          f"config.samplers or {FIRST_SUCCESS!r} from config.strategies."
      )
  false_positive_rates(config)


def check_config(config) -> None:
  """Checks the test-time-scaling fields, then those shared with the pass@k runner (fast; ValueError).

  Raises:
    ValueError: naming the field: an unknown strategy; a k that exceeds
      config.group_size or is no valid sub-group size of a coupled sampler
      (e.g. a k that is not a power of two for a "dyadic" sampler); for
      first_success a budget (config.group_size) smaller than a round or
      not a multiple of config.round_size, a sampler that is not
      extensible, or false-positive rates outside [0, 1]; breakdown_ks not
      among the ks (they are used only with "majority" among the
      strategies); and every error of `run_config.check_config`.
  """
  names = strategy_names(config)
  samplers = _sequence("samplers", config.samplers, "sampler names")
  unknown = [s for s in samplers if s not in sampling.SAMPLERS]
  if unknown:
    raise ValueError(f"config.samplers: unknown {unknown}; allowed: {sorted(sampling.SAMPLERS)}.")
  group_size = numbers.check_int("config.group_size", config.group_size, minimum=1)
  numbers.check_int("config.round_size", config.round_size, minimum=1)
  ks = _ks(config)
  # Checked for every run: a k that a group of N cannot serve would make the shared sampling
  # (`chunks.sample_all`) draw separate groups of size k, which this runner never reads.
  _check_ks(config, k_strategies(config) or names, group_size, ks)
  if FIRST_SUCCESS in names:
    _check_first_success(config, group_size)
  breakdown = [
      numbers.check_int(f"config.breakdown_ks[{i}]", k, minimum=1)
      for i, k in enumerate(_sequence("breakdown_ks", config.breakdown_ks, "ints from config.ks"))
  ]
  if any(k not in ks for k in breakdown):
    raise ValueError(f"config.breakdown_ks must be among config.ks={ks}, got {breakdown}.")
  numbers.check_int("config.num_subsets", config.num_subsets, minimum=1)
  run_config.check_config(config)
