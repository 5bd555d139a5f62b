"""The pass@k comparison on the toy suite: i.i.d. vs coupled samplers.

`run(config)` samples R independent groups of n for every problem and
sampler, scores them against the known answers, and returns the rows of
`report.passk_rows`, whose union bound uses the exact p_i (the toy knows
them: union_bound_p_from "exact", no estimation bias). Importable by tests and notebooks; the absl runner
`experiments/passk_toy.py` parses flags, calls it and writes the result
with `qmotto.utils.files.write_json`.
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from qmotto import decode
from qmotto import metrics
from qmotto import sampling
from qmotto.evals import report
from qmotto.evals import streams
from qmotto.evals import toy


@functools.partial(jax.jit, static_argnames=("options", "num_samples"))
def _sample_chunk(key, tables, group_ids, *, options, num_samples):
  # The tables are a traced argument: every chunk reuses one compilation.
  return decode.sample_sequences_batched(
      key,
      toy.table_logits_fn(tables),
      num_groups=tables.shape[0],
      num_samples=num_samples,
      length=tables.shape[1],
      sampling=options,
      group_ids=group_ids,
  )


def sample_correct(suite: toy.ToySuite, sampler: str | sampling.Sampler, config, key: jax.Array, n: int):
  """Samples R groups of n for every problem.

  Args:
    suite: the toy problems.
    sampler: a sampler name or a `qmotto.Sampler`.
    config: the run config (replications, groups_per_call, temperature).
    key: the sampler's stream (see `streams`).
    n: the group size.

  Returns:
    (correct bool[P, R, n], distinct answers per group float[P, R]).
  """
  num_problems, reps = suite.num_problems, config.replications
  group_ids = np.arange(num_problems * reps)  # group g = (problem g // R, replication g % R).
  correct = np.zeros((num_problems * reps, n), bool)
  distinct = np.zeros(num_problems * reps)
  chunk = max(1, config.groups_per_call)
  options = sampling.SamplingOptions.create(sampler, temperature=config.temperature)
  for start in range(0, len(group_ids), chunk):
    ids = group_ids[start : start + chunk]
    if len(ids) < chunk:  # keep one shape: pad the last call, drop the extra.
      ids = np.concatenate([ids, np.full(chunk - len(ids), ids[-1])])
    tokens = _sample_chunk(
        key,
        jnp.asarray(suite.group_tables(ids // reps)),
        jnp.asarray(ids, jnp.uint32),
        options=options,
        num_samples=n,
    )
    tokens = np.asarray(tokens)[: len(group_ids[start : start + chunk])]
    real = group_ids[start : start + chunk]
    correct[real] = (tokens == suite.answers[real // reps][:, None, :]).all(-1)
    distinct[real] = [len({row.tobytes() for row in group}) for group in tokens]
  return correct.reshape(num_problems, reps, n), distinct.reshape(num_problems, reps)


def run(config) -> dict:
  """Runs the comparison described by `config` (see configs/passk_toy.py)."""
  suite = toy.make_suite(
      config.seed,
      num_problems=config.num_problems,
      vocab=config.vocab,
      length=config.length,
      difficulty=tuple(config.difficulty),
  )
  key = jax.random.key(config.seed)
  correct, distinct, seconds = {}, {}, {}
  for name in config.samplers:
    start = time.time()
    sampler = sampling.get_sampler(name)
    # Each sampler gets its own stream, so adding a sampler to the list does
    # not change the others' samples.
    stream = jax.random.fold_in(key, streams.stream_id(name))
    n = config.group_size
    full, distinct[name] = sample_correct(suite, sampler, config, stream, n)
    correct[name] = {n: full}
    # Sizes the full group cannot serve as valid sub-groups (e.g. stratified)
    # get groups of their own, from their own stream.
    allowed = metrics.allowed_subgroup_sizes(sampler, n)
    for k in config.ks:
      if k not in allowed:
        correct[name][k], _ = sample_correct(suite, sampler, config, jax.random.fold_in(stream, k), k)
    seconds[name] = time.time() - start
    logging.info("sampled %s in %.1fs", name, seconds[name])
  answer_probs = suite.answer_probs()
  rows = report.passk_rows(
      correct,
      list(config.ks),
      answer_probs=answer_probs,
      distinct=distinct,
      seed=config.seed,
      num_resamples=config.num_resamples,
  )
  for row in rows:
    row.update(task="toy_markov", model="toy")
  return dict(
      config=config.to_dict(),
      mean_answer_prob=float(answer_probs.mean()),
      sampling_seconds=seconds,
      rows=rows,
  )
