"""A suite of toy "problems" with known answer probabilities.

Problem i is a small autoregressive model over `vocab` tokens and `length`
positions (a Markov chain whose transition logits also depend on the
position) plus one answer sequence. The answer's probability p_i is known
exactly, so pass@k of any sampler can be compared with i.i.d. sampling and
with the union bound min(1, k p_i) without estimating p_i, and an estimate of
that bound from samples can be checked against the truth
(tests/evals/test_report.py). A per-problem
difficulty lowers the answer's logits, spreading p_i over orders of
magnitude as in real benchmarks.

It needs no download and runs in seconds on a CPU: the embedded default of
the pass@k demo until real tasks land.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class ToySuite:
  """P toy problems.

  Attributes:
    logits: float32[P, length, vocab + 1, vocab]: logits[i, t, prev] for
      position t after token prev (prev = vocab at t = 0).
    answers: int32[P, length] the answer sequence of each problem.
  """

  logits: np.ndarray
  answers: np.ndarray

  @property
  def num_problems(self) -> int:
    return self.logits.shape[0]

  @property
  def length(self) -> int:
    return self.logits.shape[1]

  @property
  def vocab(self) -> int:
    return self.logits.shape[-1]

  def answer_probs(self) -> np.ndarray:
    """float64[P]: the exact probability of each problem's answer."""
    logits = self.logits.astype(np.float64)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    prev = np.concatenate([np.full((self.num_problems, 1), self.vocab), self.answers[:, :-1]], 1)
    rows = np.arange(self.num_problems)[:, None]
    steps = np.arange(self.length)[None, :]
    return probs[rows, steps, prev, self.answers].prod(-1)

  def group_tables(self, problem_of_group: np.ndarray) -> np.ndarray:
    """float32[G, length, vocab + 1, vocab]: the logits table of each group."""
    return self.logits[np.asarray(problem_of_group)]


def table_logits_fn(table: jax.Array):
  """A batched logits_fn reading per-group Markov tables.

  Args:
    table: float32[G, L, V + 1, V], e.g. `ToySuite.group_tables(...)`. Pass it
      as a traced argument of your own jitted function (see `toy_passk`) so
      new tables do not recompile.

  Returns:
    (tokens int32[G, N, L], t) -> float32[G, N, V].
  """
  vocab = table.shape[-1]

  def logits_fn(tokens: jax.Array, t: jax.Array) -> jax.Array:
    prev = jax.lax.dynamic_index_in_dim(tokens, jnp.maximum(t - 1, 0), -1, keepdims=False)
    prev = jnp.where(t > 0, prev, vocab)  # [G, N]
    step_table = jax.lax.dynamic_index_in_dim(table, t, 1, keepdims=False)  # [G, V+1, V]
    return jnp.take_along_axis(step_table, prev[:, :, None], axis=1)  # [G, N, V]

  return logits_fn


def make_suite(
    seed: int,
    *,
    num_problems: int,
    vocab: int = 8,
    length: int = 3,
    difficulty: tuple[float, float] = (0.0, 1.5),
    scale: float = 1.5,
) -> ToySuite:
  """Random toy problems.

  Args:
    seed: integer seed (numpy), so the suite is reproducible.
    num_problems: P.
    vocab: tokens per position.
    length: answer length.
    difficulty: range of the per-problem amount subtracted from the answer's
      logit at every position (uniform): larger is rarer.
    scale: standard deviation of the random logits.

  Returns:
    A ToySuite.
  """
  if num_problems < 1 or vocab < 2 or length < 1:
    raise ValueError(
        f"make_suite: need num_problems >= 1, vocab >= 2, length >= 1; got "
        f"{num_problems}, {vocab}, {length}."
    )
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(num_problems, length, vocab + 1, vocab)) * scale
  # The answer follows the most likely token at every step (a "right" answer
  # the model leans towards), made rarer by the problem's difficulty.
  lows = rng.uniform(*difficulty, size=num_problems)
  rows = np.arange(num_problems)
  answers = np.zeros((num_problems, length), np.int64)
  prev = np.full(num_problems, vocab)
  for t in range(length):
    answers[:, t] = np.argmax(logits[rows, t, prev], axis=-1)
    logits[rows, t, prev, answers[:, t]] -= lows
    prev = answers[:, t]
  return ToySuite(logits.astype(np.float32), answers.astype(np.int32))
