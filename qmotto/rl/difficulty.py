"""A difficulty-targeted pool of training prompts: each prompt's success probability under the start policy.

    estimate = estimate_success(key, model, tokenizer, task, problems, prompt_len=32, max_new_tokens=16,
                                num_samples=16, batch_size=64)                # float64[P]
    pool = band_pool(problems, estimate, low=0.0, high=0.25)              # p in (low, high]

Coupling changes the number of informative groups (some reward differs from
the rest) most where a prompt's success probability p is near 1/G: an i.i.d.
group of G is all-wrong with probability (1 - p)**G, a stratified one far
less often; near p = 0 or 1 no sampler helps. GRPO can train on the prompts
whose p under the starting checkpoint lies in a band such as (0, 2/G]
(`config.band_low`, `config.band_high`). p is estimated by a pass@1-style
pre-pass: `num_samples` i.i.d. samples per candidate prompt at the training
temperature, the fraction whose reward is 1 (binary reward: the task's
score >= `tasks.PASS_SCORE`). The estimate depends only on the start
policy and the pre-pass settings, never on the run's sampler or seed, so
every run of an experiment trains on the same pool; it is cached
(`cached_estimate`) and computed once per experiment.
"""

from __future__ import annotations

import hashlib
import json
import os

import jax
import numpy as np

from qmotto import sampling
from qmotto import tasks as tasks_lib
from qmotto.train import data
from qmotto.train import evaluation
from qmotto.utils import files

CACHE_KIND = "qmotto.grpo.difficulty"


def estimate_success(key: jax.Array, model, tokenizer, task, problems: list, *, prompt_len: int, max_new_tokens: int,
                     num_samples: int, batch_size: int, temperature: float = 1.0) -> np.ndarray:
  """float64[P]: the fraction of `num_samples` i.i.d. samples of each problem whose task score passes.

  Args:
    key: PRNG key of the pre-pass.
    model: the start policy (a `qmotto.models.Model`).
    tokenizer: its tokenizer.
    task: the task (scores completions with `score_text`).
    problems: the candidate problems.
    prompt_len: prompts are padded to it (compact format).
    max_new_tokens: N.
    num_samples: samples per problem (the estimate's resolution is 1 / num_samples).
    batch_size: problems per generate call (fixed shape).
    temperature: the sampling temperature (the training one).
  """
  problem_set = evaluation.problem_set(tokenizer, task, problems, prompt_len)
  texts, _ = evaluation.generate_completions(
      key, model, problem_set, tokenizer=tokenizer, chunk=batch_size, num_samples=num_samples,
      max_new_tokens=max_new_tokens, sampling_options=sampling.SamplingOptions.create("iid", temperature=temperature),
  )
  passed = [[task.score_text(p, t, data.STYLE) >= tasks_lib.PASS_SCORE for t in row] for p, row in zip(problems, texts)]
  return np.asarray(passed, np.float64).mean(axis=1)


def band_pool(problems: list, estimate, low: float, high: float) -> list:
  """The problems whose estimated success probability lies in (low, high], in their order.

  Raises:
    ValueError: unless 0 <= low < high <= 1 and `estimate` has one value per problem.
  """
  if not 0.0 <= low < high <= 1.0:
    raise ValueError(f"the difficulty band (low, high] needs 0 <= low < high <= 1, got ({low}, {high}].")
  estimate = np.asarray(estimate, np.float64)
  if estimate.shape != (len(problems),):
    raise ValueError(f"estimate must hold one value per problem ({len(problems)}), got shape {estimate.shape}.")
  return [p for p, e in zip(problems, estimate) if low < e <= high]


def cache_path(cache_dir: str, settings: dict) -> str:
  """<cache_dir>/difficulty_<sha256 of the settings, 16 hex digits>.json."""
  digest = hashlib.sha256(json.dumps(files.to_jsonable(settings), sort_keys=True).encode()).hexdigest()[:16]
  return os.path.join(cache_dir, f"difficulty_{digest}.json")


def cached_estimate(cache_dir: str, settings: dict, compute) -> np.ndarray:
  """The estimate for `settings` from the cache, or `compute()` written to it (atomically).

  Args:
    cache_dir: the cache folder (created if needed).
    settings: everything the estimate depends on (JSON-able): the start
      checkpoint, the task, the candidates, the pre-pass settings.
    compute: () -> float[P], called on a miss.

  Raises:
    ValueError: a cache file for these settings holds other settings (a
      hash collision or a hand-edited file).
  """
  path = cache_path(cache_dir, settings)
  wanted = files.to_jsonable(settings)
  if os.path.exists(path):
    with open(path) as f:
      cached = json.load(f)
    if cached.get("kind") != CACHE_KIND or cached.get("settings") != wanted:
      raise ValueError(f"{path} holds another difficulty estimate; remove it to recompute.")
    return np.asarray(cached["estimate"], np.float64)
  estimate = np.asarray(compute(), np.float64)
  os.makedirs(cache_dir, exist_ok=True)
  files.write_json({"kind": CACHE_KIND, "settings": wanted, "estimate": estimate.tolist()}, path)
  return estimate
