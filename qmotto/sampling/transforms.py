"""Logit transforms: how logits become the next-token distribution the sampler inverts.

Temperature, top-k, top-p and min-p only change the probabilities before the
inverse CDF, so every sampler stays exact for the transformed distribution
(METHOD.md, "Token order and truncation"). The weights are computed in
float32 whatever the logits' dtype. Top-k and top-p find their thresholds
without sorting the vocabulary (`truncation`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from qmotto.sampling import truncation
from qmotto.utils import numbers


@dataclasses.dataclass(frozen=True)
class LogitTransform:
  """How logits become next-token probabilities (hashable: a static jit arg).

  Applied in this order (as Hugging Face transformers does): temperature,
  top-k, top-p, min-p. temperature == 0 means greedy (argmax), and the other
  options are then irrelevant.

  The kept sets, ties included (`truncation` finds them without a sort):
    * top-k keeps logit x_j iff #{i : x_i > x_j} < k, so every entry tied
      with the k-th largest is kept. Exact.
    * top-p keeps weight w_j (w = exp((x - max) / T) after top-k, largest 1,
      Z = sum(w)) iff S(w_j) = sum_{i : w_i > w_j} w_i < top_p * Z: sorted
      descending, the shortest prefix whose mass reaches top_p, plus every
      entry tied with its last one; the largest is always kept. The sums are
      float32, in XLA's reduction order, over the smaller side of the
      threshold (the dropped mass against (1 - top_p) * Z when top_p > 1/2).
      In a row where S(w_j) is within their rounding of top_p * Z (1e-7 to
      1e-6 of that side's mass) the kept set may differ from exact
      arithmetic, and from a sorted float32 cumulative sum (which rounds
      differently), by the tie group at the threshold. Ties are never split.
    * min-p drops w_j < min_p * max(w).

  Attributes:
    temperature: >= 0.
    top_k: keep the k largest logits (None: all).
    top_p: keep the smallest set of most likely tokens whose mass reaches
      top_p, in (0, 1] (None: all).
    min_p: drop tokens with probability below min_p times the largest, in
      [0, 1] (None: none dropped).
  """

  temperature: float = 1.0
  top_k: int | None = None
  top_p: float | None = None
  min_p: float | None = None

  def __post_init__(self):
    # Python, NumPy and JAX scalars alike become plain Python numbers, so the
    # transform stays hashable (a static jit argument) whatever was passed.
    fields = dict(temperature=numbers.check_float("temperature", self.temperature, minimum=0.0))
    if self.top_k is not None:
      fields["top_k"] = numbers.check_int("top_k", self.top_k, minimum=1)
    if self.top_p is not None:
      fields["top_p"] = numbers.check_float(
          "top_p", self.top_p, minimum=0.0, maximum=1.0, exclusive_minimum=True
      )
    if self.min_p is not None:
      fields["min_p"] = numbers.check_float("min_p", self.min_p, minimum=0.0, maximum=1.0)
    for name, value in fields.items():
      object.__setattr__(self, name, value)

  @property
  def greedy(self) -> bool:
    return self.temperature == 0


def token_weights(logits: jax.Array, transform: LogitTransform) -> jax.Array:
  """Unnormalised next-token probabilities after the transform.

  Args:
    logits: float[B, V].
    transform: a non-greedy LogitTransform.

  Returns:
    float32[B, V], >= 0, largest entry 1 in every row with a finite logit.
  """
  w, floor = token_weights_and_floor(logits, transform)
  return w if floor is None else jnp.where(w <= floor[:, None], 0.0, w)


def token_weights_and_floor(logits: jax.Array, transform: LogitTransform) -> tuple[jax.Array, jax.Array | None]:
  """`token_weights` as (weights, floor): the top-p cut as a threshold, not applied.

  The kept weights are those above their row's floor; `inverse_cdf` applies
  the floor inside its own pass, so the sampling step never writes a masked
  copy of the [B, V] weights.

  Args:
    logits: float[B, V].
    transform: a non-greedy LogitTransform.

  Returns:
    weights: float32[B, V] >= 0 (temperature, top-k and min-p applied).
    floor: float32[B] (keep w > floor), or None without top-p.
  """
  x = logits.astype(jnp.float32)
  top = jnp.max(x, axis=-1)  # [B]; top-k keeps the maximum.
  if transform.top_k is not None:
    x = truncation.top_k_logits(x, transform.top_k, row_max=top)  # [B, V]; temperature keeps the order.
  valid = jnp.isfinite(top)
  shifted = x - jnp.where(valid, top, 0.0)[:, None]  # [B, V], <= 0 in a valid row.
  temperature = np.float32(transform.temperature)
  if temperature >= np.finfo(np.float32).tiny:
    # Shift by the max, then divide: logits / T would overflow to +-inf for a
    # tiny T (1e-40) and pick an arbitrary token; (x - max) / T only goes to
    # -inf, so the weights tend to the limit distribution (the argmax, ties
    # shared), exactly as they should. (At T = 1 the division is exact.)
    w = jnp.exp(shifted / temperature)  # [B, V]
  else:
    # A T > 0 below float32's smallest normal number (accelerators flush it
    # to zero, and 0 / 0 is NaN): the limit, uniform over the row's maxima.
    w = (shifted == 0).astype(jnp.float32)  # [B, V]
  floor = None
  if transform.top_p is not None and transform.top_p < 1.0:
    # A valid row's largest weight is exp(0) = 1; a row of -inf logits has none.
    floor = truncation.top_p_floor(w, transform.top_p, row_max=valid.astype(jnp.float32))  # [B]
  if transform.min_p is not None and transform.min_p > 0.0:
    if floor is not None:
      w = jnp.where(w <= floor[:, None], 0.0, w)
      floor = None
    w = jnp.where(w < transform.min_p * jnp.max(w, axis=-1, keepdims=True), 0.0, w)
  return w, floor
