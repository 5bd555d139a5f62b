"""One process of the multi-process test (tests/decode/test_multiprocess.py).

    python -m tests.decode.multiprocess_worker --out=DIR/result{process}.npz --mesh=2x4 \
        [--coordinator=localhost:PORT --num_processes=2 --process_id=I]

Without --coordinator it is a plain single-process run (no
`initialize_distributed`) over this process's devices. With it, it joins a
multi-process job through `qmotto.sharding.initialize_distributed`, with
JAX's gloo collectives for the CPU (over the coordinator's key-value store and
TCP on localhost).

Every process builds the same tiny model (NumPy-drawn weights, seed 0), the
same NumPy prompts and a mesh over every process's devices (--mesh: "8" is
`make_mesh()`, all devices on "data"; "DxM" is `make_mesh(data=D,
model=M)`), runs `GroupSharding(mesh).generate` for each sampler, gathers the
outputs with `multihost_utils.process_allgather`, and writes them, with the
job's process and device counts, to --out ("{process}" is replaced by
the process index, so every process can write its own copy).

Run with XLA_FLAGS=--xla_force_host_platform_device_count=N JAX_PLATFORMS=cpu
and the repository root on PYTHONPATH (the test does).
"""

import argparse
import inspect
import os
import sys
import time
import traceback

import numpy as np

SAMPLERS = ("iid", "lattice")  # a token-mode and a code-mode sampler (each compile costs seconds per process).
NUM_PROMPTS, PROMPT_LEN, NUM_SAMPLES, MAX_NEW_TOKENS = 8, 5, 4, 6


def parse_mesh(text: str) -> tuple[int, int | None]:
  """"8" -> (8, None): all devices on "data"; "2x4" -> (2, 4): data x model."""
  parts = text.lower().split("x")
  if len(parts) == 1:
    return int(parts[0]), None
  if len(parts) == 2:
    return int(parts[0]), int(parts[1])
  raise ValueError(f"--mesh must be 'N' or 'DxM', got {text!r}.")


def build_mesh(sharding, data: int, model: int | None):
  mesh = sharding.make_mesh() if model is None else sharding.make_mesh(data=data, model=model)
  if mesh.size != data * (model or 1):
    raise RuntimeError(f"--mesh asks for {data * (model or 1)} devices, the mesh has {dict(mesh.shape)}.")
  return mesh


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", required=True, help="the .npz to write; '{process}' -> the process index.")
  parser.add_argument("--mesh", default="2x4", help="'N' (make_mesh()) or 'DxM' (make_mesh(data=D, model=M)).")
  parser.add_argument("--samplers", default=",".join(SAMPLERS))
  parser.add_argument("--coordinator", help="host:port of process 0; without it, one plain process.")
  parser.add_argument("--num_processes", type=int)
  parser.add_argument("--process_id", type=int)
  args = parser.parse_args()
  start = time.time()

  import jax  # pylint: disable=g-import-not-at-top

  # gloo is jax's default for cross-process CPU collectives (0.4.3x on); set
  # it anyway, so a changed default cannot turn the collectives off. It is
  # read when the CPU backend is made, after `initialize_distributed`.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")

  import qmotto  # pylint: disable=g-import-not-at-top

  # `initialize_distributed` must come before anything starts a backend
  # (importing qmotto does not).
  if args.coordinator:
    qmotto.sharding.initialize_distributed(
        coordinator_address=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
        initialization_timeout=60,  # passed through **kwargs to jax.distributed.initialize.
    )
    assert jax.process_index() == args.process_id, (jax.process_index(), args.process_id)
    assert jax.process_count() == args.num_processes, (jax.process_count(), args.num_processes)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  from tests.models import helpers  # pylint: disable=g-import-not-at-top

  mesh = build_mesh(qmotto.sharding, *parse_mesh(args.mesh))
  # Sizes that every "model" width up to 8 divides (heads, MLP, vocabulary).
  config = helpers.tiny_config(vocab_size=64, hidden_size=64, intermediate_size=128, num_heads=8, num_kv_heads=4)
  model = qmotto.models.Model(config=config, params=helpers.random_params(config, 0))  # host (NumPy) weights.
  rng = np.random.default_rng(0)
  lengths = rng.integers(1, PROMPT_LEN + 1, NUM_PROMPTS).astype(np.int32)
  prompts = rng.integers(1, config.vocab_size, (NUM_PROMPTS, PROMPT_LEN)).astype(np.int32)
  prompts[np.arange(PROMPT_LEN) >= lengths[:, None]] = 0  # right-padded.

  results = {
      "process_index": np.array(jax.process_index()),
      "process_count": np.array(jax.process_count()),
      "device_count": np.array(jax.device_count()),
      "local_device_count": np.array(jax.local_device_count()),
      "mesh_shape": np.array([mesh.shape[a] for a in mesh.axis_names]),
      "prompts": prompts,
      "prompt_lengths": lengths,
  }
  groups = qmotto.sharding.GroupSharding(mesh)
  for sampler in args.samplers.split(","):
    out = groups.generate(
        jax.random.key(5), model, prompts, lengths, num_samples=NUM_SAMPLES, max_new_tokens=MAX_NEW_TOKENS,
        sampling=sampler,
    )
    # Each process holds only its own devices' groups until the gather.
    assert out.tokens.is_fully_addressable == (jax.process_count() == 1), sampler
    gathered = multihost_utils.process_allgather(
        {"tokens": out.tokens, "logprobs": out.logprobs, "lengths": out.lengths}, tiled=True
    )
    for name, value in gathered.items():
      results[f"{sampler}/{name}"] = np.asarray(value)
  results["seconds"] = np.array(time.time() - start)
  np.savez(args.out.format(process=jax.process_index()), **results)


if __name__ == "__main__":
  try:
    main()
  except BaseException:  # pylint: disable=broad-except
    # Exit now: a normal exit would first wait for the other processes at
    # JAX's distributed shutdown barrier, up to its shutdown timeout.
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(1)
