"""One process of the multi-process test (tests/decode/test_multiprocess.py).

    python -m tests.decode.multiprocess_worker --out=FILE --mesh=2x4 \
        [--coordinator=localhost:PORT --num_processes=2 --process_id=I]

Builds the tiny test model (NumPy-drawn weights: the same in every process),
a ("data", "model") mesh over every process's devices, runs the sharded
generate for a few samplers, gathers the outputs to every process with
`process_allgather`, and process 0 writes them to --out (.npz).
"""

import argparse

import numpy as np


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", required=True)
  parser.add_argument("--mesh", default="2x4", help="DxM: data x model sizes.")
  parser.add_argument("--coordinator")
  parser.add_argument("--num_processes", type=int)
  parser.add_argument("--process_id", type=int)
  args = parser.parse_args()

  import qmotto  # pylint: disable=g-import-not-at-top

  if args.coordinator:
    qmotto.sharding.initialize_distributed(args.coordinator, args.num_processes, args.process_id)
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  from tests.models import helpers  # pylint: disable=g-import-not-at-top

  data, model_axis = (int(n) for n in args.mesh.split("x"))
  mesh = qmotto.sharding.make_mesh(data=data, model=model_axis)
  config = helpers.tiny_config(vocab_size=64, hidden_size=64, intermediate_size=128, num_heads=8, num_kv_heads=4)
  model = qmotto.models.partitioning.shard_model(qmotto.models.Model(config, helpers.random_params(config, 0)), mesh)
  rng = np.random.default_rng(0)
  prompts = rng.integers(0, 64, (8, 5)).astype(np.int32)
  lengths = rng.integers(1, 6, 8).astype(np.int32)
  results = {"process_count": np.array(jax.process_count()), "device_count": np.array(jax.device_count())}
  for sampler in ("iid", "lattice"):  # a token-mode and a code-mode sampler.
    out = qmotto.sharding.GroupSharding(mesh).generate(
        jax.random.key(5), model, prompts, lengths, num_samples=4, max_new_tokens=6, sampling=sampler
    )
    for name in ("tokens", "logprobs", "lengths"):
      results[f"{sampler}/{name}"] = np.asarray(multihost_utils.process_allgather(getattr(out, name), tiled=True))
  if jax.process_index() == 0:
    np.savez(args.out, **results)


if __name__ == "__main__":
  main()
