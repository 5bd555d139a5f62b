"""pass@k of i.i.d. vs coupled samplers on the toy suite (no download needed).

Run (the README's first quick-start command does this):
  python experiments/passk_toy.py --config=configs/passk_toy.py
Variants (after a colon): `default`, `smoke` (seconds, for tests), `large`.
  python experiments/passk_toy.py --config=configs/passk_toy.py:smoke
Any field can be overridden:
  python experiments/passk_toy.py --config=configs/passk_toy.py --config.group_size=16 \
      --config.ks='(1,2,4,8,16)'
"""

import ml_collections


def get_config(arg: str = "default") -> ml_collections.ConfigDict:
  variant = arg or "default"
  config = ml_collections.ConfigDict()
  config.seed = 0
  # Toy suite: P problems, each a Markov chain over `vocab` tokens with a
  # `length`-token answer whose probability is known exactly.
  config.num_problems = 512
  config.vocab = 8
  config.length = 3
  config.difficulty = (0.0, 1.5)
  # Sampling: R independent groups of n samples per problem and sampler.
  config.samplers = ("iid", "lattice", "stratified", "sobol", "antithetic")
  config.group_size = 64
  config.replications = 4
  config.ks = (1, 2, 4, 8, 16, 32, 64)
  config.temperature = 1.0
  config.groups_per_call = 256
  # Reporting.
  config.num_resamples = 1000
  config.ks_shown = (4, 16, 64)
  config.output = "results/passk_toy/passk_toy.json"
  if variant == "smoke":
    config.num_problems = 32
    config.group_size = 16
    config.replications = 2
    config.ks = (1, 2, 4, 8, 16)
    config.ks_shown = (4, 16)
    config.samplers = ("iid", "lattice", "sobol")
    config.num_resamples = 200
    config.groups_per_call = 64
    config.output = "/tmp/qmotto_passk_toy_smoke.json"
  elif variant == "large":
    config.num_problems = 2048
    config.replications = 8
    config.output = "results/passk_toy/passk_toy_large.json"
  elif variant != "default":
    raise ValueError(f"configs/passk_toy.py: unknown variant {variant!r}; allowed: default, smoke, large.")
  return config
