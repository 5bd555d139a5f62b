"""Top-k and top-p without a sort keep exactly the sets of a float64 sort-based reference.

The rows mix the shapes that stress a threshold search: random normal logits
(a nucleus of most of the vocabulary), peaked and Zipf-like rows (a nucleus
of a few tokens), heavy ties (logits rounded to a few values), near-ties
(values one ulp apart), -inf entries, bfloat16 logits, all-equal rows, a
single finite logit, a tied maximum, and a geometric row that defeats
interpolation. Top-k counts are exact, so top-k must match everywhere. Top-p
compares float32 sums with top_p * Z; a row where a sum at the threshold lies
within float32 rounding of top_p * Z is ambiguous (see `_SUM_TOLERANCE`),
and only there may the kept set differ, by the tie group at the threshold.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qmotto.sampling import LogitTransform
from qmotto.sampling import inverse_cdf
from qmotto.sampling import transforms
from qmotto.sampling import truncation

# A bound on the float32 rounding of the comparisons with top_p * Z, as a
# fraction of the smaller side's mass min(top_p, 1 - top_p) * Z (the side the
# search sums). XLA sums a row of V <= 5000 weights in 16 partial sums of at
# most ~320 terms each, so a sum is within about 330 * 2**-24 = 2e-5 of its
# exact value in the worst case (typically ~1e-7), and the sum and the goal
# each carry such an error: 1e-4 bounds every comparison. Rows whose exact
# margin is below it are "ambiguous".
_SUM_TOLERANCE = 1e-4
# At most this fraction of a batch may differ from the float64 reference.
# A row differs only where rounding (~1e-7, at worst ~1e-6 of the summed
# side's mass) crosses the gap between two consecutive values of S at the
# threshold, one entry's weight: >= ~1.5e-3 of that mass for the 4099-entry
# normal rows at top_p = 0.95 (the densest case here), larger elsewhere. So a
# row differs with probability <= ~1.3e-3, 0.12 of the 88 rows of a batch on
# average, and 6 or more rows (1/15) would occur with probability ~4e-9.
_MAX_DIFFERING_FRACTION = 1 / 15
VOCABS = (1, 7, 300, 4099)
TOP_PS = (1e-6, 0.3, 0.5, 0.9, 0.95, 0.999999)


def _row_kinds(vocab: int, rng: np.random.Generator) -> dict:
  """name -> float32[V] logits, one row of each kind."""
  normal = rng.standard_normal(vocab).astype(np.float32)
  near = normal.copy()
  near[1::2] = np.nextafter(near[0::2][: vocab // 2], np.float32(np.inf))  # Pairs one ulp apart.
  with_inf = normal.copy()
  with_inf[rng.random(vocab) < 0.3] = -np.inf
  with_inf[rng.integers(vocab)] = 1.0  # At least one finite logit.
  single = np.full(vocab, -np.inf, np.float32)
  single[rng.integers(vocab)] = 0.3
  tied_max = normal.copy()
  tied_max[rng.integers(vocab, size=3)] = normal.max()
  ranks = rng.permutation(vocab) + 1
  return {
      "normal": normal,
      "peaked": 4.0 * normal,
      "zipf": (-1.1 * np.log(ranks) + 0.3 * rng.standard_normal(vocab)).astype(np.float32),
      "ties": np.round(2.0 * normal) / 2.0,
      "near_ties": near,
      "with_inf": with_inf,
      "bfloat16": np.asarray(jnp.asarray(normal, jnp.bfloat16).astype(jnp.float32)),
      "all_equal": np.zeros(vocab, np.float32),
      "single": single,
      "tied_max": tied_max,
      "geometric": (-np.log(2.0) * rng.permutation(np.arange(vocab) % 48)).astype(np.float32),
  }


def _logits(vocab: int, seed: int, rows_per_kind: int = 8) -> np.ndarray:
  """float32[R, V]: rows_per_kind rows of every kind."""
  rng = np.random.default_rng(seed)
  rows = [row for _ in range(rows_per_kind) for row in _row_kinds(vocab, rng).values()]
  return np.stack(rows).astype(np.float32)


def _nucleus(weights: np.ndarray, top_p: float) -> tuple[np.ndarray, np.ndarray]:
  """The float64 reference: (keep bool[R, V], margin float[R]).

  Per distinct positive value v (descending), S(v) = the mass of the strictly
  heavier entries; v is kept iff S(v) < top_p * Z, the largest always. The
  margin is min |S(v) - top_p * Z| / Z over the last kept and the first
  dropped value: how far the row is from a different answer.
  """
  keep = np.zeros(weights.shape, bool)
  margin = np.full(weights.shape[0], np.inf)
  for r, row in enumerate(weights.astype(np.float64)):
    values, counts = np.unique(row[row > 0], return_counts=True)
    if not len(values):
      continue
    values, counts = values[::-1], counts[::-1]
    heavier = np.cumsum(values * counts) - values * counts  # [distinct values]
    total = row.sum()
    goal = top_p * total
    kept = heavier < goal
    kept[0] = True
    last = np.flatnonzero(kept).max()
    keep[r] = row >= values[last]
    boundary = heavier[last:last + 2] if last > 0 else heavier[1:2]
    if len(boundary):
      margin[r] = np.abs(boundary - goal).min() / total
  return keep, margin


def _flips_one_group(kept: np.ndarray, reference: np.ndarray, weights: np.ndarray) -> bool:
  """Whether `kept` is `reference` with the tie group next to its threshold added or removed."""
  positive = weights > 0
  values = np.unique(weights[positive])[::-1]
  threshold_index = np.flatnonzero(values == weights[reference & positive].min())[0]
  for index in (threshold_index - 1, threshold_index + 1):
    if 0 <= index < len(values) and np.array_equal(kept & positive, positive & (weights >= values[index])):
      return True
  return False


@pytest.mark.parametrize("vocab", VOCABS)
def test_top_p_keeps_the_float64_nucleus(vocab):
  logits = jnp.asarray(_logits(vocab, seed=vocab))
  rows = logits.shape[0]
  for top_p, temperature in zip(TOP_PS, (1.0, 0.7, 1.0, 1.3, 1.0, 1.0)):
    full = LogitTransform(temperature=temperature)
    weights = np.asarray(jax.jit(transforms.token_weights, static_argnums=1)(logits, full))
    truncated = np.asarray(jax.jit(transforms.token_weights, static_argnums=1)(
        logits, LogitTransform(temperature=temperature, top_p=top_p)))
    # Kept weights are untouched, dropped ones are zero.
    np.testing.assert_array_equal(truncated, np.where(truncated > 0, weights, 0.0))
    reference, margin = _nucleus(weights, top_p)
    kept = truncated > 0
    ambiguous = margin < _SUM_TOLERANCE * min(top_p, 1.0 - top_p)
    differs = [r for r in range(rows) if not np.array_equal(kept[r], reference[r] & (weights[r] > 0))]
    for r in differs:
      assert ambiguous[r] and _flips_one_group(kept[r], reference[r], weights[r]), (top_p, r, margin[r])
    assert len(differs) <= max(1, int(rows * _MAX_DIFFERING_FRACTION)), (top_p, differs)


@pytest.mark.parametrize("vocab", VOCABS)
def test_top_k_keeps_every_logit_tied_with_the_kth(vocab):
  logits = _logits(vocab, seed=100 + vocab)
  for k in sorted({1, 2, 50, max(vocab - 1, 1), vocab, vocab + 3}):
    out = np.asarray(jax.jit(truncation.top_k_logits, static_argnums=1)(jnp.asarray(logits), k))
    kth = np.sort(logits, axis=-1)[:, -min(k, vocab)][:, None]  # Keep x_j iff #{x_i > x_j} < k.
    np.testing.assert_array_equal(out, np.where(logits >= kth, logits, -np.inf), err_msg=f"k={k}")


@pytest.mark.parametrize("top_p", [1e-6, 0.5, 1 - 1e-7])
def test_top_p_edge_rows(top_p):
  logits = jnp.array([
      [0.0, 0.0, 0.0, 0.0],  # All equal: all kept (the maximum and its ties).
      [-jnp.inf, 2.0, -jnp.inf, -jnp.inf],  # One finite logit.
      [-jnp.inf, -jnp.inf, -jnp.inf, -jnp.inf],  # No distribution: all zero, no NaN.
      [1.0, 3.0, 3.0, -2.0],  # A tied maximum.
  ], jnp.float32)
  weights = np.asarray(transforms.token_weights(logits, LogitTransform(top_p=top_p)))
  assert np.isfinite(weights).all()
  np.testing.assert_array_equal(weights[0], 1.0)
  np.testing.assert_array_equal(weights[1], [0.0, 1.0, 0.0, 0.0])
  np.testing.assert_array_equal(weights[2], 0.0)
  np.testing.assert_array_equal(weights[3] == 1.0, [False, True, True, False])  # Both maxima, always.
  if top_p < 0.5:
    np.testing.assert_array_equal(weights[3], [0.0, 1.0, 1.0, 0.0])  # Only the maximum and its tie.
  if top_p > 0.999:
    assert (weights[3] > 0).all()


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_logits_truncate_like_their_float32_values(dtype):
  logits = jnp.asarray(_logits(300, seed=3, rows_per_kind=1)).astype(dtype)
  for transform in (LogitTransform(top_p=0.9), LogitTransform(top_k=20), LogitTransform(top_k=40, top_p=0.8)):
    np.testing.assert_array_equal(
        transforms.token_weights(logits, transform),
        transforms.token_weights(logits.astype(jnp.float32), transform))


def test_order_keys_order_like_the_floats():
  # Normal numbers, zeros and infinities (XLA flushes subnormals to zero).
  rng = np.random.default_rng(0)
  specials = np.array([-np.inf, -1e38, -1.0, -1.2e-38, -0.0, 0.0, 1.2e-38, 1.0, 3e38, np.inf], np.float32)
  values = rng.standard_normal(500).astype(np.float32) * np.float32(10.0) ** rng.integers(-36, 38, 500)
  values = np.concatenate([specials, values[np.abs(values) >= np.finfo(np.float32).tiny]])
  keys = np.asarray(truncation.order_keys(jnp.asarray(values)))
  a, b = np.meshgrid(np.arange(len(values)), np.arange(len(values)))
  np.testing.assert_array_equal(keys[a] < keys[b], values[a] < values[b])


def _primitives(jaxpr) -> set:
  """The names of every primitive in a jaxpr, nested loops included."""
  names = set()
  for equation in jaxpr.eqns:
    names.add(equation.primitive.name)
    for param in equation.params.values():
      inner = getattr(param, "jaxpr", param)
      if hasattr(inner, "eqns"):
        names |= _primitives(inner)
  return names


@pytest.mark.parametrize("transform", [LogitTransform(top_p=0.9), LogitTransform(top_k=50)], ids=["top_p", "top_k"])
def test_truncations_compile_without_a_sort(transform):
  logits = jnp.zeros((4, 1000), jnp.float32)
  step = lambda x, u: inverse_cdf.choose_tokens(x, u, transform)
  primitives = _primitives(jax.make_jaxpr(step)(logits, jnp.zeros(4)).jaxpr)
  assert "while" in primitives and not {"sort", "top_k", "argsort"} & primitives, primitives
  compiled = jax.jit(step).lower(logits, jnp.zeros(4)).compile().as_text()
  assert " sort(" not in compiled and "topk" not in compiled.lower()


@pytest.mark.parametrize("vocab, top_p", [(200, 0.3), (4099, 0.95)])  # one vocabulary in one level, one in two.
def test_floor_applied_inside_the_inverse_cdf_equals_the_masked_weights(vocab, top_p):
  """The sampling step applies the nucleus floor on the fly; the result is that of the masked weights."""
  keys = jax.random.split(jax.random.key(11), 3)
  logits = jax.random.normal(keys[0], (96, vocab)) * jnp.where(jnp.arange(96) < 48, 1.0, 4.0)[:, None]
  u = jax.random.uniform(keys[1], (96,))
  transform = LogitTransform(top_p=top_p)
  weights, floor = transforms.token_weights_and_floor(logits, transform)
  assert floor.shape == (96,)
  masked = transforms.token_weights(logits, transform)
  np.testing.assert_array_equal(masked, truncation.top_p_weights(weights, top_p))
  np.testing.assert_array_equal(masked, jnp.where(weights <= floor[:, None], 0.0, weights))
  assert 0 < int(jnp.sum(masked == 0)) < masked.size  # The floor drops some weights, not all.
  tokens, rescaled = inverse_cdf.invert_cdf(weights, u, floor)
  reference_tokens, reference_rescaled = inverse_cdf.invert_cdf(masked, u)
  np.testing.assert_array_equal(tokens, reference_tokens)
  np.testing.assert_allclose(rescaled, reference_rescaled, atol=1e-6)
  assert np.all(np.take_along_axis(np.asarray(masked), np.asarray(tokens)[:, None], axis=1) > 0)
  chosen, _, logprobs = inverse_cdf.choose_tokens(logits, u, transform)
  np.testing.assert_array_equal(chosen, tokens)
  chosen_weight = np.take_along_axis(np.asarray(masked, np.float64), np.asarray(tokens)[:, None], axis=1)[:, 0]
  np.testing.assert_allclose(logprobs, np.log(chosen_weight / np.asarray(masked, np.float64).sum(1)), atol=1e-5)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: truncation.top_k_logits(x, 0), "top_k must be an int >= 1"),
        (lambda x: truncation.top_k_logits(x, 2.0), "top_k must be an int >= 1"),
        (lambda x: truncation.top_p_weights(x, 0.0), r"top_p must be a finite float > 0.0 and <= 1.0"),
        (lambda x: truncation.top_p_weights(x, 1.5), r"top_p must be a finite float > 0.0 and <= 1.0"),
    ],
)
def test_bad_arguments_are_value_errors(call, match):
  with pytest.raises(ValueError, match=match):
    call(jnp.ones((2, 5)))
