"""GRPO over the project's transformer, with the G samples of a group drawn by any sampler.

    from qmotto.rl import grpo
    metrics = grpo.train(config)            # configs/grpo.py
    result = grpo.run(config, command=...)  # train, then the result file, plots, summary.json

Each step s (s = 0 .. num_steps - 1) of `train`:
  1. problems: B training prompts, problems train_start + s * B + (0 .. B - 1)
     of the task's train split (or cycling over a pool of `train_pool_size`
     from train_start), a function of s (`TrainingProblems`). train_start
     (default 1e6) lies past the problems the SFT model was trained on.
  2. rollout (`collect_rollout`): G completions per prompt with
     `qmotto.generate`, sampler `config.sampler` ("iid", "stratified",
     "lattice", "sobol", ...), key fold_in(sample key, s): each completion is
     an exact draw from the current policy at `config.temperature`; coupled
     samplers spread the group out. Rewards r[B, G] (`qmotto.rl.rewards`),
     advantages from `qmotto.rl.advantages` ("mean", "mean_std",
     "mean_batch_std", "loo", or "fixed": r - config.baseline, the one
     unbiased under coupling). With `config.dynamic_sampling` (DAPO) further
     batches of B problems (`TrainingProblems(s, j)`, key fold_in(key, j))
     are drawn while fewer than B groups have rewards that are not all equal,
     up to `config.max_sample_batches`; the B groups trained on are those
     first, and "samples_drawn" in the log counts every drawn sample.
  3. update (`update_policy`): `updates_per_batch` optax updates of the
     clipped-ratio objective (`qmotto.rl.loss`: aggregation "sequence" (Dr.
     GRPO), "token_mean" (DAPO) or "sequence_mean" (GRPO), clip-higher with
     `clip_eps_high`), optionally with a KL penalty to the frozen initial
     model.
  4. log, evaluate, checkpoint when due.

Files in workdir:
  workdir/<step>/        orbax checkpoints (`save_checkpoint`) every
                         `checkpoint_every` steps and at the end: params, the
                         optimizer state, metadata {"tokenizer", "task",
                         "style", "prompt_len", "max_new_tokens", "grpo_config",
                         "init", "train_seconds", "eval"}, so
                         `qmotto.load_model(workdir)` and the pass@k runner
                         take the trained policy.
  workdir/grpo_log.jsonl {"kind": "train", "step", "reward",
                         "zero_variance", "distinct", "length", "no_eos"
                         (`rewards.group_stats`), "samples_drawn",
                         "sample_batches", "zero_variance_drawn"
                         (`collect_rollout`), "loss", "pg_loss", "kl",
                         "entropy", "clip_fraction", "ratio_dev", "grad_norm",
                         "lr" (`loss.train_step`), "sample_s" (prompts and
                         generate), "reward_s" (decoding, rewards, advantages),
                         "update_s" (the rollout and the updates)} per log interval (means
                         over it) and {"kind": "eval", "step",
                         "greedy_accuracy", "pass@1", ..., "distinct",
                         "no_eos"} (held-out test problems, i.i.d. samples at
                         temperature 1, the same for every sampler:
                         `qmotto.train.evaluation`) at step 0 and every
                         `eval_every` steps.

The run's result file and the summary across runs are `qmotto.rl.summary`;
the figures `qmotto.rl.figures`.

Keys. key(config.seed) is split once into (init, sample, eval) keys
(`run_keys`); step s samples with fold_in(sample key, s) and the evaluation
after step s uses fold_in(eval key, s). Runs of different samplers with the
same seed therefore see the same prompts at every step and the same
evaluation keys (common random numbers for the comparison).

Resuming. `train` restarts from the latest checkpoint in workdir; the prompts
and keys of step s depend only on (config, s) and the reference model is the
initial one, so an interrupted run loses only the steps since its last
checkpoint and, resumed, ends bit-identical to an uninterrupted one (log lines
after the checkpoint are dropped and rewritten).

One run per workdir. `train` and `run` check that they can write their
directories before loading the model, and hold workdir's lock
(`qmotto.utils.locks`) for the whole run: a second run on the same workdir
is refused at once with a message that names the first (pid, host, command
line, start time); a killed run's lock goes with its process. Under the lock,
`.tmp-*` files left in workdir by a killed write are removed.

Shapes are fixed (B prompts padded to prompt_len, N = max_new_tokens), so the
train step compiles once and `generate` once per shape (the tests count the
traces through `jax.monitoring`).
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from qmotto import decode
from qmotto import sampling
from qmotto.models import llama
from qmotto.models.loading import checkpoint as checkpoint_lib
from qmotto.rl import advantages as advantages_lib
from qmotto.rl import difficulty
from qmotto.rl import figures
from qmotto.rl import loss as loss_lib
from qmotto.rl import rewards as rewards_lib
from qmotto.rl import summary as summary_lib
from qmotto.sampling import samplers as samplers_lib
from qmotto.tasks import prompting
from qmotto.train import config_checks
from qmotto.train import data
from qmotto.train import evaluation
from qmotto.train import resume
from qmotto.train import state as state_lib
from qmotto.utils import files
from qmotto.utils import locks
from qmotto.utils import numbers
from qmotto.utils import progress
from qmotto.utils import run_log

LOG_NAME = "grpo_log.jsonl"

# The config fields whose change makes a checkpoint in the workdir a different
# run (resuming from it is refused); the others (logging, evaluation,
# checkpoint intervals, the target, paths) may change between resumes. The
# tests also check that the committed experiments ran with today's defaults of
# these fields.
RUN_FIELDS = (
    "seed", "sampler", "group_size", "batch_size", "num_steps", "temperature", "reward", "advantage",
    "baseline", "adv_eps", "clip_eps", "kl_coef", "loss_aggregation", "updates_per_batch", "learning_rate",
    "warmup_steps", "end_lr_fraction", "weight_decay", "grad_clip", "b1", "b2", "train_pool_size",
    "train_start", "init_checkpoint", "init_step", "model", "prompt_len", "max_new_tokens",
    "clip_eps_high", "dynamic_sampling", "max_sample_batches", "band_low", "band_high", "band_candidates",
    "band_samples", "band_seed",
)
# RUN_FIELDS added after the first experiment, with values that give what every
# run before them did: a saved config without one of them ran as with this
# value (max_sample_batches has no effect without dynamic sampling).
ADDED_RUN_FIELDS = {
    "clip_eps_high": 0.0, "dynamic_sampling": False, "max_sample_batches": 3, "band_low": 0.0, "band_high": 1.0,
    "band_candidates": 2048, "band_samples": 16, "band_seed": 0,
}


def saved_run_config(saved: dict) -> dict:
  """A saved run's config with the fields it predates filled in (`ADDED_RUN_FIELDS`)."""
  return {**ADDED_RUN_FIELDS, **saved}


# ---------------------------------------------------------------------------
# Config.

# The fields a GRPO config must have (configs/grpo.py).
REQUIRED = (
    "task", "task_options", "init_checkpoint", "init_step", "model", "prompt_len", "max_new_tokens", "seed",
    "sampler", "group_size", "batch_size", "temperature", "reward", "advantage", "baseline", "adv_eps", "clip_eps",
    "kl_coef", "loss_aggregation", "updates_per_batch", "num_steps", "learning_rate", "warmup_steps",
    "end_lr_fraction", "weight_decay", "grad_clip", "b1", "b2", "train_pool_size", "train_start", "checkpoint_every",
    "clip_eps_high", "dynamic_sampling", "max_sample_batches", "eval_band", "eval_band_candidates",
    "max_to_keep", "log_every", "eval_every", "eval_problems", "eval_samples", "eval_batch_size",
    "target_metric", "target", "progress_bar", "workdir", "output_dir", "plot",
)


def check_config(config) -> None:
  """Raises ValueError naming the first config field that is missing or out of range."""
  missing = [name for name in REQUIRED if name not in config]
  if missing:
    raise ValueError(f"config lacks the fields {missing} (see configs/grpo.py).")
  for name, minimum in (
      ("seed", 0), ("prompt_len", 0), ("max_new_tokens", 0), ("batch_size", 1), ("updates_per_batch", 1),
      ("num_steps", 1), ("warmup_steps", 0), ("train_pool_size", 0), ("train_start", 0), ("checkpoint_every", 1),
      ("max_to_keep", 1), ("log_every", 1), ("eval_every", 0), ("eval_problems", 1), ("eval_samples", 1),
      ("eval_batch_size", 1), ("init_step", -1), ("max_sample_batches", 1), ("band_candidates", 1),
      ("band_samples", 1), ("band_seed", 0), ("eval_band_candidates", 1),
  ):
    config_checks.require_int(config, name, minimum)
  if config.sampler not in samplers_lib.SAMPLERS:
    raise ValueError(f"config.sampler must be one of {tuple(samplers_lib.SAMPLERS)}, got {config.sampler!r}.")
  if config.advantage not in advantages_lib.ADVANTAGES:
    raise ValueError(f"config.advantage must be one of {advantages_lib.ADVANTAGES}, got {config.advantage!r}.")
  config_checks.require_float(config, "baseline")  # used by advantage 'fixed'.
  # >= 2: the advantages compare each sample with the rest of its group.
  group_size = config_checks.require_int(config, "group_size", 2)
  try:
    samplers_lib.get_sampler(config.sampler).check_group_size(group_size)
  except ValueError as e:
    raise ValueError(f"config.group_size={config.group_size} cannot be served by config.sampler="
                     f"{config.sampler!r}: {e}") from e
  if config.reward not in rewards_lib.REWARDS:
    raise ValueError(f"config.reward must be one of {rewards_lib.REWARDS}, got {config.reward!r}.")
  try:
    loss_lib.resolve_aggregation(config.loss_aggregation)
  except ValueError as e:
    raise ValueError(f"config.{e}") from e
  progress.check_progress_bar(config.progress_bar)
  for name, strict in (
      ("temperature", True), ("adv_eps", False), ("clip_eps", True), ("kl_coef", False), ("learning_rate", True),
      ("grad_clip", True), ("weight_decay", False), ("end_lr_fraction", False), ("target", False),
      ("clip_eps_high", False),
  ):
    config_checks.require_float(config, name, 0.0, exclusive_minimum=strict)
  if not isinstance(config.dynamic_sampling, bool):
    raise ValueError(f"config.dynamic_sampling must be True or False, got {config.dynamic_sampling!r}.")
  for name in ("band_low", "band_high"):
    numbers.check_float(f"config.{name}", config[name], minimum=0.0, maximum=1.0)
  if config.band_low >= config.band_high:
    raise ValueError(
        f"config.band_low must be < config.band_high (the band is (low, high]), got {config.band_low} and "
        f"{config.band_high}."
    )
  if uses_band(config) and config.train_pool_size:
    raise ValueError(
        f"config.train_pool_size={config.train_pool_size}: a difficulty band (config.band_low, band_high) makes "
        "the pool itself; set train_pool_size to 0."
    )
  if not isinstance(config.eval_band, bool):
    raise ValueError(f"config.eval_band must be True or False, got {config.eval_band!r}.")
  if config.eval_band and not uses_band(config):
    raise ValueError(
        "config.eval_band evaluates on the test problems of the difficulty band: set config.band_low > 0 or "
        "config.band_high < 1."
    )
  if not isinstance(config.band_cache_dir, str) or not config.band_cache_dir:
    raise ValueError(f"config.band_cache_dir must be a non-empty path, got {config.band_cache_dir!r}.")
  if config.dynamic_sampling and config.advantage == "fixed":
    raise ValueError(
        "config.dynamic_sampling drops the groups whose rewards are all equal, which carry no signal only "
        "under a group baseline; with config.advantage='fixed' they do: use advantage 'mean', 'mean_std', "
        "'mean_batch_std' or 'loo'."
    )
  for name in ("b1", "b2"):
    config_checks.require_fraction(config, name)
  if config.warmup_steps >= config.num_steps:
    raise ValueError(f"config.warmup_steps must be in [0, num_steps={config.num_steps}), got {config.warmup_steps}.")
  if config.train_pool_size and config.train_pool_size < config.batch_size:
    raise ValueError(
        f"config.train_pool_size must be 0 (fresh problems every step) or >= batch_size={config.batch_size}, "
        f"got {config.train_pool_size}."
    )
  if not isinstance(config.init_checkpoint, str):
    raise ValueError(f"config.init_checkpoint must be a path or '' (random init), got {config.init_checkpoint!r}.")
  if not config.init_checkpoint and (config.prompt_len < 1 or config.max_new_tokens < 1):
    raise ValueError(
        "config.prompt_len and config.max_new_tokens must be >= 1 for a random initial model "
        f"(init_checkpoint=''), got {config.prompt_len} and {config.max_new_tokens}."
    )
  for name in ("workdir", "output_dir"):
    if not isinstance(config[name], str) or not config[name]:
      raise ValueError(f"config.{name} must be a non-empty path, got {config[name]!r}.")
  if not isinstance(config.target_metric, str) or not (
      config.target_metric == "greedy_accuracy" or config.target_metric.startswith("pass@")
  ):
    raise ValueError(f"config.target_metric must be 'pass@1', 'pass@<k>' or 'greedy_accuracy', got {config.target_metric!r}.")


def uses_band(config) -> bool:
  """Whether the run trains on a difficulty band of prompts (band_low > 0 or band_high < 1)."""
  return config.band_low > 0.0 or config.band_high < 1.0


def run_keys(config) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(init key, sample key, eval key): key(config.seed) split once; steps fold in their index."""
  init_key, sample_key, eval_key = jax.random.split(jax.random.key(config.seed), 3)
  return init_key, sample_key, eval_key


def optimizer_config(config) -> state_lib.OptimizerConfig:
  """AdamW over num_steps * updates_per_batch updates (warmup counted in steps, too)."""
  u = config.updates_per_batch
  return state_lib.OptimizerConfig(
      learning_rate=float(config.learning_rate), warmup_steps=config.warmup_steps * u,
      num_steps=config.num_steps * u, end_lr_fraction=float(config.end_lr_fraction),
      weight_decay=float(config.weight_decay), grad_clip=float(config.grad_clip), b1=float(config.b1),
      b2=float(config.b2),
  )


def loss_config(config) -> loss_lib.LossConfig:
  """The objective's settings of `config` (clip_eps_high 0: symmetric clipping)."""
  return loss_lib.LossConfig(
      float(config.clip_eps), float(config.kl_coef), float(config.temperature), config.loss_aggregation,
      float(config.clip_eps_high) or None,
  )


class Policy(NamedTuple):
  """The initial policy and what goes with it.

  Attributes:
    model: the initial Model (also the KL reference).
    tokenizer: its CharTokenizer.
    task: the task it is trained on.
    prompt_len: Lp.
    max_new_tokens: N.
    init: {"checkpoint", "step"} where it came from (checkpoint "" = random).
  """

  model: llama.Model
  tokenizer: Any
  task: Any
  prompt_len: int
  max_new_tokens: int
  init: dict


def initial_policy(config, *, task=None) -> Policy:
  """The starting model: an SFT checkpoint (`config.init_checkpoint`, `init_step` or the latest), or random.

  A checkpoint gives the task (its metadata; `task` or config.task must name
  the same family), tokenizer, and prompt_len / max_new_tokens where the
  config has 0. A random model (init_checkpoint "") uses config.model and
  the task `get_task(config.task, **config.task_options)` (or `task`).
  """
  from qmotto import tasks as tasks_lib  # pylint: disable=g-import-not-at-top
  from qmotto.models import loading  # pylint: disable=g-import-not-at-top

  if config.init_checkpoint:
    path = config.init_checkpoint
    if not checkpoint_lib.checkpoint_steps(path):
      raise ValueError(
          f"config.init_checkpoint={path!r} holds no checkpoint: train the SFT model first "
          f"(python experiments/train_task.py --config=configs/train_task.py:task={config.task}) or set "
          "init_checkpoint='' for a random model."
      )
    step = None if config.init_step < 0 else config.init_step
    restored = checkpoint_lib.restore_checkpoint(path, step)
    meta = restored.metadata or {}
    tokenizer = loading.tokenizer_from_metadata(meta, path)
    if tokenizer is None or "task" not in meta:
      raise ValueError(f"config.init_checkpoint={path!r} has no tokenizer or task metadata (not an SFT checkpoint).")
    if task is None:
      task = tasks_lib.Task.from_dict(meta["task"])
      if config.task and task.name != config.task:
        raise ValueError(f"config.init_checkpoint={path!r} was trained on {task.name!r}, not config.task={config.task!r}.")
    prompt_len = config.prompt_len or int(meta.get("prompt_len", 0))
    max_new = config.max_new_tokens or int(meta.get("max_new_tokens", 0))
    if prompt_len < 1 or max_new < 1:
      raise ValueError(f"config.init_checkpoint={path!r} metadata lacks prompt_len / max_new_tokens; set them in the config.")
    model = restored.model
    need = prompt_len + max_new
    if model.config.max_seq_len < need:
      raise ValueError(
          f"config.prompt_len + max_new_tokens = {need} exceeds the checkpoint's max_seq_len={model.config.max_seq_len}."
      )
    params = resume.uncommitted(model.params)
    return Policy(llama.Model(model.config, params), tokenizer, task, prompt_len, max_new,
                  {"checkpoint": os.path.abspath(path), "step": int(restored.step)})
  if task is None:
    options = config.task_options
    task = tasks_lib.get_task(config.task, **(options.to_dict() if hasattr(options, "to_dict") else dict(options)))
  tokenizer = data.task_tokenizer(task)
  mconfig = data.task_model_config(config.model, tokenizer.vocab_size, config.prompt_len + config.max_new_tokens)
  params = llama.init_params(mconfig, run_keys(config)[0])
  return Policy(llama.Model(mconfig, params), tokenizer, task, config.prompt_len, config.max_new_tokens,
                {"checkpoint": "", "step": 0})


def band_problems(config, policy: Policy, split: str = "train") -> tuple[list, dict]:
  """The problems of a split in the difficulty band, and what the result records of them.

  The candidates are `config.band_candidates` training problems from
  `config.train_start` (split "train": the training pool), or
  `config.eval_band_candidates` test problems from the first (split "test":
  the held-out set of `config.eval_band`). Each one's success probability
  under the start policy is estimated (`difficulty.estimate_success`,
  `config.band_samples` i.i.d. samples at the training temperature,
  key(config.band_seed)) and cached in `config.band_cache_dir`; the band is
  those in (band_low, band_high], in the candidates' order.

  Returns:
    (the problems, {"low", "high", "candidates", "pool_size", "share" (of the
    candidates in the band), "estimate_mean", "cache"}).
  """
  if split not in ("train", "test"):
    raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
  start, count = (config.train_start, config.band_candidates) if split == "train" else (0, config.eval_band_candidates)
  candidates = policy.task.problems(split, count, start=start)
  settings = {
      "init": policy.init, "task": policy.task.to_dict(), "split": split, "start": start,
      "candidates": count, "samples": config.band_samples, "seed": config.band_seed,
      "temperature": float(config.temperature), "prompt_len": policy.prompt_len,
      "max_new_tokens": policy.max_new_tokens,
  }
  if not policy.init["checkpoint"]:  # a random start policy depends on the seed and the model config.
    settings.update(init_seed=config.seed, model=files.to_jsonable(config.model.to_dict()))

  def compute():
    logging.info("estimating the success probability of %d candidate %s prompts", len(candidates), split)
    return difficulty.estimate_success(
        jax.random.key(config.band_seed), policy.model, policy.tokenizer, policy.task, candidates,
        prompt_len=policy.prompt_len, max_new_tokens=policy.max_new_tokens, num_samples=config.band_samples,
        batch_size=config.eval_batch_size, temperature=float(config.temperature),
    )

  estimate = difficulty.cached_estimate(config.band_cache_dir, settings, compute)
  pool = difficulty.band_pool(candidates, estimate, config.band_low, config.band_high)
  info = {
      "low": config.band_low, "high": config.band_high, "candidates": len(candidates), "pool_size": len(pool),
      "share": len(pool) / len(candidates), "estimate_mean": float(estimate.mean()),
      "cache": difficulty.cache_path(config.band_cache_dir, settings),
  }
  return pool, info


def eval_problems(config, policy: Policy) -> tuple[list, dict | None]:
  """The held-out problems: the first `config.eval_problems` test problems, or of the band's.

  With `config.eval_band` they are the first eval_problems test problems in
  the difficulty band (`band_problems(config, policy, "test")`), which
  measures the policy where the band trains it; the second value is then
  the band's record (else None).

  Raises:
    ValueError: the band holds fewer than eval_problems of the candidates.
  """
  if not config.eval_band:
    return policy.task.problems("test", config.eval_problems, start=0), None
  pool, info = band_problems(config, policy, "test")
  if len(pool) < config.eval_problems:
    raise ValueError(
        f"the difficulty band holds {len(pool)} of config.eval_band_candidates={config.eval_band_candidates} test "
        f"problems, fewer than config.eval_problems={config.eval_problems}; raise eval_band_candidates."
    )
  return pool[:config.eval_problems], info


# ---------------------------------------------------------------------------
# The steps of the train loop.


# Dynamic sampling's extra batches of streamed problems start this far past
# train_start, EXTRA_BATCHES_PER_STEP batches reserved per step.
EXTRA_OFFSET = 100_000_000
EXTRA_BATCHES_PER_STEP = 64


class TrainingProblems:
  """The training problems of each step: streamed from `start`, or cycled over a pool there.

  problems(step) is a function of the step alone, so a resumed run sees the
  prompts an uninterrupted one would have seen.

  Args:
    task: the task.
    batch_size: B problems a step.
    pool_size: 0 to stream fresh problems, else cycle over this many.
    start: the index of the first training problem (config.train_start).
    pool: an explicit pool to cycle over instead (a difficulty band,
      `band_problems`).
  """

  def __init__(self, task, batch_size: int, pool_size: int, start: int, pool: list | None = None):
    self.task, self.batch_size, self.start = task, batch_size, start
    if pool is not None and len(pool) < batch_size:
      raise ValueError(
          f"the training pool holds {len(pool)} problems, fewer than batch_size={batch_size}; widen the "
          "difficulty band or raise config.band_candidates."
      )
    self.pool = pool if pool is not None else task.problems("train", pool_size, start=start) if pool_size else None

  def __call__(self, step: int, extra: int = 0) -> list:
    """The B problems of `step`; `extra` > 0: the step's extra-th further batch (dynamic sampling).

    Extra batches are a function of (step, extra) too: streamed from
    `EXTRA_OFFSET` past the start (disjoint from every step's own problems),
    or drawn without replacement from the pool by a generator seeded with
    (step, extra).
    """
    if extra < 0:
      raise ValueError(f"extra must be >= 0, got {extra}.")
    if self.pool is None:
      if extra == 0:
        return self.task.problems("train", self.batch_size, start=self.start + step * self.batch_size)
      index = step * EXTRA_BATCHES_PER_STEP + extra - 1
      return self.task.problems("train", self.batch_size, start=self.start + EXTRA_OFFSET + index * self.batch_size)
    if extra == 0:
      rows = (step * self.batch_size + np.arange(self.batch_size)) % len(self.pool)
    else:
      rows = np.random.default_rng((step, extra)).choice(len(self.pool), self.batch_size, replace=False)
    return [self.pool[r] for r in rows]


class Collected(NamedTuple):
  """A step's rollout and what the train log records of its groups.

  Attributes:
    rollout: the `loss.Rollout` of the B * G completions.
    stats: `rewards.group_stats` of the groups trained on, and
      "samples_drawn" (B * G times the batches drawn), "sample_batches"
      (1 without dynamic sampling), "zero_variance_drawn" (the fraction of
      all drawn groups whose rewards are all equal).
    seconds: {"sample_s" (prompts and generate), "reward_s" (decoding,
      rewards, advantages)}; assembling the rollout counts as update time.
  """

  rollout: loss_lib.Rollout
  stats: dict[str, float]
  seconds: dict[str, float]


class Groups(NamedTuple):
  """B groups of G completions and their rewards, before the advantages.

  Attributes:
    prompts: int32[B, Lp]; lengths: int32[B].
    output: the `decode.GenerateOutput` (tokens [B, G, N], logprobs, lengths [B, G]), on the host.
    ended: bool[B, G], completions that ended with EOS.
    rewards: float32[B, G].
    texts: the completions, texts[B][G].
  """

  prompts: np.ndarray
  lengths: np.ndarray
  output: decode.GenerateOutput
  ended: np.ndarray
  rewards: np.ndarray
  texts: list

  def take(self, rows) -> "Groups":
    """The groups `rows` (int[m]), in that order."""
    rows = np.asarray(rows, np.int64)
    out = jax.tree.map(lambda a: np.asarray(a)[rows], self.output)
    return Groups(self.prompts[rows], self.lengths[rows], out, self.ended[rows], self.rewards[rows],
                  [self.texts[r] for r in rows])

  @staticmethod
  def concatenate(parts: list["Groups"]) -> "Groups":
    out = jax.tree.map(lambda *arrays: np.concatenate(arrays), *[p.output for p in parts])
    return Groups(np.concatenate([p.prompts for p in parts]), np.concatenate([p.lengths for p in parts]), out,
                  np.concatenate([p.ended for p in parts]), np.concatenate([p.rewards for p in parts]),
                  [t for p in parts for t in p.texts])


def draw_completions(key: jax.Array, params, problems: list, policy: Policy, config,
                  reward_fn: rewards_lib.RewardFn) -> Groups:
  """G completions of each problem from the policy (`config.sampler`), decoded and scored."""
  tokenizer, mconfig = policy.tokenizer, policy.model.config
  prompts, lengths = prompting.encode_prompts(
      tokenizer, policy.task, problems, data.STYLE, length=policy.prompt_len, pad_id=tokenizer.pad_id
  )  # int32[B, Lp], int32[B]
  out = decode.generate(
      key, llama.Model(mconfig, params), prompts, lengths, num_samples=int(config.group_size),
      max_new_tokens=policy.max_new_tokens,
      sampling=sampling.SamplingOptions.create(config.sampler, temperature=float(config.temperature)),
      eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id,
  )
  out = jax.tree.map(np.asarray, out)  # tokens int32[B, G, N], lengths int32[B, G]
  texts = prompting.decode_completions(tokenizer, out.tokens, out.lengths)
  rewards = rewards_lib.score_rewards(reward_fn, problems, texts)  # float32[B, G]
  ended = np.asarray(out.ended(tokenizer.eos_id))
  return Groups(np.asarray(prompts), np.asarray(lengths), out, ended, np.asarray(rewards), texts)


def informative_first(parts: list[Groups], batch_size: int) -> np.ndarray:
  """int[batch_size]: rows of the concatenated parts to train on, under dynamic sampling (DAPO).

  The groups whose rewards are not all equal, in the order drawn, then (if
  fewer than batch_size were drawn) the others in the order drawn, so that
  the batch keeps its shape.
  """
  rewards = np.concatenate([p.rewards for p in parts])  # [M B, G]
  varied = ~np.all(rewards == rewards[:, :1], axis=1)
  order = np.concatenate([np.flatnonzero(varied), np.flatnonzero(~varied)])
  return order[:batch_size]


def collect_rollout(key: jax.Array, params, problems: list, policy: Policy, config,
                    reward_fn: rewards_lib.RewardFn, more_problems=None) -> Collected:
  """Samples G completions of each problem from the policy, scores them, and assembles the rollout.

  With `config.dynamic_sampling` (DAPO), further batches of B problems
  (`more_problems(j)`, j = 1, 2, ...; key fold_in(key, j)) are drawn while
  fewer than B of the groups drawn so far have rewards that are not all
  equal, up to `config.max_sample_batches` batches; the B groups trained on
  are those first (`informative_first`), and every drawn sample is counted
  in "samples_drawn".

  Args:
    key: the step's sampling key (fold_in(sample key, step)).
    params: the current policy's parameters.
    problems: the step's B problems (`TrainingProblems`).
    policy: the initial Policy (its model's parameters are the KL reference).
    config: the GRPO config (sampler, group_size, temperature, advantage,
      adv_eps, baseline, kl_coef, dynamic_sampling, max_sample_batches).
    reward_fn: reward(problem, text) -> float.
    more_problems: j -> the j-th further batch of B problems (dynamic
      sampling only; `TrainingProblems(step, j)`).

  Returns:
    The rollout with its advantages, the groups' statistics, and timings.
  """
  start = time.perf_counter()
  parts = [draw_completions(key, params, problems, policy, config, reward_fn)]
  batch_size = len(problems)
  if config.dynamic_sampling:
    if more_problems is None:
      raise ValueError("collect_rollout: config.dynamic_sampling needs more_problems (j -> problems).")
    varied = lambda groups: int(np.sum(~np.all(groups.rewards == groups.rewards[:, :1], axis=1)))  # noqa: E731
    informative = varied(parts[0])
    while informative < batch_size and len(parts) < config.max_sample_batches:
      j = len(parts)
      parts.append(draw_completions(jax.random.fold_in(key, j), params, more_problems(j), policy, config, reward_fn))
      informative += varied(parts[-1])
    groups = Groups.concatenate(parts).take(informative_first(parts, batch_size))
  else:
    groups = parts[0]
  sampled = time.perf_counter()
  adv = advantages_lib.advantages(
      groups.rewards, config.advantage, eps=float(config.adv_eps),
      baseline=float(config.baseline) if config.advantage == "fixed" else None,
  )
  scored = time.perf_counter()
  mconfig, tokenizer = policy.model.config, policy.tokenizer
  rollout = loss_lib.make_rollout(
      policy.model.params, jnp.asarray(groups.prompts), jnp.asarray(groups.lengths),
      jax.tree.map(jnp.asarray, groups.output), adv, jnp.int32(tokenizer.pad_id),
      model_config=mconfig, temperature=float(config.temperature), with_reference=bool(config.kl_coef),
  )
  stats = rewards_lib.group_stats(groups.rewards, groups.texts, groups.output.lengths, groups.ended)
  drawn = np.concatenate([p.rewards for p in parts])
  stats.update(
      samples_drawn=float(drawn.size), sample_batches=float(len(parts)),
      zero_variance_drawn=float(advantages_lib.zero_variance_fraction(drawn)),
  )
  return Collected(rollout, stats, {"sample_s": sampled - start, "reward_s": scored - sampled})


def update_policy(state: state_lib.TrainState, rollout: loss_lib.Rollout, *, num_updates: int,
                  model_config: llama.LlamaConfig, opt: state_lib.OptimizerConfig,
                  loss_config: loss_lib.LossConfig) -> tuple[state_lib.TrainState, dict[str, float]]:
  """`num_updates` optax updates (`loss.train_step`) on one rollout.

  Returns:
    (the next TrainState, the last update's metrics on the host, but
    "ratio_dev" of the first update: ~0, the sampling-time and the
    teacher-forced log-probabilities agree).
  """
  first = None
  for _ in range(num_updates):
    state, metrics = loss_lib.train_step(
        state, rollout, model_config=model_config, opt=opt, loss_config=loss_config
    )
    first = first or metrics
  metrics = jax.device_get({**metrics, "ratio_dev": first["ratio_dev"]})
  return state, {k: float(v) for k, v in metrics.items()}


def _train_record(window: list[dict], step: int) -> dict:
  """The train log line of the steps since the last one: the mean of each field."""
  return {"kind": "train", "step": step, **{k: float(np.mean([w[k] for w in window])) for k in window[0]}}


def read_log(workdir: str) -> list[dict]:
  """The records of workdir/grpo_log.jsonl."""
  return run_log.read_jsonl(os.path.join(workdir, LOG_NAME))


def _resume(workdir: str, state: state_lib.TrainState, policy: Policy, config) -> resume.Resumed:
  """Where the run continues: the latest checkpoint in `workdir`, or step 0 from `state` if none."""
  if checkpoint_lib.latest_checkpoint_step(workdir) is None:
    return resume.start_afresh(state)
  restored = checkpoint_lib.restore_checkpoint(workdir, extra_target={"opt_state": state.opt_state})
  meta = restored.metadata or {}
  where = f"{workdir}: checkpoint {restored.step}"
  if restored.model.config != policy.model.config:
    raise ValueError(f"{where} holds a different model ({restored.model.config}); use a fresh workdir.")
  resume.check_same_run(where, meta, policy.task, saved_run_config(meta.get("grpo_config", {})), config, RUN_FIELDS)
  if restored.extra is None:
    raise ValueError(f"{where} has no optimizer state to resume from; use a fresh workdir.")
  step = int(restored.step)
  state = state_lib.TrainState(
      jnp.int32(step * config.updates_per_batch), resume.uncommitted(restored.model.params),
      resume.uncommitted(restored.extra["opt_state"]),
  )  # state.step counts updates, `step` GRPO steps.
  logging.info("resumed %s from step %d", workdir, step)
  return resume.Resumed(state, step, float(meta.get("train_seconds", 0.0)), meta.get("eval"))


def _save(workdir: str, state: state_lib.TrainState, step: int, *, policy: Policy, config, train_seconds: float,
          last_eval: dict | None) -> None:
  """A checkpoint of `state` at `step`, with the optimizer state and the metadata of the module docstring."""
  metadata = {
      "tokenizer": policy.tokenizer.to_dict(), "task": policy.task.to_dict(), "style": data.STYLE,
      "prompt_len": policy.prompt_len, "max_new_tokens": policy.max_new_tokens, "grpo_config": config.to_dict(),
      "init": policy.init, "train_seconds": train_seconds, "eval": last_eval,
  }
  checkpoint_lib.save_checkpoint(
      workdir, llama.Model(policy.model.config, state.params), step, extra={"opt_state": state.opt_state},
      metadata=files.to_jsonable(metadata), max_to_keep=config.max_to_keep,
  )


# ---------------------------------------------------------------------------
# Training.


def train(config, workdir: str | None = None, *, task=None, reward_fn: rewards_lib.RewardFn | None = None) -> dict:
  """Trains (or resumes) a GRPO run; returns its final metrics.

  Args:
    config: an ml_collections config as in configs/grpo.py.
    workdir: checkpoints and the log (default config.workdir).
    task: a task object (default: the init checkpoint's, or
      `get_task(config.task, **config.task_options)`); tests pass synthetic ones.
    reward_fn: reward(problem, text) -> float (default
      `rewards.task_reward_fn(task, config.reward)`).

  Returns:
    {"task", "sampler", "seed", "step", the final `evaluation.evaluate`
    metrics, "steps_to_target" (config.target > 0, else None),
    "train_seconds" (wall time, summed over resumes), "seconds_per_step"
    (this process's steps, sampling + rewards + updates, without evaluations
    and checkpoints), "num_params", "init" ({"checkpoint", "step"} of the
    initial policy; "" and 0 for a random one), "band" (`band_problems`'
    record, None without a difficulty band), "eval_band" (the record of the
    held-out problems' band, None without config.eval_band), "workdir"}.

  Raises:
    ValueError: a bad config value (named), a workdir that cannot be written,
      a reward function that raises or returns a non-finite value (naming the
      problem and the completion), or a checkpoint in `workdir` from a
      different run.
    qmotto.utils.locks.DirectoryInUse (a ValueError): another run holds
      `workdir`; the message names it (pid, host, command line, start time).
  """
  check_config(config)
  name = "config.workdir" if workdir is None else "workdir"
  workdir = files.check_writable(workdir or config.workdir, name)  # before loading anything.
  with locks.hold_run_directory(workdir, name=name, run=_run_description(config, "")):
    return _train(config, workdir, task, reward_fn)


def _run_description(config, command: str) -> str:
  text = f"grpo {config.task or '(checkpoint task)'} sampler={config.sampler} seed={config.seed}"
  return f"{text}: {command}" if command else text


def _train(config, workdir: str, task, reward_fn: rewards_lib.RewardFn | None) -> dict:
  """`train`'s work, in a checked, writable and locked `workdir`."""
  policy = initial_policy(config, task=task)
  task, tokenizer, mconfig = policy.task, policy.tokenizer, policy.model.config
  reward_fn = reward_fn or rewards_lib.task_reward_fn(task, config.reward)
  opt = optimizer_config(config)
  _, sample_key, eval_key = run_keys(config)
  ref_params = policy.model.params  # the initial policy: the KL reference, and where training starts.
  state = state_lib.TrainState(jnp.int32(0), ref_params, state_lib.make_optimizer(opt).init(ref_params))

  clock = progress.Stopwatch()  # train_seconds: wall time, with compiles, evaluations and checkpoints.
  state, start, clock.seconds, last_eval = _resume(workdir, state, policy, config)
  os.makedirs(workdir, exist_ok=True)
  log = run_log.JsonlLog(os.path.join(workdir, LOG_NAME), keep_through=start if start else -1)  # -1: a fresh log.
  held_out, eval_band = eval_problems(config, policy)
  eval_set = evaluation.problem_set(tokenizer, task, held_out, policy.prompt_len)
  evaluator = evaluation.Evaluator(
      eval_key, mconfig, tokenizer, task, eval_set, max_new_tokens=policy.max_new_tokens,
      num_samples=config.eval_samples, batch_size=config.eval_batch_size,
  )
  pool, band = band_problems(config, policy) if uses_band(config) else (None, None)
  problems_of = TrainingProblems(task, config.batch_size, config.train_pool_size, config.train_start, pool=pool)
  update = functools.partial(update_policy, num_updates=config.updates_per_batch, model_config=mconfig, opt=opt,
                             loss_config=loss_config(config))
  save = functools.partial(_save, workdir, policy=policy, config=config)

  if start == 0 and config.eval_every:
    last_eval = evaluator(0, state.params)
    evaluation.log_evaluation(log, 0, last_eval)
  step_seconds = []
  if start < config.num_steps:
    window = []
    with progress.progress_bar(
        config.progress_bar, total=config.num_steps, initial=start,
        desc=f"grpo {getattr(task, 'name', '')} {config.sampler}",
    ) as bar:
      for step in range(start, config.num_steps):
        step_start = time.perf_counter()
        collected = collect_rollout(jax.random.fold_in(sample_key, step), state.params, problems_of(step), policy,
                                    config, reward_fn, more_problems=functools.partial(problems_of, step))
        state, metrics = update(state, collected.rollout)
        now = time.perf_counter()
        step_seconds.append(now - step_start)
        update_s = now - step_start - sum(collected.seconds.values())  # the rollout's assembly and the updates.
        window.append({**collected.stats, **metrics, **collected.seconds, "update_s": update_s})
        bar.update(1)
        done = step + 1
        final = done == config.num_steps
        if final or done % config.log_every == 0:
          record = _train_record(window, done)
          log.write(record)
          bar.set_postfix(reward=f"{record['reward']:.3f}", zero_var=f"{record['zero_variance']:.2f}",
                          refresh=False)
          window = []
        if config.eval_every and (final or done % config.eval_every == 0):
          last_eval = evaluator(done, state.params)
          evaluation.log_evaluation(log, done, last_eval)
        if final or done % config.checkpoint_every == 0:
          save(state, done, train_seconds=clock.lap(), last_eval=last_eval)
  elif last_eval is None and config.eval_every:
    last_eval = evaluator(config.num_steps, state.params)
    evaluation.log_evaluation(log, config.num_steps, last_eval)

  records = log.records()
  reached = summary_lib.steps_to_target(records, config.target, config.target_metric) if config.target > 0 else None
  return {
      "task": getattr(task, "name", None),
      "sampler": config.sampler,
      "seed": config.seed,
      "step": config.num_steps,
      **(last_eval or {}),
      "steps_to_target": reached,
      "train_seconds": clock.seconds,
      "seconds_per_step": float(np.mean(step_seconds)) if step_seconds else None,
      "num_params": state_lib.num_params(state.params),
      "init": policy.init,
      "band": band,
      "eval_band": eval_band,
      "workdir": workdir,
  }


# ---------------------------------------------------------------------------
# The runner: the result file, the summary, the figures.


def run(config, *, command: str = "", task=None, reward_fn: rewards_lib.RewardFn | None = None) -> dict:
  """`train`, then <output_dir>/<task>_<sampler>_seed<seed>.json (+ .png) and the summary (+ .png).

  The result file holds the final metrics, the whole log, the config and the
  command; the summary is rebuilt from every result file in output_dir
  (`summary.build_summary`, `summary.write_summary`).

  Both directories are checked for writing before the model is loaded;
  config.workdir is locked for the whole run and config.output_dir, which
  many runs share, while the files are written (`qmotto.utils.locks`).
  """
  check_config(config)
  files.check_writable(config.output_dir, "config.output_dir")
  workdir = files.check_writable(config.workdir, "config.workdir")
  with locks.hold_run_directory(workdir, name="config.workdir", run=_run_description(config, command)):
    metrics = _train(config, workdir, task, reward_fn)
    records = read_log(workdir)
  result = {
      "kind": summary_lib.RESULT_KIND,
      "task": metrics["task"],
      "sampler": config.sampler,
      "seed": config.seed,
      "metrics": metrics,
      "log": records,
      "command": command,
      "config": config.to_dict(),
  }
  name = summary_lib.result_name(metrics["task"], summary_lib.run_arm(config.to_dict()), config.seed)
  path = os.path.join(config.output_dir, name + ".json")
  with locks.output_lock(config.output_dir, name="config.output_dir", run=_run_description(config, command)):
    files.write_json(result, path)
    paths = {"result": path}
    paths.update(summary_lib.write_summary(summary_lib.build_summary(config.output_dir), config.output_dir))
    if config.plot:
      paths["plot"] = os.path.join(config.output_dir, name + ".png")
      figures.save_figure(figures.figure_runs([result]), paths["plot"])
      this_experiment = (summary_lib.experiment_of(config.to_dict()), metrics["task"])
      runs = [r for r in summary_lib.load_runs(config.output_dir) if (r["experiment"], r["task"]) == this_experiment]
      [paths["summary_plot"]] = figures.save_summary_figures(runs, config.output_dir)
  result["paths"] = paths
  return result
