"""Foundation benchmarks: QMC point generation and the coupled sampling step.

Run from the repository root:

  python -m benchmarks.bench_foundation
  python -m benchmarks.bench_foundation --quick          # smoke, ~1 min
  python -m benchmarks.bench_foundation --repeats=50 \
      --output=results/benchmarks/foundation_cpu.json

(`python benchmarks/bench_foundation.py ...` works too.) The full run takes
about 10 minutes on 2 CPU cores. It prints tables and
writes JSON, by default to results/benchmarks/foundation_<platform>.json with
platform = jax.default_backend().

What is measured:
  1. Point sets. Every construction of `qmotto.qmc` (iid, antithetic,
     stratified, lattice, sobol with scramble "owen" and "lms") jitted as
     `(key) -> float32[n, s]` with n, s static (functools.partial), for
     n in {16, 256, 4096} and s in {64, 1024}. `compile_s` is the cold cost of
     the first use in a process: trace (including host-side tables such as
     Sobol direction numbers and the lattice's Korobov search, whose caches are
     cleared before each row) + lowering + XLA compilation. Steady-state times
     are the median (and min) over repeats after warm-up, each call ended by
     `block_until_ready`. Beside them, on the host: scipy.stats.qmc.Sobol
     (scramble=True).random_base2(log2 n) and LatinHypercube.random(n), both
     timed as engine construction + draw (the engine is built with a new seed
     every call, as a fresh point set needs), and numpy
     `Generator.random((n, s), float32)`, timed as the draw only (one
     Generator reused).
  2. One coupled sampling step, `qmotto.sampling.choose_tokens(logits, u,
     LogitTransform(...))` with u float32[64] uniforms, against
     `jax.random.categorical` on logits float32[64, V], V in {32000, 256000}.
     Variants: the coupled step alone (u given), the coupled step generating u
     from `qmotto.qmc.lattice(key, 64, 1)[:, 0]`, and categorical. Transforms:
     temperature=1 (the headline), top_k=50 and top_p=0.9; for categorical the
     same truncation is applied by the same `token_weights` and categorical
     draws from log(weights), so the comparison is like for like. The verdict
     per shape is on the headline ratio coupled / categorical: <= 1.0 is the
     goal, > 1.5 a defect.
  3. (--breakdown, on by default) the sub-pieces of `token_weights` and
     `invert_cdf` timed one by one (exp, cumsum, mask + cummax, compare-sum,
     last-positive search, gathers), the two halves of categorical (Gumbel
     noise, argmax), and a few candidate rewrites, to see what dominates.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import os
import platform
import statistics
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repo root importable.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
import scipy
import scipy.stats.qmc

import qmotto
from qmotto import qmc
from qmotto.sampling import inverse_cdf

_QUICK = flags.DEFINE_bool(
    "quick",
    False,
    "Smoke test: 3 repeats, short time budget, and only the small shapes "
    "(n in {16, 256}, s = 64, V = 32000).",
)
_OUTPUT = flags.DEFINE_string(
    "output", None, "JSON path (default results/benchmarks/foundation_<platform>.json)."
)
_REPEATS = flags.DEFINE_integer("repeats", 20, "Timed repeats per case (after warm-up).")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed calls per case after compilation.")
_MAX_CASE_S = flags.DEFINE_float(
    "max_case_s",
    3.0,
    "Stop a case's timed repeats once they have taken this long (at least "
    "--min_repeats are always run); keeps the big cases within budget.",
)
_MIN_REPEATS = flags.DEFINE_integer("min_repeats", 5, "Fewest timed repeats per case.")
_BREAKDOWN = flags.DEFINE_bool("breakdown", True, "Time the sub-pieces of the coupled step.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed for keys, logits and uniforms.")

N_VALUES = (16, 256, 4096)
S_VALUES = (64, 1024)
BATCH = 64
VOCABS = (32000, 256000)
# --quick: the same code paths on the small shapes only.
QUICK_N_VALUES = (16, 256)
QUICK_S_VALUES = (64,)
QUICK_VOCABS = (32000,)
GOAL_RATIO = 1.0
SLOW_CALL_S = 1.0
SLOW_MIN_REPEATS = 3
DEFECT_RATIO = 1.5

CONSTRUCTIONS = {
    "iid": qmc.iid,
    "antithetic": qmc.antithetic,
    "stratified": qmc.stratified,
    "lattice": qmc.lattice,
    "sobol_owen": functools.partial(qmc.sobol, scramble="owen"),
    "sobol_lms": functools.partial(qmc.sobol, scramble="lms"),
}

TRANSFORMS = {
    "temperature=1": qmotto.LogitTransform(temperature=1.0),
    "top_k=50": qmotto.LogitTransform(temperature=1.0, top_k=50),
    "top_p=0.9": qmotto.LogitTransform(temperature=1.0, top_p=0.9),
}
HEADLINE = "temperature=1"


def _log(msg: str) -> None:
  print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Timing helpers.


class _Timing:
  """Repeat settings shared by all cases."""

  def __init__(self, repeats: int, warmup: int, max_case_s: float, min_repeats: int):
    self.repeats = max(1, repeats)
    self.warmup = max(0, warmup)
    self.max_case_s = max_case_s
    self.min_repeats = max(1, min(min_repeats, self.repeats))


def _summary(times: list[float]) -> dict:
  return {
      "median_s": statistics.median(times),
      "min_s": min(times),
      "max_s": max(times),
      "repeats": len(times),
  }


def _compile(fn, args: tuple):
  """AOT-compiles `fn` on `args`; returns (compiled, compile stats, first-call time)."""
  t0 = time.perf_counter()
  lowered = jax.jit(fn).lower(*args)
  t1 = time.perf_counter()
  compiled = lowered.compile()
  t2 = time.perf_counter()
  jax.block_until_ready(compiled(*args))
  t3 = time.perf_counter()
  stats = dict(trace_lower_s=t1 - t0, xla_compile_s=t2 - t1, compile_s=t2 - t0, first_call_s=t3 - t2)
  return compiled, stats


def _time_interleaved(calls: dict, first_call_s: float, timing: _Timing) -> dict:
  """Times zero-arg calls round-robin (order rotating every round), so that
  background load hits all of them alike; returns name -> list of seconds.

  Cases whose first call took over SLOW_CALL_S get no warm-up and at most
  SLOW_MIN_REPEATS guaranteed repeats, to keep the run within budget.
  """
  names = list(calls)
  warmup, min_repeats = timing.warmup, timing.min_repeats
  if first_call_s > SLOW_CALL_S:
    warmup, min_repeats = 0, min(min_repeats, SLOW_MIN_REPEATS)
  for _ in range(warmup):
    for name in names:
      calls[name]()
  times = {name: [] for name in names}
  start = time.perf_counter()
  budget = timing.max_case_s * len(names)
  rounds = 0
  while rounds < timing.repeats and (rounds < min_repeats or time.perf_counter() - start < budget):
    order = names[rounds % len(names):] + names[: rounds % len(names)]
    for name in order:
      t0 = time.perf_counter()
      calls[name]()
      times[name].append(time.perf_counter() - t0)
    rounds += 1
  return times


def bench_jax_group(fns: dict, args: dict, timing: _Timing) -> dict:
  """Compiles each fns[name] on args[name], then times them interleaved."""
  compiled, stats = {}, {}
  for name, fn in fns.items():
    compiled[name], stats[name] = _compile(fn, args[name])
  calls = {
      name: functools.partial(lambda c, a: jax.block_until_ready(c(*a)), compiled[name], args[name])
      for name in fns
  }
  times = _time_interleaved(calls, max(st["first_call_s"] for st in stats.values()), timing)
  return {name: dict(**_summary(times[name]), **stats[name]) for name in fns}


def bench_jax(fn, args: tuple, timing: _Timing) -> dict:
  """Compiles `fn` ahead of time on `args`, then times steady-state calls."""
  return bench_jax_group({"f": fn}, {"f": args}, timing)["f"]


def bench_host(make_call, timing: _Timing) -> dict:
  """Times a host function; make_call(r) returns the zero-arg call of repeat r."""
  counter = [0]

  def call():
    counter[0] += 1
    make_call(counter[0])()

  t0 = time.perf_counter()
  call()
  first = time.perf_counter() - t0
  out = _summary(_time_interleaved({"f": call}, first, timing)["f"])
  out.update(compile_s=None, first_call_s=first)
  return out


def _clear_qmc_caches() -> None:
  """Clears the host-side lru caches of qmotto.qmc (direction numbers, Korobov
  multipliers), so each row's compile time is that of a fresh process."""
  for name, module in list(sys.modules.items()):
    if module is None or not name.startswith("qmotto.qmc"):
      continue
    for attr in list(vars(module).values()):
      if callable(getattr(attr, "cache_clear", None)):
        attr.cache_clear()


def _ms(seconds: float | None) -> str:
  return "-" if seconds is None else f"{1e3 * seconds:.3f}"


# ---------------------------------------------------------------------------
# 1. Point sets.


def bench_point_sets(timing: _Timing, seed: int, n_values, s_values) -> list[dict]:
  rows = []
  key = jax.random.key(seed)
  for n in n_values:
    for s in s_values:
      for name, construction in CONSTRUCTIONS.items():
        _clear_qmc_caches()
        fn = functools.partial(construction, n=n, s=s)
        result = bench_jax(fn, (key,), timing)
        rows.append(dict(library="qmotto (jax.jit)", method=name, n=n, s=s, timed="jitted call", **result))
        _log(f"  points {name:>11s} n={n:5d} s={s:5d}: {_ms(result['median_s'])} ms")
      log2n = int(math.log2(n))

      def sobol_call(r, s=s, log2n=log2n):
        return lambda: scipy.stats.qmc.Sobol(d=s, scramble=True, rng=seed * 100003 + r).random_base2(log2n)

      def lhs_call(r, s=s, n=n):
        return lambda: scipy.stats.qmc.LatinHypercube(d=s, rng=seed * 100003 + r).random(n)

      rng = np.random.default_rng(seed)

      def numpy_call(r, s=s, n=n):
        del r
        return lambda: rng.random((n, s), dtype=np.float32)

      for name, make_call, timed in (
          ("scipy Sobol(scramble=True)", sobol_call, "construct + random_base2"),
          ("scipy LatinHypercube", lhs_call, "construct + random"),
          ("numpy Generator.random f32", numpy_call, "draw only"),
      ):
        result = bench_host(make_call, timing)
        rows.append(dict(library="host", method=name, n=n, s=s, timed=timed, **result))
        _log(f"  points {name} n={n:5d} s={s:5d}: {_ms(result['median_s'])} ms")
  return rows


def print_point_sets(rows: list[dict]) -> None:
  print()
  print("== 1. Point generation: (key, n, s) -> [n, s] ==")
  print("compile_s: cold trace (host tables included) + lowering + XLA compile; ")
  print("steady state: median / min over repeats after warm-up (block_until_ready).")
  print("scipy rows (host) time engine construction + draw and return float64; the numpy row")
  print("times the draw only (Generator reused), float32.")
  header = f"{'method':<28s} {'n':>5s} {'s':>5s} {'compile_s':>9s} {'median_ms':>10s} {'min_ms':>9s} {'ns/value':>9s} {'reps':>4s}  timed"
  print(header)
  print("-" * len(header))
  for r in rows:
    comp = "-" if r["compile_s"] is None else f"{r['compile_s']:.3f}"
    per = 1e9 * r["median_s"] / (r["n"] * r["s"])
    print(
        f"{r['method']:<28s} {r['n']:>5d} {r['s']:>5d} {comp:>9s} {_ms(r['median_s']):>10s} "
        f"{_ms(r['min_s']):>9s} {per:>9.2f} {r['repeats']:>4d}  {r['timed']}"
    )


# ---------------------------------------------------------------------------
# 2. The coupled step against categorical.


def _coupled(logits, u, transform):
  return inverse_cdf.choose_tokens(logits, u, transform)[0]


def _coupled_with_u(logits, key, transform):
  u = qmc.lattice(key, logits.shape[0], 1)[:, 0]
  return inverse_cdf.choose_tokens(logits, u, transform)[0]


def _categorical(logits, key, transform):
  if transform.top_k is None and transform.top_p is None and transform.min_p is None:
    scaled = logits.astype(jnp.float32) / jnp.float32(transform.temperature)
  else:
    scaled = jnp.log(inverse_cdf.token_weights(logits, transform))
  return jax.random.categorical(key, scaled, axis=-1).astype(jnp.int32)


VARIANTS = {
    "coupled (u given)": (_coupled, "u"),
    "coupled + lattice u": (_coupled_with_u, "key"),
    "jax.random.categorical": (_categorical, "key"),
}


def _inputs(vocab: int, seed: int):
  k_logits, k_u, k_key = jax.random.split(jax.random.key(seed + 1), 3)
  logits = jax.random.normal(k_logits, (BATCH, vocab), jnp.float32)
  u = jax.random.uniform(k_u, (BATCH,), jnp.float32)
  return jax.block_until_ready((logits, u, k_key))


def bench_sampling(timing: _Timing, seed: int, vocabs) -> tuple[list[dict], list[dict]]:
  rows = []
  verdicts = []
  for vocab in vocabs:
    logits, u, key = _inputs(vocab, seed)
    by_name = {}
    for tname, transform in TRANSFORMS.items():
      fns = {vname: functools.partial(fn, transform=transform) for vname, (fn, _) in VARIANTS.items()}
      args = {vname: (logits, u if second == "u" else key) for vname, (_, second) in VARIANTS.items()}
      results = bench_jax_group(fns, args, timing)  # interleaved: same load for all variants.
      base = results["jax.random.categorical"]
      for vname, result in results.items():
        row = dict(batch=BATCH, vocab=vocab, transform=tname, variant=vname, **result)
        row["ratio_vs_categorical"] = result["median_s"] / base["median_s"]
        row["ratio_of_min_vs_categorical"] = result["min_s"] / base["min_s"]
        rows.append(row)
        by_name[(tname, vname)] = row
        _log(f"  step V={vocab:6d} {tname:>13s} {vname:>22s}: {_ms(result['median_s'])} ms")
    head = by_name[(HEADLINE, "coupled (u given)")]
    ratio = head["ratio_vs_categorical"]
    if ratio <= GOAL_RATIO:
      verdict = "PASS"
    elif ratio <= DEFECT_RATIO:
      verdict = "SLOWER THAN GOAL"
    else:
      verdict = "DEFECT"
    verdicts.append(
        dict(
            batch=BATCH,
            vocab=vocab,
            transform=HEADLINE,
            coupled_ms=1e3 * head["median_s"],
            categorical_ms=1e3 * by_name[(HEADLINE, "jax.random.categorical")]["median_s"],
            ratio=ratio,
            ratio_of_min=head["ratio_of_min_vs_categorical"],
            ratio_with_u=by_name[(HEADLINE, "coupled + lattice u")]["ratio_vs_categorical"],
            ratio_top_k=by_name[("top_k=50", "coupled (u given)")]["ratio_vs_categorical"],
            ratio_top_p=by_name[("top_p=0.9", "coupled (u given)")]["ratio_vs_categorical"],
            verdict=verdict,
        )
    )
  return rows, verdicts


def print_sampling(rows: list[dict], verdicts: list[dict]) -> None:
  print()
  print(f"== 2. One sampling step on float32 logits [{BATCH}, V] ==")
  print("ratio = median time / median time of jax.random.categorical with the same transform;")
  print("r(min) = the same with min times. The three variants of a row group are timed interleaved.")
  header = f"{'V':>6s} {'transform':<13s} {'variant':<23s} {'compile_s':>9s} {'median_ms':>10s} {'min_ms':>9s} {'ratio':>6s} {'r(min)':>6s} {'reps':>4s}"
  print(header)
  print("-" * len(header))
  for r in rows:
    print(
        f"{r['vocab']:>6d} {r['transform']:<13s} {r['variant']:<23s} {r['compile_s']:>9.3f} "
        f"{_ms(r['median_s']):>10s} {_ms(r['min_s']):>9s} {r['ratio_vs_categorical']:>6.2f} {r['ratio_of_min_vs_categorical']:>6.2f} {r['repeats']:>4d}"
    )
  print()
  for v in verdicts:
    print(
        f"VERDICT [{v['batch']}, {v['vocab']}] temperature=1: coupled {v['coupled_ms']:.3f} ms vs "
        f"categorical {v['categorical_ms']:.3f} ms -> ratio {v['ratio']:.2f} "
        f"(goal <= {GOAL_RATIO}, defect > {DEFECT_RATIO}): {v['verdict']}  "
        f"[ratio of min {v['ratio_of_min']:.2f}; with lattice u {v['ratio_with_u']:.2f}; top_k=50 {v['ratio_top_k']:.2f}; "
        f"top_p=0.9 {v['ratio_top_p']:.2f}]"
    )


# ---------------------------------------------------------------------------
# 3. Breakdown of the coupled step, and candidate rewrites.
#
# Each piece is jitted on its own, on materialised inputs, so the pieces do not
# add up exactly to the whole (the whole fuses across them).


def _last_positive_argmax(w):
  vocab = w.shape[-1]
  return vocab - 1 - jnp.argmax((w > 0)[:, ::-1], axis=-1).astype(jnp.int32)


def _last_positive_max_iota(w):
  iota = jax.lax.broadcasted_iota(jnp.int32, w.shape, 1)
  return jnp.max(jnp.where(w > 0, iota, -1), axis=-1)


def _gathers(cdf, tokens, target):
  upper = jnp.take_along_axis(cdf, tokens[:, None], axis=-1)[:, 0]
  lower = jnp.where(
      tokens > 0, jnp.take_along_axis(cdf, jnp.maximum(tokens - 1, 0)[:, None], axis=-1)[:, 0], 0.0
  )
  width = upper - lower
  return jnp.where(width > 0, (target - lower) / jnp.where(width > 0, width, 1.0), 0.0)


def _blocked_cumsum(x, block):
  """Cumsum along the last axis as an in-block cumsum plus block offsets."""
  b, v = x.shape
  nb = -(-v // block)
  xp = jnp.pad(x, ((0, 0), (0, nb * block - v))).reshape(b, nb, block)
  inner = jnp.cumsum(xp, axis=-1)
  offsets = jnp.cumsum(inner[:, :, -1], axis=-1) - inner[:, :, -1]
  return (inner + offsets[:, :, None]).reshape(b, nb * block)[:, :v]


def _matmul_cumsum(x, block):
  """Blocked cumsum with the in-block part as a triangular matmul."""
  b, v = x.shape
  nb = -(-v // block)
  xp = jnp.pad(x, ((0, 0), (0, nb * block - v))).reshape(b, nb, block)
  tri = jnp.triu(jnp.ones((block, block), jnp.float32))
  inner = jnp.einsum("bnk,kj->bnj", xp, tri, precision=jax.lax.Precision.HIGHEST)
  offsets = jnp.cumsum(inner[:, :, -1], axis=-1) - inner[:, :, -1]
  return (inner + offsets[:, :, None]).reshape(b, nb * block)[:, :v]


def _two_level_invert(weights, u, block):
  """Prototype (timing only): inverse CDF over block sums, then inside one block.

  Reads the weights once for the block sums and touches only `block` weights
  per row afterwards. Semantics match invert_cdf up to float rounding of the
  CDF; edge cases (u at the very top, blocks of zero weight) are handled the
  same way: monotone CDFs, zero-weight bins empty, clamp to the last positive
  block / token. Not a drop-in: for measurement.
  """
  b, v = weights.shape
  nb = -(-v // block)
  wp = jnp.pad(weights, ((0, 0), (0, nb * block - v))).reshape(b, nb, block)
  bsum = jnp.sum(wp, axis=-1)  # [B, nb]
  bcdf = inverse_cdf.monotone_cdf(bsum)
  target = u * bcdf[:, -1]
  bidx = jnp.sum(bcdf <= target[:, None], axis=-1, dtype=jnp.int32)
  bidx = jnp.where(bidx >= nb, _last_positive_max_iota(bsum), bidx)
  blower = jnp.where(bidx > 0, jnp.take_along_axis(bcdf, jnp.maximum(bidx - 1, 0)[:, None], -1)[:, 0], 0.0)
  inner_w = jnp.take_along_axis(wp, bidx[:, None, None], axis=1)[:, 0]  # [B, block]
  icdf = inverse_cdf.monotone_cdf(inner_w)
  local_target = target - blower
  t = jnp.sum(icdf <= local_target[:, None], axis=-1, dtype=jnp.int32)
  t = jnp.where(t >= block, _last_positive_max_iota(inner_w), t)
  rescaled = _gathers(icdf, t, local_target)
  return bidx * block + t, rescaled


def _top_k_kth_min(x, k):
  """The k-th largest logit per row as min(top_k values): same value as
  top_k(x, k)[0][:, -1:], but XLA:CPU keeps the TopK op instead of rewriting
  the slice of it into a full sort."""
  return jnp.min(jax.lax.top_k(x, k)[0], axis=-1, keepdims=True)


def _top_p_threshold_sorted(w, top_p):
  """The top-p threshold exactly as token_weights computes it (full sort)."""
  w_sorted = -jnp.sort(-w, axis=-1)
  mass_before = (jnp.cumsum(w_sorted, axis=-1) - w_sorted) / jnp.sum(w, -1, keepdims=True)
  num_keep = jnp.maximum(jnp.sum(mass_before < top_p, axis=-1, keepdims=True), 1)
  return jnp.take_along_axis(w_sorted, num_keep - 1, axis=-1)


def _top_p_threshold_bisect(w, top_p):
  """Prototype: the same threshold without a sort.

  The threshold is the smallest weight t with sum(w[w > t]) < top_p * sum(w).
  That sum only falls as t grows, and for w >= 0 the float order is the order
  of the uint32 bit patterns, so 31 bisection steps over the bit patterns in
  [0, bits(max w)] find t exactly; each step is one fused masked row sum.
  (Rounding of the masked sums can differ from the sorted cumsum at an exact
  tie with top_p.)
  """
  total = jnp.sum(w, axis=-1, keepdims=True)
  goal = jnp.float32(top_p) * total
  lo = jnp.zeros(w.shape[:1] + (1,), jnp.uint32)  # condition false below lo ...
  hi = jax.lax.bitcast_convert_type(jnp.max(w, axis=-1, keepdims=True), jnp.uint32)  # ... true at hi.

  def body(_, carry):
    lo, hi = carry
    mid = lo + (hi - lo) // 2
    t = jax.lax.bitcast_convert_type(mid, jnp.float32)
    ok = jnp.sum(jnp.where(w > t, w, 0.0), axis=-1, keepdims=True) < goal
    return jnp.where(ok, lo, mid + 1), jnp.where(ok, mid, hi)

  lo, hi = jax.lax.fori_loop(0, 32, body, (lo, hi))
  t = jax.lax.bitcast_convert_type(hi, jnp.float32)
  # The smallest weight >= t (t may fall between weights only if no weight
  # equals it; then the next weight up has the same masked sum).
  return jnp.min(jnp.where(w >= t, w, jnp.inf), axis=-1, keepdims=True)


def bench_breakdown(timing: _Timing, seed: int, vocabs) -> list[dict]:
  rows = []
  transform = TRANSFORMS[HEADLINE]
  for vocab in vocabs:
    logits, u, key = _inputs(vocab, seed)
    w = jax.block_until_ready(jax.jit(inverse_cdf.token_weights, static_argnums=1)(logits, transform))
    raw_cdf = jax.block_until_ready(jax.jit(lambda w: jnp.cumsum(w, axis=-1))(w))
    cdf = jax.block_until_ready(jax.jit(inverse_cdf.monotone_cdf)(w))
    target = jax.block_until_ready(u * cdf[:, -1])
    tokens = jax.block_until_ready(jax.jit(inverse_cdf.invert_cdf)(w, u)[0])
    gumbel = jax.block_until_ready(jax.random.gumbel(key, logits.shape, jnp.float32))
    pieces = [
        # (group, name, fn, args)
        ("whole", "choose_tokens (T=1)", functools.partial(_coupled, transform=transform), (logits, u)),
        ("whole", "jax.random.categorical", functools.partial(_categorical, transform=transform), (logits, key)),
        ("token_weights", "token_weights (scale, max, exp)", functools.partial(inverse_cdf.token_weights, transform=transform), (logits,)),
        ("token_weights", "  exp only", jnp.exp, (logits,)),
        ("token_weights", "  row max only", lambda x: jnp.max(x, axis=-1), (logits,)),
        ("invert_cdf", "invert_cdf (weights given)", lambda w, u: inverse_cdf.invert_cdf(w, u)[0], (w, u)),
        ("invert_cdf", "  monotone_cdf (cumsum+mask+cummax)", inverse_cdf.monotone_cdf, (w,)),
        ("invert_cdf", "  cumsum", lambda w: jnp.cumsum(w, axis=-1), (w,)),
        ("invert_cdf", "  mask + cummax", lambda w, c: jax.lax.cummax(jnp.where(w > 0, c, 0.0), axis=1), (w, raw_cdf)),
        ("invert_cdf", "  cummax only", lambda c: jax.lax.cummax(c, axis=1), (raw_cdf,)),
        ("invert_cdf", "  compare-sum (cdf <= target)", lambda c, t: jnp.sum(c <= t[:, None], axis=-1, dtype=jnp.int32), (cdf, target)),
        ("invert_cdf", "  last_positive (reverse argmax)", _last_positive_argmax, (w,)),
        ("invert_cdf", "  gathers + rescale", _gathers, (cdf, tokens, target)),
        ("categorical", "gumbel noise (threefry)", lambda k: jax.random.gumbel(k, logits.shape, jnp.float32), (key,)),
        ("categorical", "argmax(logits + gumbel)", lambda x, g: jnp.argmax(x + g, axis=-1), (logits, gumbel)),
        ("truncation", "lax.top_k(x, 50) (top_k=50 path)", lambda x: jax.lax.top_k(x, 50)[0], (logits,)),
        ("truncation", "sort (top_p path)", lambda w: -jnp.sort(-w, axis=-1), (w,)),
        ("alternative", "top_k kth: min(top_k values) (no full sort)", functools.partial(_top_k_kth_min, k=50), (logits,)),
        ("alternative", "top_p threshold: full sort (as now)", functools.partial(_top_p_threshold_sorted, top_p=0.9), (w,)),
        ("alternative", "top_p threshold: bisection, 32 masked sums", functools.partial(_top_p_threshold_bisect, top_p=0.9), (w,)),
        ("alternative", "cumsum: lax.associative_scan(add)", lambda w: jax.lax.associative_scan(jnp.add, w, axis=1), (w,)),
        ("alternative", "cumsum: blocked, block=256", functools.partial(_blocked_cumsum, block=256), (w,)),
        ("alternative", "cumsum: blocked, block=1024", functools.partial(_blocked_cumsum, block=1024), (w,)),
        ("alternative", "cumsum: triangular matmul, block=128", functools.partial(_matmul_cumsum, block=128), (w,)),
        ("alternative", "last_positive: max(where(w>0, iota))", _last_positive_max_iota, (w,)),
        ("alternative", "searchsorted (vmap, method=scan)", lambda c, t: jax.vmap(lambda a, b: jnp.searchsorted(a, b, side="right", method="scan"))(c, t), (cdf, target)),
        ("alternative", "two-level invert, block=256 (weights given)", lambda w, u: _two_level_invert(w, u, 256)[0], (w, u)),
        ("alternative", "two-level invert, block=1024 (weights given)", lambda w, u: _two_level_invert(w, u, 1024)[0], (w, u)),
        ("alternative", "token_weights + two-level, block=512", lambda x, u: _two_level_invert(inverse_cdf.token_weights(x, transform), u, 512)[0], (logits, u)),
    ]
    # The two whole steps are timed interleaved (same load for both); the
    # pieces one after another.
    whole_pieces = [p for p in pieces if p[0] == "whole"]
    results = bench_jax_group({p[1]: p[2] for p in whole_pieces}, {p[1]: p[3] for p in whole_pieces}, timing)
    whole = results[whole_pieces[0][1]]["median_s"]
    for group, name, fn, args in pieces:
      result = results[name] if group == "whole" else bench_jax(fn, args, timing)
      rows.append(dict(batch=BATCH, vocab=vocab, group=group, piece=name.strip(), label=name,
                       share_of_choose_tokens=result["median_s"] / whole, **result))
      _log(f"  breakdown V={vocab:6d} {name.strip():>45s}: {_ms(result['median_s'])} ms")
    # Agreement check of the prototype with invert_cdf (tokens), for the record.
    proto = jax.jit(lambda w, u: _two_level_invert(w, u, 512)[0])(w, u)
    agree = float(jnp.mean((proto == tokens).astype(jnp.float32)))
    rows.append(dict(batch=BATCH, vocab=vocab, group="check", piece="two-level tokens == invert_cdf tokens (fraction)",
                     label="two-level agreement", value=agree))
    kth_now = jax.jit(lambda x: jax.lax.top_k(x, 50)[0][:, -1:])(logits)
    agree = float(jnp.mean((_top_k_kth_min(logits, 50) == kth_now).astype(jnp.float32)))
    rows.append(dict(batch=BATCH, vocab=vocab, group="check", piece="top_k kth via min == via slice (fraction)",
                     label="top_k agreement", value=agree))
    a = jax.jit(functools.partial(_top_p_threshold_sorted, top_p=0.9))(w)
    b = jax.jit(functools.partial(_top_p_threshold_bisect, top_p=0.9))(w)
    agree = float(jnp.mean((a == b).astype(jnp.float32)))
    rows.append(dict(batch=BATCH, vocab=vocab, group="check", piece="top_p threshold bisection == sort (fraction)",
                     label="top_p agreement", value=agree))
  return rows


def print_breakdown(rows: list[dict]) -> None:
  print()
  print("== 3. Breakdown of the coupled step (temperature=1), each piece jitted alone ==")
  print("share = piece median / choose_tokens median (pieces fuse in the whole, so shares need not add up).")
  print("The two 'whole' rows are timed interleaved; the other rows one after another (more")
  print("exposed to background load). 'alternative' rows are candidate rewrites, for comparison.")
  header = f"{'V':>6s} {'group':<13s} {'piece':<46s} {'median_ms':>10s} {'min_ms':>9s} {'share':>6s}"
  print(header)
  print("-" * len(header))
  for r in rows:
    if r["group"] == "check":
      print(f"{r['vocab']:>6d} {'check':<13s} {r['piece']}: {r['value']:.4f}")
      continue
    print(
        f"{r['vocab']:>6d} {r['group']:<13s} {r['label']:<46s} {_ms(r['median_s']):>10s} "
        f"{_ms(r['min_s']):>9s} {r['share_of_choose_tokens']:>6.2f}"
    )


# ---------------------------------------------------------------------------


def _loadavg():
  try:
    return list(os.getloadavg())
  except OSError:
    return None


def _metadata(argv: list[str], timing: _Timing) -> dict:
  device = jax.devices()[0]
  try:
    affinity = len(os.sched_getaffinity(0))
  except AttributeError:
    affinity = None
  try:
    import jaxlib  # pylint: disable=g-import-not-at-top

    jaxlib_version = jaxlib.__version__
  except Exception:  # pylint: disable=broad-except
    jaxlib_version = None
  return dict(
      timestamp_utc=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      command_line=" ".join([sys.executable] + list(sys.argv)),
      argv=list(argv),
      jax_version=jax.__version__,
      jaxlib_version=jaxlib_version,
      numpy_version=np.__version__,
      scipy_version=scipy.__version__,
      qmotto_version=qmotto.__version__,
      python_version=platform.python_version(),
      platform=platform.platform(),
      backend=jax.default_backend(),
      device_kind=device.device_kind,
      device_count=jax.device_count(),
      cpu_count=os.cpu_count(),
      cpu_affinity_count=affinity,
      loadavg_start=_loadavg(),
      settings=dict(
          quick=_QUICK.value,
          repeats=timing.repeats,
          warmup=timing.warmup,
          max_case_s=timing.max_case_s,
          min_repeats=timing.min_repeats,
          seed=_SEED.value,
          breakdown=_BREAKDOWN.value,
      ),
  )


def main(argv):
  if _QUICK.value:
    timing = _Timing(repeats=min(_REPEATS.value, 3), warmup=1, max_case_s=0.25, min_repeats=1)
    n_values, s_values, vocabs = QUICK_N_VALUES, QUICK_S_VALUES, QUICK_VOCABS
  else:
    timing = _Timing(_REPEATS.value, _WARMUP.value, _MAX_CASE_S.value, _MIN_REPEATS.value)
    n_values, s_values, vocabs = N_VALUES, S_VALUES, VOCABS
  backend = jax.default_backend()
  output = _OUTPUT.value or os.path.join("results", "benchmarks", f"foundation_{backend}.json")
  meta = _metadata(argv, timing)
  print(
      f"jax {meta['jax_version']} backend={backend} device={meta['device_kind']} "
      f"cpus={meta['cpu_count']} repeats={timing.repeats} warmup={timing.warmup} "
      f"max_case_s={timing.max_case_s}"
  )
  start = time.perf_counter()
  _log("[1/3] point sets")
  point_rows = bench_point_sets(timing, _SEED.value, n_values, s_values)
  _log("[2/3] sampling step")
  sampling_rows, verdicts = bench_sampling(timing, _SEED.value, vocabs)
  breakdown_rows = []
  if _BREAKDOWN.value:
    _log("[3/3] breakdown")
    breakdown_rows = bench_breakdown(timing, _SEED.value, vocabs)
  total = time.perf_counter() - start
  meta["loadavg_end"] = _loadavg()

  print_point_sets(point_rows)
  print_sampling(sampling_rows, verdicts)
  if breakdown_rows:
    print_breakdown(breakdown_rows)
  print()
  print(f"total benchmark time {total:.1f} s; load average (1, 5, 15 min) at start "
        f"{meta['loadavg_start']}, at end {meta['loadavg_end']} on {meta['cpu_count']} CPUs")

  meta["total_benchmark_s"] = total
  record = dict(
      metadata=meta,
      point_sets=point_rows,
      sampling_step=sampling_rows,
      verdicts=verdicts,
      breakdown=breakdown_rows,
  )
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, "w") as f:
    json.dump(record, f, indent=1)
  print(f"wrote {output}")


if __name__ == "__main__":
  app.run(main)
