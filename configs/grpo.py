r"""GRPO from a task model, with the G samples of each group drawn by i.i.d. or coupled samplers.

Variants are "key=value,..." after a colon; keys: `task` (countdown, maze,
mini_sudoku, arc_1d), `sampler` (any name in qmotto.SAMPLERS: iid,
stratified, lattice, sobol, ...), `seed`, `experiment` (grpo1, grpo2), `G`,
`sweep_lr`; flags: `smoke`, `dynamic`. Any field can then be
overridden with --config.<field>=value.

One run (starts from the SFT checkpoint checkpoints/<task>, trained by
experiments/train_task.py; resumes from config.workdir if interrupted):
  python experiments/grpo.py --config=configs/grpo.py:task=arc_1d,sampler=lattice,seed=0
Each task's defaults (`_EXPERIMENTS`: learning rate, steps, evaluation, target)
are the settings of its steps-to-target experiment in results/grpo/EXPERIMENT.md,
so the experiment is (runs write results/grpo/<task>_experiment/):
  for seed in 0 1 2 3 4; do for sampler in iid stratified lattice; do
    python experiments/grpo.py --config=configs/grpo.py:task=arc_1d,sampler=$sampler,seed=$seed
  done; done
and the summary of all families (results/grpo/summary.json):
  python experiments/grpo_summary.py --results=results/grpo/maze_experiment,\
results/grpo/mini_sudoku_experiment,results/grpo/arc_1d_experiment
Another target, or an earlier SFT checkpoint (--config.init_step=<step>; the
committed checkpoints keep only their last step, so retrain with a larger
--config.max_to_keep in configs/train_task.py to have one):
  python experiments/grpo.py --config=configs/grpo.py:task=maze,sampler=iid --config.target=0.45 \
      --config.output_dir=/tmp/maze_045 --config.workdir=/tmp/maze_045/work
The second experiment (results/grpo/EXPERIMENT2.md: difficulty band (0, 2/G],
held-out problems from the same band, per-arm learning rates from a sweep) is
the variant experiment=grpo2, with G=8 or G=16 and the flag dynamic (DAPO's
dynamic sampling); sweep_lr=<lr> makes a learning-rate sweep run instead:
  python experiments/grpo.py --config=configs/grpo.py:task=maze,sampler=lattice,seed=0,experiment=grpo2,G=16
  python experiments/grpo.py --config=configs/grpo.py:task=maze,sampler=iid,seed=100,experiment=grpo2,G=8,dynamic,sweep_lr=1e-3
Smoke (a tiny random model, a few steps, seconds; what the tests and colab/grpo.ipynb run):
  python experiments/grpo.py --config=configs/grpo.py:task=countdown,sampler=lattice,smoke

Results: <output_dir>/<task>_<sampler>_seed<seed>.json (metrics, log, config,
command) and .png (reward, held-out pass@1, zero-variance groups, distinct
completions per group vs step), summary.json (one row per run), summary_by_sampler.json
and summary_<task>.png.
"""

import os
import sys

import ml_collections

# ml_collections loads this file by path: put the repository root on sys.path for configs.common.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import common  # noqa: E402

TASKS = ("countdown", "maze", "mini_sudoku", "arc_1d")

# Per task: the settings of its steps-to-target experiment (results/grpo/EXPERIMENT.md).
# The targets were fixed from pilot runs before the experiment; countdown has
# none (GRPO did not move its held-out pass@1, results/grpo/NOTES.md), so its
# summary target is the mean final i.i.d. value (target 0).
_EXPERIMENTS = {
    "maze": dict(learning_rate=3e-4, num_steps=100, eval_every=5, eval_problems=128, target=0.42),
    "mini_sudoku": dict(learning_rate=1e-4, num_steps=200, eval_every=10, eval_problems=256, target=0.47),
    "arc_1d": dict(learning_rate=1e-4, num_steps=150, eval_every=10, eval_problems=256, target=0.38),
    "countdown": dict(learning_rate=1e-4, num_steps=300, eval_every=25, eval_problems=256, target=0.0),
}
# The second experiment (results/grpo/EXPERIMENT2.md): per task the run length,
# the evaluation interval, the target on the 3-evaluation moving average of
# held-out pass@1 in the band, and each arm's learning rate, chosen by the
# sweep (SWEEP_LEARNING_RATES on pilot seeds). None: not fixed yet.
EXPERIMENT2 = {
    "maze": dict(num_steps=60, eval_every=5, target=0.275, learning_rates={
        "iid_G8": 3e-3, "stratified_G8": 1e-3, "lattice_G8": 3e-3, "iid+dynamic_G8": 3e-3}),
    "mini_sudoku": dict(num_steps=100, eval_every=10, target=0.22, learning_rates={
        "iid_G8": 3e-5, "stratified_G8": 3e-5, "lattice_G8": 3e-5, "iid+dynamic_G8": 1e-4}),
}
SWEEP_LEARNING_RATES = ("3e-5", "1e-4", "3e-4", "1e-3", "3e-3")  # 3e-3, 3e-5: EXPERIMENT2.md, deviations 1, 2.
# Random-init (smoke) prompt and completion lengths for the tasks' default options.
_SMOKE_LENGTHS = {"countdown": (14, 12), "maze": (24, 4), "mini_sudoku": (22, 22), "arc_1d": (80, 12)}


def _model(hidden: int, layers: int, heads: int, mlp: int) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      hidden_size=hidden, intermediate_size=mlp, num_layers=layers, num_heads=heads, num_kv_heads=heads,
      rope_theta=10000.0, tie_embeddings=True,
  ))


def get_config(arg: str = "task=countdown") -> ml_collections.ConfigDict:
  args = common.parse_arg(
      arg, "configs/grpo.py", example="task=countdown,sampler=lattice,seed=0", choices={"task": TASKS},
      task="countdown", sampler="lattice", seed=0, smoke=False, experiment="grpo1", G=8, dynamic=False,
      sweep_lr="",
  )
  task, sampler, seed = args["task"], args["sampler"], args["seed"]

  config = ml_collections.ConfigDict()
  # The initial policy: an SFT checkpoint (its task, tokenizer and lengths), or
  # a random model of config.model when init_checkpoint is "".
  config.task = task
  config.task_options = {}  # random init only; a checkpoint brings its own options.
  config.init_checkpoint = f"checkpoints/{task}"
  config.init_step = -1  # -1: the latest step; else an earlier saved one.
  config.model = _model(hidden=128, layers=3, heads=4, mlp=384)  # random init only.
  config.prompt_len = 0  # 0: the checkpoint's metadata.
  config.max_new_tokens = 0  # 0: the checkpoint's metadata.
  config.seed = seed
  # The experiment the run belongs to (results/grpo/EXPERIMENT.md is "grpo1"); it
  # names the run's arm and groups the summary (qmotto.rl.summary.run_arm).
  config.experiment = "grpo1"
  # Groups: B prompts per step, G samples each from config.sampler.
  config.sampler = sampler
  config.group_size = 8
  config.batch_size = 16
  config.temperature = 1.0
  config.reward = "binary"  # "binary": score >= tasks.PASS_SCORE; "partial": reasoning-gym's score.
  # Objective: advantages "mean" (r - group mean), "mean_std" (GRPO's),
  # "mean_batch_std" (batch std), "loo", "fixed" (r - baseline);
  # clipped ratio; KL (k3) to the initial model when kl_coef > 0; "sequence"
  # aggregation keeps the policy-gradient form (see qmotto/rl/loss.py).
  config.advantage = "mean"
  config.baseline = 0.5  # advantage "fixed" only: A = r - baseline (unbiased under coupling).
  config.adv_eps = 1e-6
  config.clip_eps = 0.2
  config.clip_eps_high = 0.0  # > 0: DAPO's clip-higher upper bound (e.g. 0.28); 0: clip_eps (symmetric).
  config.kl_coef = 0.0
  # "sequence" (Dr. GRPO's constant divisor), "token_mean" (DAPO), "sequence_mean"
  # (the GRPO paper); the aliases "dr_grpo", "token", "dapo", "grpo" work too.
  config.loss_aggregation = "sequence"
  # DAPO's dynamic sampling: draw further batches of B prompts while fewer than
  # B groups have rewards that are not all equal (at most max_sample_batches
  # batches a step), train on those first; every drawn sample is counted.
  config.dynamic_sampling = False
  config.max_sample_batches = 3
  config.updates_per_batch = 1
  # Optimizer: AdamW, warmup then cosine to end_lr_fraction (1.0: constant).
  config.num_steps = _EXPERIMENTS[task]["num_steps"]
  config.learning_rate = _EXPERIMENTS[task]["learning_rate"]
  config.warmup_steps = 10
  config.end_lr_fraction = 1.0
  config.weight_decay = 0.0
  config.grad_clip = 1.0
  config.b1 = 0.9
  config.b2 = 0.99
  config.train_pool_size = 0  # 0: fresh training problems every step.
  # A difficulty band: train only on prompts whose success probability under
  # the start policy (band_samples i.i.d. samples each, over band_candidates
  # problems from train_start, cached in band_cache_dir) is in (band_low,
  # band_high]; (0, 1] with band_low = 0 and band_high = 1 means no band.
  config.band_low = 0.0
  config.band_high = 1.0
  config.band_candidates = 2048
  config.band_samples = 16
  config.band_seed = 0
  config.band_cache_dir = "tmp/grpo/difficulty"
  # Evaluate on the first eval_problems test problems in the band (estimated
  # like the training pool over the first eval_band_candidates test problems),
  # instead of the first eval_problems test problems.
  config.eval_band = False
  config.eval_band_candidates = 4096
  # Training problems start here, past the indices the SFT model trained on
  # (at most its num_steps * batch_size, or its pool). Countdown's problem space
  # is small, so about half of these repeat SFT problems by content anyway
  # (results/grpo/NOTES.md); held-out problems never do (disjoint splits).
  config.train_start = 1_000_000
  # Checkpoints, log, held-out evaluation (greedy accuracy and pass@k of i.i.d.
  # samples at temperature 1 on the first eval_problems test problems).
  config.checkpoint_every = 50
  config.max_to_keep = 1
  config.log_every = 1
  config.eval_every = _EXPERIMENTS[task]["eval_every"]  # 0: no evaluation.
  config.eval_problems = _EXPERIMENTS[task]["eval_problems"]
  config.eval_samples = 8
  config.eval_batch_size = 64
  config.target_metric = "pass@1"
  config.target = _EXPERIMENTS[task]["target"]  # 0: the mean final target_metric of the i.i.d. runs.
  config.progress_bar = "auto"
  config.workdir = f"tmp/grpo/{task}_experiment/{sampler}_seed{seed}"
  config.output_dir = f"results/grpo/{task}_experiment"
  config.plot = True

  if args["experiment"] != "grpo1":
    _experiment2(config, args)
  elif args["G"] != 8 or args["dynamic"] or args["sweep_lr"]:
    raise ValueError(
        "configs/grpo.py: G, dynamic and sweep_lr are variants of experiment=grpo2; for another run set "
        "--config.group_size, --config.dynamic_sampling or --config.learning_rate."
    )

  if args["smoke"]:
    config.init_checkpoint = ""
    config.model = _model(hidden=32, layers=1, heads=2, mlp=64)
    config.prompt_len, config.max_new_tokens = _SMOKE_LENGTHS[task]
    config.group_size = 4
    config.batch_size = 4
    config.num_steps = 4
    config.warmup_steps = 0
    config.learning_rate = 1e-3
    config.reward = "partial"
    config.checkpoint_every = 2
    config.eval_every = 2
    config.eval_problems = 4
    config.eval_samples = 2
    config.eval_batch_size = 4
    config.progress_bar = "off"
    config.workdir = f"/tmp/qmotto_grpo_smoke/{task}/{sampler}_seed{seed}"
    config.output_dir = "/tmp/qmotto_grpo_smoke/results"
  return config


def _experiment2(config: ml_collections.ConfigDict, args: dict) -> None:
  """The second experiment's settings (results/grpo/EXPERIMENT2.md): variant experiment=grpo2.

  G=8 trains B=16 prompts a step, G=16 B=8 (128 samples either way), on the
  difficulty band (0, 2/G], evaluated on 512 held-out problems of the same
  band. sweep_lr=<lr> makes a learning-rate sweep run (its own experiment
  name and folders); otherwise the arm's learning rate comes from
  EXPERIMENT2, fixed by the sweep.
  """
  task, sampler, seed = args["task"], args["sampler"], args["seed"]
  if args["experiment"] != "grpo2":
    raise ValueError(f"configs/grpo.py: experiment must be 'grpo1' or 'grpo2', got {args['experiment']!r}.")
  if task not in EXPERIMENT2:
    raise ValueError(f"configs/grpo.py: experiment=grpo2 has the tasks {tuple(EXPERIMENT2)}, got {task!r}.")
  if args["G"] not in (8, 16):
    raise ValueError(f"configs/grpo.py: experiment=grpo2 has G in (8, 16), got {args['G']}.")
  settings = EXPERIMENT2[task]
  config.group_size = args["G"]
  config.batch_size = 128 // args["G"]
  config.dynamic_sampling = args["dynamic"]
  config.band_high = 2 / args["G"]
  config.eval_band = True
  config.eval_problems = 512
  config.eval_samples = 8
  config.num_steps = settings["num_steps"]
  config.eval_every = settings["eval_every"]
  config.checkpoint_every = 10
  config.plot = False  # one figure per task from experiments/grpo_summary.py instead.
  arm = sampler + ("+dynamic" if args["dynamic"] else "") + f"_G{args['G']}"
  if args["sweep_lr"]:
    if args["sweep_lr"] not in SWEEP_LEARNING_RATES:
      raise ValueError(f"configs/grpo.py: sweep_lr must be one of {SWEEP_LEARNING_RATES}, got {args['sweep_lr']!r}.")
    config.learning_rate = float(args["sweep_lr"])
    config.experiment = f"grpo2_sweep_lr{args['sweep_lr']}"
    config.target = 0.0  # the sweep picks by the area under the curve; its summary target is i.i.d.'s final.
    config.output_dir = f"results/grpo/experiment2/sweep_lr{args['sweep_lr']}"
    config.workdir = f"tmp/grpo/experiment2/sweep_lr{args['sweep_lr']}/{task}_{arm}_seed{seed}"
    return
  learning_rate = settings["learning_rates"].get(arm.replace("_G16", "_G8"))
  if learning_rate is None or settings["target"] is None:
    raise ValueError(
        f"configs/grpo.py: the {task} learning rate of {arm} and the target are fixed by the sweep "
        "(results/grpo/EXPERIMENT2.md) and not set yet; run the sweep (sweep_lr=...) first."
    )
  config.experiment = "grpo2"
  config.learning_rate = learning_rate
  config.target = settings["target"]
  config.output_dir = f"results/grpo/experiment2/{task}"
  config.workdir = f"tmp/grpo/experiment2/{task}/{arm}_seed{seed}"
