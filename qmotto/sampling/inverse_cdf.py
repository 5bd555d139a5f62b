"""Inverse-CDF choice of the next token from its (transformed) weights.

A uniform u in [0, 1) picks the token whose CDF bin [l, l + p) holds u. Three
pitfalls are handled here (see METHOD.md):
  * Parallel prefix sums need not be monotone on accelerators. The CDF is
    made nondecreasing with a running max, and zero-probability tokens get
    exactly the upper edge of the token before them, so their bins are empty
    whatever the summation order.
  * A zero-probability token is never chosen, also when u lands on a bin edge
    or when rounding leaves u * total at the total: the choice is then the
    last token with positive probability.
  * The CDF is not assumed to end at 1: u is scaled by its last value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from qmotto.sampling import transforms


def monotone_cdf(weights: jax.Array) -> jax.Array:
  """Robust upper bin edges: float32[B, V], nondecreasing, flat at zero weights."""
  cdf = jnp.cumsum(weights, axis=-1)
  cdf = jnp.where(weights > 0, cdf, 0.0)
  return jax.lax.cummax(cdf, axis=weights.ndim - 1)


# Vocabularies larger than this are searched in two levels: blocks first,
# then tokens inside the chosen block (see `invert_cdf`).
BLOCK = 256


def _last_positive(weights: jax.Array) -> jax.Array:
  """int32[B]: index of the last positive entry of each row."""
  iota = jnp.arange(weights.shape[-1], dtype=jnp.int32)
  return jnp.max(jnp.where(weights > 0, iota, 0), axis=-1)


def _lookup(
    weights: jax.Array, cdf: jax.Array, target: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The bin of `target` in the robust CDF of `weights`.

  Args:
    weights: float32[B, V] >= 0, a positive entry per row.
    cdf: float32[B, V], monotone_cdf(weights).
    target: float32[B], in [0, cdf[:, -1]).

  Returns:
    index: int32[B], the first bin whose upper edge exceeds target, or the
      last positive bin if rounding put target at or past the total.
    lower, upper: float32[B], the bin's edges.
  """
  vocab = weights.shape[-1]
  index = jnp.sum(cdf <= target[:, None], axis=-1, dtype=jnp.int32)
  index = jnp.where(index >= vocab, _last_positive(weights), index)
  upper = jnp.take_along_axis(cdf, index[:, None], axis=-1)[:, 0]
  below = jnp.take_along_axis(cdf, jnp.maximum(index - 1, 0)[:, None], axis=-1)[:, 0]
  lower = jnp.where(index > 0, below, 0.0)
  return index, lower, upper


def _invert(
    weights: jax.Array, u: jax.Array, floor: jax.Array | None
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """`invert_cdf`, plus the chosen token's weight and the row's total: float32[B] each."""
  batch, vocab = weights.shape

  def kept(w, floor_):  # w: [B, ...]; floor_: [B] or None.
    if floor_ is None:
      return w
    floor_ = floor_.reshape(floor_.shape + (1,) * (w.ndim - 1))
    return jnp.where(w <= floor_, 0.0, w)

  if vocab <= BLOCK:
    weights = kept(weights, floor)  # [B, V]
    cdf = monotone_cdf(weights)  # [B, V]
    total = cdf[:, -1]
    target = u * total
    tokens, lower, upper = _lookup(weights, cdf, target)
  else:
    num_blocks = -(-vocab // BLOCK)
    padded = jnp.pad(weights, ((0, 0), (0, num_blocks * BLOCK - vocab)))
    blocks = padded.reshape(batch, num_blocks, BLOCK)  # [B, nb, BLOCK]
    # The truncation mask is applied inside the reduction (XLA fuses it), so
    # no masked copy of the [B, V] weights is ever written.
    block_sums = jnp.sum(kept(blocks, floor), axis=-1)  # [B, nb]
    block_cdf = monotone_cdf(block_sums)  # [B, nb]
    total = block_cdf[:, -1]
    target = u * total
    block, block_lower, _ = _lookup(block_sums, block_cdf, target)
    inner = kept(jnp.take_along_axis(blocks, block[:, None, None], axis=1)[:, 0], floor)  # [B, BLOCK]
    local = target - block_lower
    offset, lower, upper = _lookup(inner, monotone_cdf(inner), local)
    tokens, target = block * BLOCK + offset, local
  width = upper - lower
  rescaled = jnp.where(width > 0, (target - lower) / jnp.where(width > 0, width, 1.0), 0.0)
  rescaled = jnp.clip(rescaled, 0.0, np.float32(1.0 - 2.0**-24))
  chosen = jnp.take_along_axis(weights, tokens[:, None], axis=-1)[:, 0]  # [B], a kept entry.
  return tokens, rescaled, chosen, total


def invert_cdf(
    weights: jax.Array, u: jax.Array, floor: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
  """Chooses tokens by inverse CDF and rescales u into the chosen bin.

  Above `BLOCK` tokens the search runs in two levels, each with the robust
  CDF: the CDF of the block sums picks a block, the CDF inside that block
  picks the token. The bins are the same up to float32 rounding of the edges,
  and the full-vocabulary prefix sum (the costly part) is gone: one pass for
  the block sums, then work on one block per row.

  Args:
    weights: float32[B, V] unnormalised probabilities, >= 0, a positive entry
      in every row (above the floor).
    u: float32[B] in [0, 1).
    floor: optional float32[B]: only the weights above their row's floor
      count (the others as zero), e.g. a top-p threshold
      (`transforms.token_weights_and_floor`); applied on the fly.

  Returns:
    tokens: int32[B], never a zero-weight (or dropped) token.
    rescaled: float32[B] in [0, 1), (u - l) / p for the chosen bin [l, l + p).
  """
  tokens, rescaled, _, _ = _invert(weights, u, floor)
  return tokens, rescaled


def choose_tokens(
    logits: jax.Array, u: jax.Array, transform: transforms.LogitTransform
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Next tokens from logits and one uniform per row.

  Args:
    logits: float[B, V].
    u: float32[B] in [0, 1).
    transform: how logits become probabilities.

  Returns:
    tokens: int32[B].
    rescaled: float32[B], u rescaled into the chosen bin (u itself if greedy).
    logprobs: float32[B], log-probability of each chosen token under the
      transformed distribution (0 if greedy).
  """
  if transform.greedy:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32), u, jnp.zeros(u.shape, jnp.float32)
  weights, floor = transforms.token_weights_and_floor(logits, transform)  # [B, V] max 1, [B] or None.
  tokens, rescaled, chosen, total = _invert(weights, u, floor)
  logprobs = jnp.log(chosen) - jnp.log(total)
  return tokens, rescaled, logprobs
