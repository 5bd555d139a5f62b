"""Foundation benchmarks: QMC point generation and the coupled sampling step.

Run from the repository root:

  python -m benchmarks.bench_foundation
  python -m benchmarks.bench_foundation --quick          # smoke, ~1 min
  python -m benchmarks.bench_foundation --repeats=50 \
      --output=results/benchmarks/foundation_cpu.json

(`python benchmarks/bench_foundation.py ...` works too.) The full run takes
about 4 minutes on 2 CPU cores. It prints tables and
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
     `jax.random.categorical` on logits float32[64, V], V in {32000, 49152
     (SmolLM2's vocabulary), 256000}. Variants: the coupled step alone (u
     given), the coupled step generating u from
     `qmotto.qmc.lattice(key, 64, 1)[:, 0]`, and categorical. Transforms:
     temperature=1 (the headline), top_k=50, top_p=0.9 and top_p=0.95; for
     categorical the same truncation is applied by the same `token_weights`
     and categorical draws from log(weights), so the comparison is like for
     like. All transforms and variants of one V are timed interleaved, so
     each row also gets its ratio to the untruncated (temperature=1) step of
     the same variant. The logits are random normal (a nucleus of ~70% of
     the vocabulary at top_p=0.95) and, for the coupled step only, peaked
     LM-like rows (Zipf: logit = -2 log(rank) + N(0, 0.5^2), ranks shuffled;
     a nucleus of ~13 tokens at top_p=0.95), timed interleaved among
     themselves. Verdicts: per V, the headline ratio coupled / categorical
     (<= 1.0 is the goal, > 1.5 a defect), and the cost of truncation,
     top_p=0.95 / untruncated (goal <= 1.5) and top_k=50 / untruncated.
  3. (--breakdown, on by default) the pieces of the coupled step timed one by
     one (token_weights, the two-level invert_cdf, and the flat monotone CDF
     it avoids), the two halves of categorical (Gumbel noise, argmax), the
     sort-free truncations (`qmotto.sampling.truncation`, each returning
     the masked [64, V] array) against what they replaced (a full sort and a
     float32 cumsum for top-p, `lax.top_k` for top-k, with the same mask),
     and the fraction of rows where the sort-free top-p keeps the same set as
     the sort-based one (the two round their sums differently).
"""

from __future__ import annotations

import functools
import math
import os
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
from qmotto.sampling import transforms
from qmotto.sampling import truncation

from benchmarks import _common

_QUICK = flags.DEFINE_bool(
    "quick",
    False,
    "Smoke test: 3 repeats, short time budget, and only the small shapes "
    "(n in {16, 256}, s = 64, V = 49152).",
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
VOCABS = (32000, 49152, 256000)
# --quick: the same code paths on the small shapes only.
QUICK_N_VALUES = (16, 256)
QUICK_S_VALUES = (64,)
QUICK_VOCABS = (49152,)
GOAL_RATIO = 1.0
SLOW_CALL_S = 1.0
SLOW_MIN_REPEATS = 3
DEFECT_RATIO = 1.5
# The cost of truncation: a truncated coupled step over the untruncated one.
TRUNCATION_GOAL = 1.5

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
    "top_p=0.95": qmotto.LogitTransform(temperature=1.0, top_p=0.95),
}
HEADLINE = "temperature=1"
TRUNCATION_HEADLINE = "top_p=0.95"


class _Timing:
  """Repeat settings shared by all cases."""

  def __init__(self, repeats: int, warmup: int, max_case_s: float, min_repeats: int):
    self.repeats = max(1, repeats)
    self.warmup = max(0, warmup)
    self.max_case_s = max_case_s
    self.min_repeats = max(1, min(min_repeats, self.repeats))


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
  return {name: dict(**_common.summary(times[name]), **stats[name]) for name in fns}


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
  out = _common.summary(_time_interleaved({"f": call}, first, timing)["f"])
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
        _common.log(f"  points {name:>11s} n={n:5d} s={s:5d}: {_ms(result['median_s'])} ms")
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
        _common.log(f"  points {name} n={n:5d} s={s:5d}: {_ms(result['median_s'])} ms")
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
    scaled = jnp.log(transforms.token_weights(logits, transform))
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


def _peaked_logits(vocab: int, seed: int) -> jax.Array:
  """float32[BATCH, V] LM-like rows: logit = -2 log(rank) + N(0, 0.5^2), ranks shuffled per row.

  Zipf weights ~ rank^-2: the nucleus of top_p=0.95 is ~13 tokens.
  """
  k_ranks, k_noise = jax.random.split(jax.random.key(seed + 2))
  ranks = jax.vmap(lambda k: jax.random.permutation(k, vocab))(jax.random.split(k_ranks, BATCH)) + 1
  noise = jax.random.normal(k_noise, (BATCH, vocab), jnp.float32)
  return jax.block_until_ready(-2.0 * jnp.log(ranks.astype(jnp.float32)) + 0.5 * noise)


def _sampling_rows(results: dict, vocab: int, logits_name: str) -> list[dict]:
  """Rows of one interleaved group, keyed (transform, variant), with their ratios.

  ratio_vs_categorical: against categorical with the same transform (when
  timed); ratio_vs_untruncated: against temperature=1 with the same variant.
  """
  rows = []
  for (tname, vname), result in results.items():
    row = dict(batch=BATCH, vocab=vocab, logits=logits_name, transform=tname, variant=vname, **result)
    base = results.get((tname, "jax.random.categorical"))
    row["ratio_vs_categorical"] = result["median_s"] / base["median_s"] if base else None
    row["ratio_of_min_vs_categorical"] = result["min_s"] / base["min_s"] if base else None
    row["ratio_vs_untruncated"] = result["median_s"] / results[(HEADLINE, vname)]["median_s"]
    rows.append(row)
    _common.log(f"  step V={vocab:6d} {logits_name:>6s} {tname:>13s} {vname:>22s}: {_ms(result['median_s'])} ms")
  return rows


def _time_transforms(transforms_: dict, variants: dict, logits, u, key, timing: _Timing) -> dict:
  """Times every (transform, variant) pair interleaved: (tname, vname) -> result."""
  fns, args = {}, {}
  for tname, transform in transforms_.items():
    for vname, (fn, second) in variants.items():
      fns[(tname, vname)] = functools.partial(fn, transform=transform)
      args[(tname, vname)] = (logits, u if second == "u" else key)
  return bench_jax_group(fns, args, timing)


def _verdict(ratio: float) -> str:
  if ratio <= GOAL_RATIO:
    return "PASS"
  return "SLOWER THAN GOAL" if ratio <= DEFECT_RATIO else "DEFECT"


def _truncation_verdicts(rows: list[dict], vocab: int) -> list[dict]:
  """Per logits shape: each truncation's coupled step over the untruncated one."""
  verdicts = []
  for logits_name in sorted({r["logits"] for r in rows}):
    ratios = {r["transform"]: r["ratio_vs_untruncated"] for r in rows
              if r["logits"] == logits_name and r["variant"] == "coupled (u given)"}
    headline = ratios[TRUNCATION_HEADLINE]
    verdicts.append(dict(
        batch=BATCH, vocab=vocab, logits=logits_name, transform=TRUNCATION_HEADLINE, ratio=headline,
        ratios={t: r for t, r in ratios.items() if t != HEADLINE}, goal=TRUNCATION_GOAL,
        verdict="PASS" if headline <= TRUNCATION_GOAL else "MISSES GOAL"))
  return verdicts


def bench_sampling(timing: _Timing, seed: int, vocabs) -> tuple[list[dict], list[dict], list[dict]]:
  """(rows, coupled-vs-categorical verdicts, truncation verdicts)."""
  rows, verdicts, truncation_verdicts = [], [], []
  coupled_only = {"coupled (u given)": VARIANTS["coupled (u given)"]}
  for vocab in vocabs:
    logits, u, key = _inputs(vocab, seed)
    results = _time_transforms(TRANSFORMS, VARIANTS, logits, u, key, timing)  # all interleaved.
    vocab_rows = _sampling_rows(results, vocab, "normal")
    peaked = _time_transforms(TRANSFORMS, coupled_only, _peaked_logits(vocab, seed), u, key, timing)
    vocab_rows += _sampling_rows(peaked, vocab, "peaked")
    rows += vocab_rows
    by_name = {(r["logits"], r["transform"], r["variant"]): r for r in vocab_rows}
    head = by_name[("normal", HEADLINE, "coupled (u given)")]
    verdicts.append(
        dict(
            batch=BATCH,
            vocab=vocab,
            transform=HEADLINE,
            coupled_ms=1e3 * head["median_s"],
            categorical_ms=1e3 * by_name[("normal", HEADLINE, "jax.random.categorical")]["median_s"],
            ratio=head["ratio_vs_categorical"],
            ratio_of_min=head["ratio_of_min_vs_categorical"],
            ratio_with_u=by_name[("normal", HEADLINE, "coupled + lattice u")]["ratio_vs_categorical"],
            ratio_top_k=by_name[("normal", "top_k=50", "coupled (u given)")]["ratio_vs_categorical"],
            ratio_top_p=by_name[("normal", "top_p=0.9", "coupled (u given)")]["ratio_vs_categorical"],
            verdict=_verdict(head["ratio_vs_categorical"]),
        )
    )
    truncation_verdicts += _truncation_verdicts(vocab_rows, vocab)
  return rows, verdicts, truncation_verdicts


def _ratio(value: float | None) -> str:
  return "-" if value is None else f"{value:.2f}"


def print_sampling(rows: list[dict], verdicts: list[dict], truncation_verdicts: list[dict]) -> None:
  print()
  print(f"== 2. One sampling step on float32 logits [{BATCH}, V] ==")
  print("ratio = median time / median time of jax.random.categorical with the same transform;")
  print("r(min) = the same with min times; vs T=1 = median time / median time of the untruncated")
  print("(temperature=1) step of the same variant. All rows of one V and logits shape are timed")
  print("interleaved. normal: random normal logits; peaked: Zipf rows (nucleus ~13 tokens at 0.95).")
  header = (f"{'V':>6s} {'logits':<7s} {'transform':<13s} {'variant':<23s} {'compile_s':>9s} {'median_ms':>10s} "
            f"{'min_ms':>9s} {'ratio':>6s} {'r(min)':>6s} {'vs T=1':>6s} {'reps':>4s}")
  print(header)
  print("-" * len(header))
  for r in rows:
    print(
        f"{r['vocab']:>6d} {r['logits']:<7s} {r['transform']:<13s} {r['variant']:<23s} {r['compile_s']:>9.3f} "
        f"{_ms(r['median_s']):>10s} {_ms(r['min_s']):>9s} {_ratio(r['ratio_vs_categorical']):>6s} "
        f"{_ratio(r['ratio_of_min_vs_categorical']):>6s} {r['ratio_vs_untruncated']:>6.2f} {r['repeats']:>4d}"
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
  for v in truncation_verdicts:
    others = "; ".join(f"{t} {r:.2f}x" for t, r in v["ratios"].items() if t != v["transform"])
    print(
        f"TRUNCATION [{v['batch']}, {v['vocab']}] {v['logits']}: {v['transform']} / untruncated = "
        f"{v['ratio']:.2f}x (goal <= {v['goal']}x): {v['verdict']}  [{others}]"
    )


# ---------------------------------------------------------------------------
# 3. Breakdown of the coupled step, and the truncations.
#
# Each piece is jitted on its own, on materialised inputs, so the pieces do not
# add up exactly to the whole (the whole fuses across them).


def _top_p_weights_sorted(w, top_p):
  """Top-p as the former token_weights computed it: a full sort and a float32 cumsum."""
  w_sorted = -jnp.sort(-w, axis=-1)
  mass_before = (jnp.cumsum(w_sorted, axis=-1) - w_sorted) / jnp.sum(w, -1, keepdims=True)
  num_keep = jnp.maximum(jnp.sum(mass_before < top_p, axis=-1, keepdims=True), 1)
  return jnp.where(w < jnp.take_along_axis(w_sorted, num_keep - 1, axis=-1), 0.0, w)


def _top_k_logits_lax(x, k):
  """Top-k as the former token_weights computed it: lax.top_k, then a mask."""
  kth = jnp.min(jax.lax.top_k(x, k)[0], axis=-1, keepdims=True)
  return jnp.where(x < kth, -jnp.inf, x)


def bench_breakdown(timing: _Timing, seed: int, vocabs) -> list[dict]:
  rows = []
  transform = TRANSFORMS[HEADLINE]
  for vocab in vocabs:
    logits, u, key = _inputs(vocab, seed)
    w = jax.block_until_ready(jax.jit(transforms.token_weights, static_argnums=1)(logits, transform))
    gumbel = jax.block_until_ready(jax.random.gumbel(key, logits.shape, jnp.float32))
    pieces = [
        # (group, name, fn, args)
        ("whole", "choose_tokens (T=1)", functools.partial(_coupled, transform=transform), (logits, u)),
        ("whole", "jax.random.categorical", functools.partial(_categorical, transform=transform), (logits, key)),
        ("token_weights", "token_weights (scale, max, exp)", functools.partial(transforms.token_weights, transform=transform), (logits,)),
        ("token_weights", "  exp only", jnp.exp, (logits,)),
        ("token_weights", "  row max only", lambda x: jnp.max(x, axis=-1), (logits,)),
        ("invert_cdf", "invert_cdf (weights given, two-level)", lambda w, u: inverse_cdf.invert_cdf(w, u)[0], (w, u)),
        ("invert_cdf", "  flat monotone_cdf (what two levels avoid)", inverse_cdf.monotone_cdf, (w,)),
        ("categorical", "gumbel noise (threefry)", lambda k: jax.random.gumbel(k, logits.shape, jnp.float32), (key,)),
        ("categorical", "argmax(logits + gumbel)", lambda x, g: jnp.argmax(x + g, axis=-1), (logits, gumbel)),
        ("truncation", "top_k_logits(x, 50) (sort-free)", lambda x: truncation.top_k_logits(x, 50), (logits,)),
        ("truncation", "  lax.top_k + mask (top_k=50 before)", lambda x: _top_k_logits_lax(x, 50), (logits,)),
        ("truncation", "top_p_weights(w, 0.9) (sort-free)", lambda w: truncation.top_p_weights(w, 0.9), (w,)),
        ("truncation", "  sort + cumsum + mask (top_p=0.9 before)", lambda w: _top_p_weights_sorted(w, 0.9), (w,)),
        ("truncation", "top_p_weights(w, 0.95) (sort-free)", lambda w: truncation.top_p_weights(w, 0.95), (w,)),
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
      _common.log(f"  breakdown V={vocab:6d} {name.strip():>45s}: {_ms(result['median_s'])} ms")
    # Same kept set as the former sort-based top-p? (Its float32 cumsum rounds
    # differently, so rows within rounding of the threshold may differ.)
    sorted_keep = jax.jit(lambda w: _top_p_weights_sorted(w, 0.9) > 0)(w)
    free_keep = jax.jit(lambda w: truncation.top_p_weights(w, 0.9) > 0)(w)
    agree = float(jnp.mean(jnp.all(sorted_keep == free_keep, axis=-1).astype(jnp.float32)))
    rows.append(dict(batch=BATCH, vocab=vocab, group="check",
                     piece="top_p=0.9 sort-free kept set == sort-based (fraction of rows)",
                     label="top_p agreement", value=agree))
  return rows


def print_breakdown(rows: list[dict]) -> None:
  print()
  print("== 3. Breakdown of the coupled step (temperature=1), each piece jitted alone ==")
  print("share = piece median / choose_tokens median (pieces fuse in the whole, so shares need not add up).")
  print("The two 'whole' rows are timed interleaved; the other rows one after another (more")
  print("exposed to background load). Indented truncation rows are what the sort-free ones replaced.")
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


def main(argv):
  if _QUICK.value:
    timing = _Timing(repeats=min(_REPEATS.value, 3), warmup=1, max_case_s=0.25, min_repeats=1)
    n_values, s_values, vocabs = QUICK_N_VALUES, QUICK_S_VALUES, QUICK_VOCABS
  else:
    timing = _Timing(_REPEATS.value, _WARMUP.value, _MAX_CASE_S.value, _MIN_REPEATS.value)
    n_values, s_values, vocabs = N_VALUES, S_VALUES, VOCABS
  backend = jax.default_backend()
  output = _OUTPUT.value or os.path.join("results", "benchmarks", f"foundation_{backend}.json")
  settings = dict(
      quick=_QUICK.value,
      repeats=timing.repeats,
      warmup=timing.warmup,
      max_case_s=timing.max_case_s,
      min_repeats=timing.min_repeats,
      seed=_SEED.value,
      breakdown=_BREAKDOWN.value,
  )
  meta = _common.metadata(argv, "benchmarks.bench_foundation", ("scipy",), settings)
  print(
      f"jax {meta['jax_version']} backend={backend} device={meta['device_kind']} "
      f"cpus={meta['cpu_count']} repeats={timing.repeats} warmup={timing.warmup} "
      f"max_case_s={timing.max_case_s}"
  )
  start = time.perf_counter()
  _common.log("[1/3] point sets")
  point_rows = bench_point_sets(timing, _SEED.value, n_values, s_values)
  _common.log("[2/3] sampling step")
  sampling_rows, verdicts, truncation_verdicts = bench_sampling(timing, _SEED.value, vocabs)
  breakdown_rows = []
  if _BREAKDOWN.value:
    _common.log("[3/3] breakdown")
    breakdown_rows = bench_breakdown(timing, _SEED.value, vocabs)
  total = time.perf_counter() - start
  meta["loadavg_end"] = _common.loadavg()

  print_point_sets(point_rows)
  print_sampling(sampling_rows, verdicts, truncation_verdicts)
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
      truncation_verdicts=truncation_verdicts,
      breakdown=breakdown_rows,
  )
  _common.write_json(record, output)
  print(f"wrote {output}")


if __name__ == "__main__":
  app.run(main)
