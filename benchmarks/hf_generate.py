"""The Hugging Face side of benchmarks/bench_decode.py, run in its own process.

`bench_decode` starts this script as a subprocess, so that PyTorch's thread
pool never shares a process with JAX's: in one process the two pools fight
over the cores (the rows measured that way had HF at 2.4 tokens/s at batch 1,
against 16-17 alone on the same machine). It prints exactly one JSON line on
stdout, {"info": {...}, "rows": [...], "errors": [...]}, and logs to stderr.

It loads the SmolLM2 GGUF with transformers
(`AutoModelForCausalLM.from_pretrained(dir, gguf_file=name)`, dequantized to
--dtype), sets torch.set_num_threads(--threads), and times
`model.generate` on --prompt_ids repeated P times with
num_return_sequences=k (R = P * k rows), do_sample=True, temperature=1,
top_k=0, top_p=1, min_new_tokens = max_new_tokens = N (no EOS stop), for
every layout of --batches, in the modes of --modes:

  eager     the default dynamic KV cache, no compilation.
  compile   cache_implementation="static" and generate's own torch.compile
            of the decode forward (a CompileConfig(dynamic=False), inductor,
            mode "default" on the CPU; `_compile_all_devices` asks for it
            there, as transformers does not compile CPU models by default),
            torch._dynamo.reset() before each layout: one static graph per
            layout.

Per (mode, layout): one warm-up call with the same shapes (the compile, for
"compile"), then --repeats rounds of [a call with N new tokens, a call with 1
new token], interleaved; the medians give tokens/s = R * N / t_N and the
decode-only rate R * (N - 1) / (t_N - t_1).

  python benchmarks/hf_generate.py --gguf=/path/SmolLM2.gguf --prompt_ids=1,2,3 \
      --batches=1x1,1x16 --max_new_tokens=32 --threads=2 --modes=eager,compile
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import traceback

from absl import app
from absl import flags

_GGUF = flags.DEFINE_string("gguf", None, "The GGUF file (the same one qmotto loads).", required=True)
_PROMPT_IDS = flags.DEFINE_list("prompt_ids", None, "Prompt token ids (the prompt qmotto decodes).", required=True)
_BATCHES = flags.DEFINE_list("batches", ["1x1"], "PxK layouts: P prompts x k samples.")
_MAX_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", 32, "N, new tokens per row.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Timed rounds per layout (median).")
_THREADS = flags.DEFINE_integer("threads", None, "torch.set_num_threads (default: the CPUs of the affinity mask).")
_MODES = flags.DEFINE_list("modes", ["eager"], "eager and/or compile (static cache + torch.compile).")
_DEVICE = flags.DEFINE_string("device", "cpu", "cpu or cuda.")
_DTYPE = flags.DEFINE_string("dtype", "float32", "Weights and compute dtype: float32 or bfloat16.")
_SEED = flags.DEFINE_integer("seed", 0, "torch.manual_seed.")


def _log(msg: str) -> None:
  print(f"[hf {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _sync(device: str) -> None:
  if device == "cuda":
    import torch  # pylint: disable=g-import-not-at-top

    torch.cuda.synchronize()


def _bench_layout(model, torch, prompt, p, k, n, mode, repeats, device):
  input_ids = torch.tensor([prompt] * p, dtype=torch.long, device=device)
  attention_mask = torch.ones_like(input_ids)
  extra = {}
  if mode == "compile":
    import transformers  # pylint: disable=g-import-not-at-top

    # One static graph per layout, as qmotto compiles one program per shape:
    # without the reset, a second batch size makes dynamo recompile with a
    # dynamic batch dimension.
    torch._dynamo.reset()  # pylint: disable=protected-access
    config = transformers.CompileConfig(
        fullgraph=False, dynamic=False, mode="default" if device == "cpu" else "reduce-overhead"
    )
    config._compile_all_devices = True  # pylint: disable=protected-access
    extra = dict(cache_implementation="static", compile_config=config)

  def call(nn):
    _sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
      out = model.generate(
          input_ids=input_ids,
          attention_mask=attention_mask,
          do_sample=True,
          temperature=1.0,
          top_k=0,
          top_p=1.0,
          num_return_sequences=k,
          max_new_tokens=nn,
          min_new_tokens=nn,
          pad_token_id=0,
          **extra,
      )
    _sync(device)
    elapsed = time.perf_counter() - start
    if tuple(out.shape) != (p * k, len(prompt) + nn):
      raise AssertionError(f"generate returned {tuple(out.shape)}, expected {(p * k, len(prompt) + nn)}")
    return elapsed

  r = p * k
  warm = {nn: call(nn) for nn in dict.fromkeys((n, 1))}  # compiles (mode compile) or warms the pools.
  t_n, t_1 = [], []
  for i in range(repeats):
    t_n.append(call(n))
    t_1.append(call(1))
    _log(f"{mode} P={p} k={k}: round {i + 1}/{repeats}: N={n} {t_n[-1]:.2f}s, N=1 {t_1[-1]:.2f}s")
  med_n, med_1 = statistics.median(t_n), statistics.median(t_1)
  decode_s = med_n - med_1
  return dict(
      mode=mode,
      prompts=p,
      k=k,
      batch=r,
      prompt_tokens=len(prompt),
      max_new_tokens=n,
      warmup_call_s=warm[n],
      median_s=med_n,
      min_s=min(t_n),
      max_s=max(t_n),
      repeats=len(t_n),
      times_s=t_n,
      n1_median_s=med_1,
      tokens_per_s=r * n / med_n,
      decode_only_tokens_per_s=(r * (n - 1) / decode_s) if n > 1 and decode_s > 0 else None,
      decode_ms_per_step=(1e3 * decode_s / (n - 1)) if n > 1 else None,
      loadavg=list(os.getloadavg()),
  )


def main(argv):
  del argv
  threads = _THREADS.value or len(os.sched_getaffinity(0))
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top

  torch.set_num_threads(threads)
  torch.manual_seed(_SEED.value)
  dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[_DTYPE.value]
  start = time.perf_counter()
  model = transformers.AutoModelForCausalLM.from_pretrained(
      os.path.dirname(_GGUF.value), gguf_file=os.path.basename(_GGUF.value), dtype=dtype
  ).to(_DEVICE.value)
  model.eval()
  load_s = time.perf_counter() - start
  _log(f"loaded {os.path.basename(_GGUF.value)} in {load_s:.1f}s ({threads} torch threads)")
  info = dict(
      torch_version=torch.__version__,
      transformers_version=transformers.__version__,
      torch_threads=torch.get_num_threads(),
      torch_interop_threads=torch.get_num_interop_threads(),
      cpu_affinity_count=len(os.sched_getaffinity(0)),
      device=_DEVICE.value,
      dtype=str(next(model.parameters()).dtype),
      attn_implementation=getattr(model.config, "_attn_implementation", None),
      gguf_file=_GGUF.value,
      load_s=load_s,
      pid=os.getpid(),
  )
  prompt = [int(t) for t in _PROMPT_IDS.value]
  rows, errors = [], []
  for mode in _MODES.value:
    for spec in _BATCHES.value:
      p, k = (int(x) for x in spec.lower().split("x"))
      try:
        rows.append(
            _bench_layout(model, torch, prompt, p, k, _MAX_NEW_TOKENS.value, mode, _REPEATS.value, _DEVICE.value)
        )
      except Exception as e:  # pylint: disable=broad-except
        _log(f"{mode} {spec} failed: {type(e).__name__}: {e}")
        traceback.print_exc(file=sys.stderr)
        errors.append(dict(mode=mode, batch=spec, error=f"{type(e).__name__}: {e}"[:2000]))
  print(json.dumps(dict(info=info, rows=rows, errors=errors)), flush=True)


if __name__ == "__main__":
  app.run(main)
