"""Exact top-k and top-p without sorting the vocabulary.

Both truncations keep every entry of a row at or above a threshold that is
one of the row's own values; `top_k_logits` and `top_p_weights` find that
value by a search in which every round is one fused pass over the row,
instead of a sort (on XLA:CPU a sort of [64, 32000] float32 costs 0.5 s,
two hundred untruncated sampling steps).

The kept sets (the definitions of the sort-based implementations):
  * top-k keeps x_j iff #{i : x_i > x_j} < k: the k largest and every entry
    tied with the k-th largest.
  * top-p keeps w_j iff S(w_j) = sum_{i : w_i > w_j} w_i < top_p * Z, with
    Z = sum_i w_i: sort descending, keep the shortest prefix whose mass
    reaches top_p * Z and every entry tied with its last one. The largest
    entry is always kept.
Ties are never split: a tie group is kept or dropped as a whole. Counts are
exact, so top-k is exactly the sorted definition. Top-p compares float32
sums in XLA's reduction order (blocked partial sums, not a sorted cumulative
sum): Z, and the mass on the smaller side of the threshold (the kept mass
against top_p * Z when top_p <= 1/2, the dropped mass against
(1 - top_p) * Z otherwise, which is the same test in exact arithmetic and
rounds less). Where S(w_j) lies within that rounding of top_p * Z (1e-7 to
1e-6 of the smaller side's mass for 10^3 to 10^5 entries) the kept set may
differ from an exact evaluation, and from a sorted float32 cumulative sum,
by the tie group at the threshold; elsewhere it is exact. Subnormal values
count as zero, as XLA's CPU and GPU backends compare them.

The search. Values are compared as int32 keys that order like the floats
(`order_keys`). A measure is the mass (top-p) or the count (top-k) of the
entries with a key above a pivot; the threshold is the smallest present
value whose measure is below the goal (top_p * Z, or k). Each row keeps a
bracket (lo, hi] of keys holding the threshold (the measure above lo
reaches the goal, the one above hi does not), with the measure and count
above both ends, the smallest key above lo and the largest present key at
or below hi. A round measures one pivot with a single variadic reduction
(mass, count, next key above, next key below; XLA:CPU vectorizes it as long
as it carries one float accumulator) and moves one end of the bracket:
  * The pivot comes from a model of the bracket: the opening pass also counts
    the entries above a fixed grid below the row maximum, and inside each
    interval between known counts the entries are spread evenly in log
    weight (top-p) or logit (top-k). When two rounds in a row land on the
    same side, the secant through them gives the pivot instead; after
    `_BISECT_AFTER` such rounds, and in every round from
    `_FORCED_BISECTION_FROM` on, the keys are bisected, so a search never
    takes more than `MAX_ROUNDS` rounds.
  * A row is done when the threshold is certain: dropping the smallest entry
    above lo takes the measure below the goal (it is kept), adding the
    largest entry at or below hi reaches the goal (the next one down is
    dropped), or the bracket holds a single value.
The rounds run in a `lax.while_loop` until every row of the batch is done.

Cost on [64, 49152] float32, two CPU cores: a round is one read of the row,
0.1 to 0.25 ms; random normal logits (a nucleus of ~70% of the vocabulary)
take up to eight rounds per batch, peaked rows fewer. The opening pass and
the final mask (a second [B, V] array that the inverse CDF reads) cost about
half an untruncated sampling step on their own
(benchmarks/bench_foundation.py).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qmotto.utils import numbers

# The search ends within MAX_ROUNDS rounds: from _FORCED_BISECTION_FROM on
# every round halves the bracket's key range, which spans at most 2**32 keys.
MAX_ROUNDS = 100
_FORCED_BISECTION_FROM = MAX_ROUNDS - 34
# Rounds in a row on the same side of the threshold before the model's
# estimate is pushed across (and a secant step may replace it), and before
# the keys are bisected.
_PUSH_AFTER = 2
_BISECT_AFTER = 6
# A secant step only while the bracket holds more entries than this (in a
# small bracket two pivots' counts say too little about the local density).
_SECANT_ABOVE = 64
# The opening pass counts the entries above these distances below the row
# maximum: natural-log units of weight (top-p) or logit units (top-k).
_GRID = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0, 17.0)
# Keys 1 .. 2**23 - 1 are the positive subnormal floats; -1 .. -2**23 are -0.0
# and the negative ones.
_SUBNORMAL_KEYS = np.int32(2**23)
_INT_MIN = np.int32(np.iinfo(np.int32).min)
_INT_MAX = np.int32(np.iinfo(np.int32).max)
# Model coordinates are clipped to stay finite (no inf - inf).
_COORDINATE_LIMIT = np.float32(1e30)
# Widths below this count as zero in the model's formulas.
_TINY_WIDTH = np.float32(1e-6)


# ---------------------------------------------------------------------------
# Keys.


def order_keys(values: jax.Array) -> jax.Array:
  """int32 keys that order like float32 values (-0.0 is taken as +0.0).

  Args:
    values: float32[...].

  Returns:
    int32[...]: key(a) < key(b) iff a < b, for non-NaN a and b.
  """
  bits = jax.lax.bitcast_convert_type(values + 0.0, jnp.int32)  # + 0.0 turns -0.0 into +0.0.
  return jnp.where(bits < 0, bits ^ _INT_MAX, bits)


def _key_values(keys: jax.Array) -> jax.Array:
  """float32[...]: the values whose `order_keys` are `keys`."""
  return jax.lax.bitcast_convert_type(jnp.where(keys < 0, keys ^ _INT_MAX, keys), jnp.float32)


def _canonical(keys: jax.Array) -> jax.Array:
  """int32[...]: keys that select the same entries, none of them -0.0 or subnormal.

  XLA's CPU and GPU backends flush float32 subnormals to zero, so every entry
  compares as (and, through `order_keys`, has the key of) a normal number or
  zero. A threshold key between two such keys is replaced by the lower one:
  the keys of -0.0 and of negative subnormals by that of -FLT_MIN, those of
  positive subnormals by that of +0.0. The entries above it are the same,
  and comparing floats against its value then agrees with the keys.
  """
  negative_band = (keys < 0) & (keys >= -_SUBNORMAL_KEYS)
  positive_band = (keys > 0) & (keys < _SUBNORMAL_KEYS)
  return jnp.where(negative_band, -_SUBNORMAL_KEYS - 1, jnp.where(positive_band, 0, keys))


def _above(values: jax.Array, keys: jax.Array) -> jax.Array:
  """bool[B, V]: whether each value's key exceeds its row's canonical key (keys: int32[B]).

  Compared as floats, `~(value <= key's value)`: the order of the keys, and
  true for every value when the key lies below -inf (a NaN pattern).
  """
  return ~(values <= _key_values(keys)[:, None])


# ---------------------------------------------------------------------------
# One pass.


class _Scan(NamedTuple):
  """What one pass reports about a pivot key t, per row."""

  measure: jax.Array  # float32[B]: the mass (top-p) or the count (top-k) of the entries above t.
  count: jax.Array  # int32[B]: the number of entries above t.
  next_above: jax.Array  # int32[B]: the smallest key above t (the key of +inf if none).
  next_at_or_below: jax.Array  # int32[B]: the largest key at or below t (the key of -inf if none).
  grid_counts: jax.Array | None  # int32[B, G]: the number of entries above each grid key, if asked.


def _scan(values: jax.Array, by_mass: bool, pivot: jax.Array, grid: jax.Array | None = None,
          dropped: bool = False) -> _Scan:
  """Measures `pivot` in one fused pass over [B, V] (a single variadic reduction).

  XLA:CPU vectorizes the reduction while it has one float accumulator; the
  counts and the key min / max are integers. Every operand depends on the
  pivot, so XLA cannot hoist a [B, V] key array out of the search loop: a
  round reads `values` and nothing else.

  Args:
    values: float32[B, V]: weights >= 0 (top-p) or logits (top-k).
    by_mass: whether the measure is the mass (top-p) or the count (top-k).
    pivot: int32[B], a key per row.
    grid: int32[B, G] keys whose counts are also wanted, or None.
    dropped: for top-p, measure minus the mass at or below the pivot
      instead of the mass above it (see `_search_cut`).
  """
  above = _above(values, pivot)  # [B, V]
  # Weights >= 0 order like their bit patterns (+ 0.0 flushes a subnormal
  # as the comparisons do); logits need `order_keys`.
  keys_of = (lambda v: jax.lax.bitcast_convert_type(v + 0.0, jnp.int32)) if by_mass else order_keys
  operands = [
      above.astype(jnp.int32),
      keys_of(jnp.where(above, values, jnp.inf)),
      keys_of(jnp.where(above, -jnp.inf, values)),
  ]
  inits = [np.int32(0), _INT_MAX, _INT_MIN]
  combiners = [jnp.add, jnp.minimum, jnp.maximum]
  if by_mass:
    operands.append(jnp.where(above, 0.0, values) if dropped else jnp.where(above, values, 0.0))
    inits.append(np.float32(0))
    combiners.append(jnp.add)
  num_grid = 0 if grid is None else grid.shape[1]
  for j in range(num_grid):
    operands.append(_above(values, grid[:, j]).astype(jnp.int32))
    inits.append(np.int32(0))
    combiners.append(jnp.add)

  def combine(a, b):
    return [merge(x, y) for merge, x, y in zip(combiners, a, b)]

  out = jax.lax.reduce(operands, inits, combine, (1,))
  count, next_above, next_at_or_below = out[:3]
  measure = (-out[3] if dropped else out[3]) if by_mass else count.astype(jnp.float32)
  grid_counts = jnp.stack(out[len(out) - num_grid:], axis=1) if num_grid else None
  return _Scan(measure, count, next_above, next_at_or_below, grid_counts)


# ---------------------------------------------------------------------------
# The search state.


class _Search(NamedTuple):
  """The per-row state of the search, all [B]."""

  lo: jax.Array  # int32: a key whose measure still reaches the goal.
  hi: jax.Array  # int32: a key whose measure falls short of the goal.
  measure_lo: jax.Array  # float32: the measure above lo.
  measure_hi: jax.Array  # float32: the measure above hi.
  count_lo: jax.Array  # int32: the number of entries above lo.
  count_hi: jax.Array  # int32: the number of entries above hi.
  lowest: jax.Array  # int32: the smallest key above lo.
  highest: jax.Array  # int32: the largest present key at or below hi.
  done: jax.Array  # bool: the cut is known.
  cut: jax.Array  # int32: keep the entries whose key is above cut.
  streak: jax.Array  # int32: rounds in a row that moved the same end.
  last_side: jax.Array  # int32: +1 if the last round moved lo, -1 if it moved hi.
  previous: jax.Array  # int32: the pivot of the round before the last.
  previous_count: jax.Array  # int32: the number of entries above previous.
  previous_measure: jax.Array  # float32: the measure above previous.


class _Opening(NamedTuple):
  """What the opening pass fixes for the whole search."""

  search: _Search  # The first bracket.
  goal: jax.Array  # float32[B]: top_p * Z or k.
  grid_coordinates: jax.Array  # float32[B, G]: the grid in model coordinates, descending.
  grid_counts: jax.Array  # int32[B, G]: the number of entries above each grid point.


# ---------------------------------------------------------------------------
# Where to put the next pivot.


def _coordinates(keys: jax.Array, by_mass: bool) -> jax.Array:
  """float32[...]: a key's place in the model, log weight (top-p) or logit (top-k), finite."""
  values = _key_values(keys)
  coordinates = jnp.log(values) if by_mass else values
  return jnp.clip(coordinates, -_COORDINATE_LIMIT, _COORDINATE_LIMIT)


def _keys_of_coordinates(coordinates: jax.Array, by_mass: bool) -> jax.Array:
  """int32[...]: the key at a model coordinate (the inverse of `_coordinates`)."""
  return order_keys(jnp.exp(coordinates) if by_mass else coordinates)


def _entry_measure(keys: jax.Array, by_mass: bool) -> jax.Array:
  """float32[B]: what one entry with this key adds to the measure: its weight, or 1."""
  return _key_values(keys) if by_mass else jnp.ones(keys.shape, jnp.float32)


class _Intervals(NamedTuple):
  """The bracket cut at the grid points inside it, top interval first, all [B, G+1]."""

  tops: jax.Array  # float32: each interval's upper coordinate.
  widths: jax.Array  # float32: each interval's width in coordinates, >= 0.
  entries: jax.Array  # float32: the number of entries in each interval.
  measures: jax.Array  # float32: each interval's measure, as the model spreads it.


def _intervals(search: _Search, opening: _Opening, by_mass: bool) -> _Intervals:
  """The bracket's known points and what the model puts between them.

  Grid points outside the bracket are clipped to its ends, where they make
  empty intervals. For top-p an interval's entries, spread evenly in log
  weight, weigh exp(top) (1 - exp(-width)) / width each on average; the
  intervals' masses are then scaled to the bracket's measured mass.
  """
  top = _coordinates(search.highest, by_mass)[:, None]  # [B, 1]
  bottom = _coordinates(search.lowest, by_mass)[:, None]
  inner = jnp.clip(opening.grid_coordinates, bottom, top)  # [B, G]
  coordinates = jnp.concatenate([top, inner, bottom], axis=1)  # [B, G+2], descending.
  inner_counts = jnp.clip(opening.grid_counts, search.count_hi[:, None], search.count_lo[:, None])
  counts = jnp.concatenate([search.count_hi[:, None], inner_counts, search.count_lo[:, None]], axis=1)
  tops = coordinates[:, :-1]
  widths = tops - coordinates[:, 1:]
  entries = jnp.diff(counts, axis=1).astype(jnp.float32)
  if not by_mass:
    return _Intervals(tops, widths, entries, entries)
  mean_factor = jnp.where(widths > _TINY_WIDTH, -jnp.expm1(-widths) / jnp.maximum(widths, _TINY_WIDTH), 1.0)
  masses = entries * jnp.exp(tops - top) * mean_factor
  scale = (search.measure_lo - search.measure_hi) / jnp.maximum(jnp.sum(masses, axis=1), np.float32(1e-30))
  return _Intervals(tops, widths, entries, masses * scale[:, None])


def _model_pivot(search: _Search, opening: _Opening, by_mass: bool) -> jax.Array:
  """int32[B]: the key at the last entry that the model keeps.

  The interval where the cumulative measure from the top reaches the goal
  holds the threshold; inside it the model counts the entries kept. The
  pivot aims at the last kept entry itself, since a pivot in the gap just
  below or just above it ends the search. After `_PUSH_AFTER` rounds on the
  same side the aim moves across, by one standard deviation of the count
  per extra round.
  """
  parts = _intervals(search, opening, by_mass)
  need = opening.goal - search.measure_hi  # [B]: the measure the bracket must add.
  cumulative = jnp.cumsum(parts.measures, axis=1)  # [B, G+1]
  index = jnp.minimum(jnp.sum(cumulative < need[:, None], axis=1), cumulative.shape[1] - 1)[:, None]

  def pick(a):  # [B, G+1] -> [B]: the threshold's interval.
    return jnp.take_along_axis(a, index, axis=1)[:, 0]

  entries, width, measure = pick(parts.entries), pick(parts.widths), pick(parts.measures)
  need_here = need - (pick(cumulative) - measure)
  if by_mass:
    # How many entries, from the interval's top, carry that fraction of its mass.
    fraction = jnp.clip(need_here / jnp.maximum(measure, np.float32(1e-30)), 0.0, 1.0)
    reached = jnp.where(
        width > _TINY_WIDTH,
        -jnp.log1p(-fraction * -jnp.expm1(-width)) / jnp.maximum(width, _TINY_WIDTH) * entries,
        fraction * entries)
    kept = jnp.ceil(reached)
  else:
    kept = jnp.round(need_here)
  spread = jnp.sqrt(kept * jnp.maximum(entries - kept, 0.0) / jnp.maximum(entries, 1.0) + 1.0)
  push = jnp.where(search.streak >= _PUSH_AFTER, (search.streak - 1) * spread, 0.0)
  kept = jnp.clip(kept - search.last_side * push, 1.0, entries)
  # Entries sit mid-step on n equal steps, or at both ends of n - 1 steps when
  # the interval is the whole bracket (whose ends are the entries `lowest`, `highest`).
  whole = entries == (search.count_lo - search.count_hi).astype(jnp.float32)
  depth = jnp.where(whole, (kept - 1.0) / jnp.maximum(entries - 1.0, 1.0), (kept - 0.5) / jnp.maximum(entries, 1.0))
  return _keys_of_coordinates(pick(parts.tops) - depth * width, by_mass)


def _secant_pivot(search: _Search, goal: jax.Array, by_mass: bool) -> jax.Array:
  """int32[B]: the pivot on the secant through the last two pivots (on one side).

  Their counts give the density of entries per unit coordinate; the measure
  missing (or in excess) at the last pivot, over what one entry there adds,
  gives how many entries to move. Rows whose two pivots saw the same count
  get key -1 (no estimate).
  """
  moved_lo = search.last_side > 0
  last = jnp.where(moved_lo, search.lo, search.hi)  # [B]
  last_count = jnp.where(moved_lo, search.count_lo, search.count_hi)
  last_measure = jnp.where(moved_lo, search.measure_lo, search.measure_hi)
  u_last = _coordinates(last, by_mass)
  between = (last_count - search.previous_count).astype(jnp.float32)
  density = between / (_coordinates(search.previous, by_mass) - u_last)  # > 0 when usable.
  entries_to_move = (goal - last_measure) / _entry_measure(last, by_mass)  # < 0: up.
  usable = (between != 0) & (density > 0) & jnp.isfinite(density)
  coordinate = u_last - (jnp.ceil(entries_to_move) - 0.5) / jnp.where(usable, density, 1.0)
  return jnp.where(usable, _keys_of_coordinates(coordinate, by_mass), -1)


def _midpoint(low: jax.Array, high: jax.Array) -> jax.Array:
  """int32: floor((low + high) / 2), without overflow."""
  return (low >> 1) + (high >> 1) + (low & high & 1)


def _next_pivot(search: _Search, step: jax.Array, opening: _Opening, by_mass: bool) -> jax.Array:
  """int32[B] in [lowest, highest - 1]: the key that the round measures.

  The model's pivot; the secant's when the last two rounds fell on the same
  side of a bracket of more than `_SECANT_ABOVE` entries; the middle key
  after `_BISECT_AFTER` rounds on one side and from `_FORCED_BISECTION_FROM`
  on.
  """
  pivot = _model_pivot(search, opening, by_mass)
  secant = _secant_pivot(search, opening.goal, by_mass)
  wide = search.count_lo - search.count_hi > _SECANT_ABOVE
  use_secant = wide & (search.streak >= _PUSH_AFTER) & (secant >= search.lowest) & (secant < search.highest)
  pivot = jnp.where(use_secant, secant, pivot)
  bisect = (search.streak >= _BISECT_AFTER) | (step >= _FORCED_BISECTION_FROM)
  pivot = jnp.where(bisect, _midpoint(search.lowest, search.highest), pivot)
  # Entries' keys are canonical, so the canonical pivot stays in the bracket.
  return _canonical(jnp.clip(pivot, search.lowest, search.highest - 1))


# ---------------------------------------------------------------------------
# The search.


def _finish_rows(search: _Search, goal: jax.Array, by_mass: bool) -> _Search:
  """Marks the rows whose threshold is now certain, and their cut.

  The threshold lies in [lowest, highest]. It is lowest if dropping one
  entry `lowest` from the measure above lo takes it below the goal; it is
  highest if adding one entry `highest` to the measure above hi reaches the
  goal (so the next value down is dropped); and it is lowest if lowest >=
  highest. (Ties only strengthen both tests.)
  """
  keeps_lowest = search.measure_lo - _entry_measure(search.lowest, by_mass) < goal  # [B]
  drops_below_highest = search.measure_hi + _entry_measure(search.highest, by_mass) >= goal
  single_value = search.lowest >= search.highest
  cut = _canonical(jnp.where(keeps_lowest | single_value, search.lo, search.highest - 1))
  newly_done = ~search.done & (keeps_lowest | drops_below_highest | single_value)
  return search._replace(done=search.done | newly_done, cut=jnp.where(newly_done, cut, search.cut))


def _open(values: jax.Array, by_mass: bool, target: float, row_max: jax.Array, start: jax.Array,
          dropped: bool) -> _Opening:
  """The opening pass: the total measure, the grid counts, the first bracket.

  Args:
    values: float32[B, V]: weights >= 0 (top-p) or logits (top-k).
    by_mass: whether the measure is the mass (top-p) or the count (top-k).
    target: top_p (the goal is top_p times the row's mass) or k (the goal).
    row_max: float32[B], the largest value of each row.
    start: int32[B], a key below every entry that counts.
    dropped: whether the rounds measure minus the dropped mass (`_scan`).
  """
  top_key = order_keys(row_max)  # [B], canonical: the largest entry's key.
  grid_coordinates = _coordinates(top_key, by_mass)[:, None] - jnp.asarray(_GRID, jnp.float32)  # [B, G]
  scan = _scan(values, by_mass, start, _canonical(_keys_of_coordinates(grid_coordinates, by_mass)))
  total = scan.measure  # [B]: the mass or the count of every entry that counts.
  if not by_mass:
    goal, measure_lo, measure_hi = jnp.full(start.shape, target, jnp.float32), total, jnp.zeros_like(total)
  elif dropped:  # Minus the mass at or below lo (none) and hi (all).
    goal, measure_lo, measure_hi = -jnp.float32(1.0 - target) * total, jnp.zeros_like(total), -total
  else:
    goal, measure_lo, measure_hi = jnp.float32(target) * total, total, jnp.zeros_like(total)
  zeros = jnp.zeros(start.shape, jnp.int32)
  search = _Search(
      lo=start, hi=top_key, measure_lo=measure_lo, measure_hi=measure_hi,
      count_lo=scan.count, count_hi=zeros, lowest=scan.next_above, highest=top_key,
      done=jnp.zeros(start.shape, bool), cut=start, streak=zeros, last_side=zeros,
      previous=start, previous_count=scan.count, previous_measure=measure_lo)
  return _Opening(_finish_rows(search, goal, by_mass), goal, grid_coordinates, scan.grid_counts)


def _update(search: _Search, pivot: jax.Array, scan: _Scan, goal: jax.Array, by_mass: bool) -> _Search:
  """The search after measuring `pivot`: one end of each live row's bracket moves there."""
  live = ~search.done
  raises_lo = (scan.measure >= goal) & live  # [B]
  lowers_hi = (scan.measure < goal) & live
  side = jnp.where(raises_lo, 1, -1)
  moved_lo = search.last_side > 0  # Where the last round's pivot went.
  search = search._replace(
      previous=jnp.where(live, jnp.where(moved_lo, search.lo, search.hi), search.previous),
      previous_count=jnp.where(live, jnp.where(moved_lo, search.count_lo, search.count_hi), search.previous_count),
      previous_measure=jnp.where(
          live, jnp.where(moved_lo, search.measure_lo, search.measure_hi), search.previous_measure),
      lo=jnp.where(raises_lo, pivot, search.lo),
      hi=jnp.where(lowers_hi, pivot, search.hi),
      measure_lo=jnp.where(raises_lo, scan.measure, search.measure_lo),
      measure_hi=jnp.where(lowers_hi, scan.measure, search.measure_hi),
      count_lo=jnp.where(raises_lo, scan.count, search.count_lo),
      count_hi=jnp.where(lowers_hi, scan.count, search.count_hi),
      lowest=jnp.where(raises_lo, scan.next_above, search.lowest),
      highest=jnp.where(lowers_hi, scan.next_at_or_below, search.highest),
      streak=jnp.where(side == search.last_side, search.streak + 1, 1),
      last_side=side)
  return _finish_rows(search, goal, by_mass)


def _search_cut(values: jax.Array, by_mass: bool, target: float, row_max: jax.Array,
                start: jax.Array) -> jax.Array:
  """int32[B]: each row's cut (keep the entries whose key is above it). Args: as `_open`.

  For top_p > 1/2 the rounds sum the dropped mass (at or below the pivot)
  and compare it with (1 - top_p) Z, which is the same test in exact
  arithmetic: the smaller of the two sides carries the smaller rounding
  error.
  """
  dropped = by_mass and target > 0.5
  opening = _open(values, by_mass, target, row_max, start, dropped)

  def round_(state):
    step, search = state
    pivot = _next_pivot(search, step, opening, by_mass)
    scan = _scan(values, by_mass, pivot, dropped=dropped)
    return step + 1, _update(search, pivot, scan, opening.goal, by_mass)

  def more(state):
    step, search = state
    return (step < MAX_ROUNDS) & ~jnp.all(search.done)

  _, search = jax.lax.while_loop(more, round_, (jnp.int32(0), opening.search))
  # Every round shrinks [lowest, highest], so all rows are done; were one
  # not, it would keep everything above lo (a superset of its nucleus).
  return jnp.where(search.done, search.cut, search.lo)


# ---------------------------------------------------------------------------
# The truncations.


def top_k_logits(logits: jax.Array, k: int, row_max: jax.Array | None = None) -> jax.Array:
  """Sets every logit outside the top k of its row to -inf.

  x_j is kept iff #{i : x_i > x_j} < k: the entries tied with the k-th
  largest are all kept. Exact (the counts are integers), without a sort.

  Args:
    logits: float32[B, V].
    k: >= 1; k >= V keeps every logit.
    row_max: float32[B], the row maxima if already known.

  Returns:
    float32[B, V].
  """
  k = numbers.check_int("top_k", k, minimum=1)
  if k >= logits.shape[-1]:
    return logits
  row_max = jnp.max(logits, axis=-1) if row_max is None else row_max
  if k == 1:  # The maximum and its ties: no search needed.
    return jnp.where(logits >= row_max[:, None], logits, -jnp.inf)
  start = jnp.full(logits.shape[:1], _INT_MIN, jnp.int32)  # Below -inf: every entry counts.
  cut = _search_cut(logits, False, k, row_max, start)  # [B]
  return jnp.where(_above(logits, cut), logits, -jnp.inf)


def top_p_floor(weights: jax.Array, top_p: float, row_max: jax.Array | None = None) -> jax.Array:
  """float32[B]: each row's nucleus floor: the nucleus is the weights above it.

  With Z the row's sum, w_j is kept iff the mass of the strictly heavier
  entries, sum_{i : w_i > w_j} w_i, is < top_p * Z (the module docstring
  gives the rounding of these float32 sums). The largest weight is always
  kept, and ties are kept or dropped together. Keep `~(w <= floor)` (the
  comparison `top_p_weights` makes).

  Args:
    weights: float32[B, V] >= 0.
    top_p: in (0, 1]; 1 keeps every weight (the floor is -inf).
    row_max: float32[B], the row maxima if already known.
  """
  top_p = numbers.check_float("top_p", top_p, minimum=0.0, maximum=1.0, exclusive_minimum=True)
  if top_p >= 1.0:
    return jnp.full(weights.shape[:1], -jnp.inf, jnp.float32)
  row_max = jnp.max(weights, axis=-1) if row_max is None else row_max
  start = jnp.zeros(weights.shape[:1], jnp.int32)  # The key of +0.0: positive weights count.
  cut = _search_cut(weights, True, top_p, row_max, start)  # [B]
  return _key_values(cut)


def top_p_weights(weights: jax.Array, top_p: float, row_max: jax.Array | None = None) -> jax.Array:
  """Zeroes every weight outside the nucleus of its row (`top_p_floor`).

  Args:
    weights: float32[B, V] >= 0.
    top_p: in (0, 1]; 1 keeps every weight.
    row_max: float32[B], the row maxima if already known.

  Returns:
    float32[B, V].
  """
  top_p = numbers.check_float("top_p", top_p, minimum=0.0, maximum=1.0, exclusive_minimum=True)
  if top_p >= 1.0:
    return weights
  floor = top_p_floor(weights, top_p, row_max)  # [B]
  return jnp.where(weights <= floor[:, None], 0.0, weights)
