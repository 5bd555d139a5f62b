"""Small autoregressive toy models whose sequence distribution can be enumerated."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from . import reference


class PrefixTableModel:
  """Logits at step t are a fixed random row picked by the whole prefix.

  `logits_fn` takes tokens int32[..., L] and returns float32[..., V]; the
  exact distribution of every full sequence is enumerable (V**L of them).
  """

  def __init__(self, vocab: int, length: int, seed: int, scale: float = 1.5):
    self.vocab, self.length = vocab, length
    rng = np.random.default_rng(seed)
    self.table = (rng.normal(size=(length, vocab**length, vocab)) * scale).astype(np.float32)

  def _prefix_ids(self, tokens: np.ndarray | jax.Array, t, xp):
    powers = self.vocab ** xp.arange(self.length)
    mask = xp.arange(self.length) < t
    return xp.sum(xp.where(mask, tokens, 0) * powers, axis=-1)

  def logits_fn(self, tokens: jax.Array, t: jax.Array) -> jax.Array:
    table = jnp.asarray(self.table)
    return table[t, self._prefix_ids(tokens, t, jnp)]

  def sequence_probs(self, **transform) -> dict[tuple[int, ...], float]:
    probs = {}
    for seq in itertools.product(range(self.vocab), repeat=self.length):
      p = 1.0
      for t in range(self.length):
        row = self.table[t, self._prefix_ids(np.array(seq), t, np)]
        p *= reference.transformed_probs(row[None], **transform)[0, seq[t]]
      probs[seq] = p
    return probs


def stationary_markov(step_logits: np.ndarray):
  """logits_fn for a Markov chain over V tokens: row picked by the previous token
  (row V for t = 0)."""
  table = jnp.asarray(step_logits, jnp.float32)
  vocab = step_logits.shape[1]

  def logits_fn(tokens, t):
    prev = jnp.where(t > 0, jax.lax.dynamic_index_in_dim(tokens, jnp.maximum(t - 1, 0), -1, False), vocab)
    return table[prev]

  return logits_fn
