"""Compile time against depth: the layers run as one scan, so depth should not cost compile time.

Run from the repository root:

  python -m benchmarks.bench_compile
  python -m benchmarks.bench_compile --output=results/benchmarks/compile_cpu.json

For models of the same width (SmolLM2-135M's: hidden 576, MLP 1536, 9 heads,
3 key/value heads, vocab 49152) and 2, 8 and 30 layers, it times the XLA
compilation of `qmotto.generate`'s whole jitted program (prefill, the
decode `while_loop` and the sampler; P = 2 prompts of 16 tokens, k = 8,
32 new tokens, lattice) and of the plain forward pass, from `lower()` to
`compile()`, --repeats times each, each time in a fresh Python process (JAX
keeps compiled programs in memory, so a second compilation in one process is
a cache hit), with the weights abstract (`jax.ShapeDtypeStruct`: nothing is
allocated). It prints
the median seconds per depth and the ratio to the 2-layer model, and writes
JSON (default results/benchmarks/compile_<platform>.json). Goal: 30 layers
compile in under 1.5x the time of 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from absl import app
from absl import flags

if __package__ in (None, ""):  # `python benchmarks/bench_compile.py`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import qmotto  # noqa: E402
from benchmarks import _common  # noqa: E402
from qmotto.decode.generate import generate_groups  # noqa: E402
from qmotto.decode.generate import prepare_generate  # noqa: E402
from qmotto.models import llama  # noqa: E402

_DEPTHS = flags.DEFINE_list("depths", ["2", "8", "30"], "Layer counts to compile.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Compilations per depth (median reported).")
_MEASURE_ONE = flags.DEFINE_integer("measure_one", None, "Internal: compile one depth in this process and print.")
_OUTPUT = flags.DEFINE_string("output", None, "JSON path (default results/benchmarks/compile_<platform>.json).")

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTH = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_heads=9, num_kv_heads=3, max_seq_len=2048)
P, PROMPT, K, NEW = 2, 16, 8, 32


def _abstract_model(num_layers: int) -> llama.Model:
  config = llama.LlamaConfig(num_layers=num_layers, **WIDTH)
  shapes = llama.param_shapes(config)
  params = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s, jnp.float32), shapes, is_leaf=lambda x: isinstance(x, tuple))
  return llama.Model(config=config, params=params)


def _compile_seconds(lower) -> float:
  start = time.perf_counter()
  lower().compile()
  return time.perf_counter() - start


def _measure(num_layers: int) -> tuple[float, float]:
  """(generate, forward) compile seconds of one fresh compilation each, in this process."""
  model = _abstract_model(num_layers)
  prompts = np.ones((P, PROMPT), np.int32)
  arrays, static = prepare_generate(
      jax.random.key(0), model, prompts, np.full(P, PROMPT, np.int32), K, NEW, "lattice", None, 0, None
  )
  tokens = jax.ShapeDtypeStruct((P, PROMPT), jnp.int32)
  forward = jax.jit(lambda model, tokens: model.apply(tokens)[0])
  return (_compile_seconds(lambda: generate_groups.lower(*arrays, **static)),
          _compile_seconds(lambda: forward.lower(model, tokens)))


def _time_depth(num_layers: int, repeats: int) -> dict:
  generate_times, forward_times = [], []
  for _ in range(repeats):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_compile", f"--measure_one={num_layers}"],
        capture_output=True, text=True, check=True, cwd=_ROOT,
    )
    line = [l for l in result.stdout.splitlines() if l.startswith("SECONDS ")][-1]
    generate_s, forward_s = map(float, line.split()[1:])
    generate_times.append(generate_s)
    forward_times.append(forward_s)
  config = llama.LlamaConfig(num_layers=num_layers, **WIDTH)
  return dict(
      num_layers=num_layers, num_params=config.num_params,
      generate_compile=_common.summary(generate_times), forward_compile=_common.summary(forward_times),
  )


def main(argv):
  if _MEASURE_ONE.value:
    print("SECONDS %.4f %.4f" % _measure(_MEASURE_ONE.value))
    return
  depths = [int(d) for d in _DEPTHS.value]
  rows = []
  for depth in depths:
    _common.log(f"compiling {depth} layers ...")
    rows.append(_time_depth(depth, _REPEATS.value))
  base = rows[0]
  print(f"\nCompile seconds (median of {_REPEATS.value}), width of SmolLM2-135M, {jax.default_backend()}:")
  print(f"{'layers':>7} {'params':>10} {'generate s':>11} {'x':>6} {'forward s':>10} {'x':>6}")
  for row in rows:
    row["generate_ratio"] = row["generate_compile"]["median_s"] / base["generate_compile"]["median_s"]
    row["forward_ratio"] = row["forward_compile"]["median_s"] / base["forward_compile"]["median_s"]
    print(f"{row['num_layers']:>7} {row['num_params'] / 1e6:>9.1f}M {row['generate_compile']['median_s']:>11.2f} "
          f"{row['generate_ratio']:>6.2f} {row['forward_compile']['median_s']:>10.2f} {row['forward_ratio']:>6.2f}")
  deepest = rows[-1]
  goal = deepest["generate_ratio"] < 1.5 and deepest["forward_ratio"] < 1.5
  print(f"goal ({deepest['num_layers']} layers < 1.5x of {base['num_layers']}): {'met' if goal else 'NOT met'}")
  record = _common.metadata(argv, "benchmarks.bench_compile", (), dict(
      depths=depths, repeats=_REPEATS.value, width=WIDTH, prompts=P, prompt_tokens=PROMPT, k=K, max_new_tokens=NEW,
  ))
  record.update(rows=rows, goal_met=goal, loadavg_end=_common.loadavg())
  path = _OUTPUT.value or os.path.join("results", "benchmarks", f"compile_{jax.default_backend()}.json")
  _common.write_json(record, path)
  print(f"Wrote: {path}")


if __name__ == "__main__":
  app.run(main)
