"""GRPO over the project's transformer, with the G samples of a group drawn by any sampler.

    from qmotto.rl import grpo
    metrics = grpo.train(config)            # configs/grpo.py
    result = grpo.run(config, command=...)  # train, then the result file, plots, summary.json

Each step s (s = 0 .. num_steps - 1):
  1. B training prompts: problems train_start + s * B + (0 .. B - 1) of the
     task's train split (or cycling over a pool of `train_pool_size` from
     train_start), a function of s. train_start (default 1e6) lies past the
     problems the SFT model was trained on.
  2. G completions per prompt with `qmotto.generate`, sampler
     `config.sampler` ("iid", "stratified", "lattice", "sobol", ...), key
     fold_in(sample key, s): each completion is an exact draw from the
     current policy at `config.temperature`; coupled samplers spread the
     group out.
  3. Rewards r[B, G]: `task.score_text(problem, text, "compact")`, either
     "binary" (1 when it reaches tasks.PASS_SCORE, else 0) or "partial"
     (reasoning-gym's partial credit), or any `reward_fn(problem, text)`.
  4. Advantages from `qmotto.rl.advantages` ("mean", "mean_std", "loo", or
     "fixed": r - config.baseline, the one unbiased under coupling).
  5. `updates_per_batch` optax updates of the clipped-ratio objective
     (`policy_loss`), optionally with a KL penalty to the frozen initial model.

The loss (per completion token t of sample i, mask m by its length):
    ratio = exp(logp_new - logp_old),
    obj   = min(ratio * A_i, clip(ratio, 1 - eps, 1 + eps) * A_i)
    kl    = exp(logp_ref - logp_new) - (logp_ref - logp_new) - 1   (k3)
    per-token loss = -obj + kl_coef * kl
logp_old are `generate`'s sampling-time log-probabilities; logp_new are
recomputed by a teacher-forced forward pass over prompt + completion, both
of logits / temperature. With one update per batch the ratio is 1 up to
float rounding and the gradient is the policy gradient. Aggregation
(`LOSS_AGGREGATIONS`): "sequence" sums each completion's tokens and divides
by B * G * N (a constant), so at ratio 1 the gradient is exactly
-(1 / (B G N)) sum_i A_i grad log pi(y_i): with a fixed baseline it is
unbiased under coupling (`qmotto.rl.advantages`); "token_mean" divides by the
number of completion tokens (DAPO), "sequence_mean" averages per-completion
token means (the GRPO paper); both weight tokens by length-dependent factors.

Files in workdir:
  workdir/<step>/        orbax checkpoints (`save_checkpoint`) every
                         `checkpoint_every` steps and at the end: params, the
                         optimizer state, metadata {"tokenizer", "task",
                         "style", "prompt_len", "max_new_tokens", "grpo_config",
                         "init", "train_seconds", "eval"}, so
                         `qmotto.load_model(workdir)` and the pass@k runner
                         take the trained policy.
  workdir/grpo_log.jsonl {"kind": "train", "step", "reward",
                         "zero_variance", "distinct", "length", "no_eos",
                         "loss", "pg_loss", "kl", "entropy", "clip_fraction",
                         "ratio_dev", "grad_norm", "lr", "sample_s",
                         "reward_s", "update_s"} per log interval (means over
                         it) and {"kind": "eval", "step", "greedy_accuracy",
                         "pass@1", ..., "distinct", "no_eos"} (held-out test
                         problems, i.i.d. samples at temperature 1, the same
                         for every sampler: `qmotto.train.sft.evaluate`) at
                         step 0 and every `eval_every` steps.

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

Shapes are fixed (B prompts padded to prompt_len, N = max_new_tokens), so the
train step compiles once and `generate` once per shape (the tests count the
traces through `jax.monitoring`).
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm
from absl import logging

from qmotto import decode
from qmotto.utils import files
from qmotto.tasks import prompting
from qmotto.models import llama
from qmotto.models.loading import checkpoint as checkpoint_lib
from qmotto.rl import advantages as advantages_lib
from qmotto import sampling
from qmotto.sampling import samplers as samplers_lib
from qmotto.train import data
from qmotto.train import sft

STYLE = "compact"
LOG_NAME = "grpo_log.jsonl"
RESULT_KIND = "qmotto.grpo"
SUMMARY_NAME = "summary.json"  # the per-run rows (a list).
AGGREGATE_NAME = "summary_by_sampler.json"  # the per-(task, sampler) rows.
REWARDS = ("binary", "partial")
LOSS_AGGREGATIONS = ("sequence", "token_mean", "sequence_mean")
PROGRESS_BAR = ("auto", "on", "off")
BASELINE_SAMPLER = "iid"

# Fields whose change makes a checkpoint in the workdir a different run.
_RUN_FIELDS = (
    "seed", "sampler", "group_size", "batch_size", "num_steps", "temperature", "reward", "advantage",
    "baseline", "adv_eps", "clip_eps", "kl_coef", "loss_aggregation", "updates_per_batch", "learning_rate",
    "warmup_steps", "end_lr_fraction", "weight_decay", "grad_clip", "b1", "b2", "train_pool_size",
    "train_start", "init_checkpoint", "init_step", "model", "prompt_len", "max_new_tokens",
)

RewardFn = Callable[[Any, str], float]


class LossConfig(NamedTuple):
  """The objective's settings (hashable: a static jit argument).

  Attributes:
    clip_eps: the ratio is clipped to [1 - clip_eps, 1 + clip_eps].
    kl_coef: weight of the k3 KL estimate to the reference model (0: none).
    temperature: logits are divided by it (as when sampling).
    aggregation: one of LOSS_AGGREGATIONS.
  """

  clip_eps: float = 0.2
  kl_coef: float = 0.0
  temperature: float = 1.0
  aggregation: str = "sequence"


class Rollout(NamedTuple):
  """One batch of R = B * G completions, ready for the loss (a pytree).

  Attributes:
    tokens: int32[R, Lp + N] prompt + completion, contiguous, pad after.
    prompt_lengths: int32[R].
    mask: float32[R, N] 1 at the completion's tokens (EOS included).
    old_logprobs: float32[R, N] sampling-time log-probabilities (0 past the end).
    ref_logprobs: float32[R, N] the reference model's (zeros if kl_coef is 0).
    advantages: float32[R].
  """

  tokens: jax.Array
  prompt_lengths: jax.Array
  mask: jax.Array
  old_logprobs: jax.Array
  ref_logprobs: jax.Array
  advantages: jax.Array


# ---------------------------------------------------------------------------
# The loss and the train step.


def join_sequences(prompts: jax.Array, prompt_lengths: jax.Array, completions: jax.Array, pad_id) -> jax.Array:
  """Prompt + completion rows for teacher forcing.

  Args:
    prompts: int32[P, Lp] right-padded.
    prompt_lengths: int32[P].
    completions: int32[P, G, N] (`GenerateOutput.tokens`, pad after the end).
    pad_id: fills everything after the completion.

  Returns:
    int32[P * G, Lp + N]: row p * G + i is prompt p (its real tokens) followed
    by completion i of p, then padding.
  """
  p, lp = prompts.shape
  _, g, n = completions.shape
  j = jnp.arange(lp + n)[None, :]  # [1, L]
  length = prompt_lengths[:, None]  # [P, 1]
  prompt_part = jnp.take_along_axis(prompts, jnp.broadcast_to(jnp.minimum(j, lp - 1), (p, lp + n)), axis=1)
  index = jnp.broadcast_to(jnp.clip(j - length, 0, n - 1)[:, None, :], (p, g, lp + n))
  completion_part = jnp.take_along_axis(completions, index, axis=2)  # [P, G, L]
  tokens = jnp.where(j < length, prompt_part, pad_id)[:, None, :]
  tokens = jnp.where((j >= length)[:, None, :] & ((j - length) < n)[:, None, :], completion_part, tokens)
  return tokens.reshape(p * g, lp + n).astype(jnp.int32)


def completion_logprobs(
    params, model_config: llama.LlamaConfig, tokens: jax.Array, prompt_lengths: jax.Array, num_new: int,
    temperature: float,
) -> tuple[jax.Array, jax.Array]:
  """Log-probabilities and entropies of the completion tokens by one teacher-forced pass.

  Args:
    params: the model's parameters.
    model_config: its LlamaConfig.
    tokens: int32[R, Lp + N] (`join_sequences`).
    prompt_lengths: int32[R].
    num_new: N.
    temperature: logits are divided by it.

  Returns:
    (logp float32[R, N], entropy float32[R, N]) of token prompt_length + t
    given everything before it, under softmax(logits / temperature).
  """
  logits, _ = llama.Llama(model_config).apply({"params": params}, tokens[:, :-1])  # [R, L - 1, V]
  at = prompt_lengths[:, None] - 1 + jnp.arange(num_new)[None, :]  # [R, N], positions that predict them.
  logits = jnp.take_along_axis(logits, at[..., None], axis=1) / temperature  # [R, N, V]
  targets = jnp.take_along_axis(tokens, at + 1, axis=1)  # [R, N]
  logp_all = jax.nn.log_softmax(logits)
  logp = jnp.take_along_axis(logp_all, targets[..., None], axis=-1)[..., 0]
  entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
  return logp, entropy


def _aggregate(values: jax.Array, mask: jax.Array, aggregation: str) -> jax.Array:
  total = values * mask
  if aggregation == "sequence":
    return jnp.sum(total) / mask.size
  if aggregation == "token_mean":
    return jnp.sum(total) / jnp.maximum(jnp.sum(mask), 1.0)
  return jnp.mean(jnp.sum(total, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1.0))  # sequence_mean.


def policy_loss(
    params, model_config: llama.LlamaConfig, rollout: Rollout, loss_config: LossConfig
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The clipped-ratio objective with an optional KL penalty (module docstring).

  Returns:
    (loss float32[], {"pg_loss", "kl", "entropy", "clip_fraction" (tokens whose
    clipped term is the active one), "ratio_dev" (max |ratio - 1| over
    tokens)}).
  """
  num_new = rollout.mask.shape[1]
  logp, entropy = completion_logprobs(
      params, model_config, rollout.tokens, rollout.prompt_lengths, num_new, loss_config.temperature
  )
  mask = rollout.mask
  log_ratio = jnp.where(mask > 0, logp - rollout.old_logprobs, 0.0)
  ratio = jnp.exp(log_ratio)
  adv = rollout.advantages[:, None]
  eps = loss_config.clip_eps
  unclipped, clipped = ratio * adv, jnp.clip(ratio, 1.0 - eps, 1.0 + eps) * adv
  objective = jnp.minimum(unclipped, clipped)
  pg_loss = _aggregate(-objective, mask, loss_config.aggregation)
  loss = pg_loss
  if loss_config.kl_coef:
    log_ref = jnp.where(mask > 0, rollout.ref_logprobs - logp, 0.0)
    kl = _aggregate(jnp.exp(log_ref) - log_ref - 1.0, mask, loss_config.aggregation)
    loss = loss + loss_config.kl_coef * kl
  else:
    kl = jnp.float32(0.0)
  tokens = jnp.maximum(jnp.sum(mask), 1.0)
  metrics = {
      "pg_loss": pg_loss,
      "kl": kl,
      "entropy": jnp.sum(entropy * mask) / tokens,
      "clip_fraction": jnp.sum((clipped < unclipped) * mask) / tokens,
      "ratio_dev": jnp.max(jnp.abs(ratio - 1.0) * mask),
  }
  return loss, metrics


def _global_norm(tree) -> jax.Array:
  return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


@functools.partial(jax.jit, static_argnames=("model_config", "opt", "loss_config"))
def train_step(
    state: sft.TrainState, rollout: Rollout, *, model_config: llama.LlamaConfig, opt: sft.OptimizerConfig,
    loss_config: LossConfig,
) -> tuple[sft.TrainState, dict[str, jax.Array]]:
  """One optax update on a rollout; state.step counts updates.

  Returns:
    (the next TrainState, {"loss", "grad_norm" (before clipping), "lr", and
    `policy_loss`'s metrics}).
  """
  (loss, metrics), grads = jax.value_and_grad(policy_loss, has_aux=True)(
      state.params, model_config, rollout, loss_config
  )
  updates, opt_state = sft.make_optimizer(opt).update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = {**metrics, "loss": loss, "grad_norm": _global_norm(grads), "lr": sft.learning_rate_schedule(opt)(state.step)}
  return sft.TrainState(state.step + 1, params, opt_state), metrics


@functools.partial(jax.jit, static_argnames=("model_config", "temperature", "with_reference"))
def make_rollout(
    ref_params, prompts: jax.Array, prompt_lengths: jax.Array, output: decode.GenerateOutput,
    advantages: jax.Array, pad_id: jax.Array, *, model_config: llama.LlamaConfig, temperature: float,
    with_reference: bool,
) -> Rollout:
  """The Rollout of one generate call and its advantages float[P, G] (reference log-probs if asked)."""
  p, g, n = output.tokens.shape
  tokens = join_sequences(prompts, prompt_lengths, output.tokens, pad_id)
  lengths = jnp.repeat(prompt_lengths, g)
  mask = (jnp.arange(n)[None, :] < output.lengths.reshape(p * g, 1)).astype(jnp.float32)
  old = output.logprobs.reshape(p * g, n)
  if with_reference:
    ref, _ = completion_logprobs(ref_params, model_config, tokens, lengths, n, temperature)
  else:
    ref = jnp.zeros_like(old)
  return Rollout(tokens, lengths, mask, old, ref * mask, advantages.reshape(p * g).astype(jnp.float32))


# ---------------------------------------------------------------------------
# Rewards and group statistics.


def task_reward_fn(task, kind: str = "binary") -> RewardFn:
  """reward(problem, text): `task.score_text` (compact), thresholded at PASS_SCORE for "binary"."""
  if kind not in REWARDS:
    raise ValueError(f"config.reward must be one of {REWARDS}, got {kind!r}.")
  from qmotto.tasks import PASS_SCORE  # pylint: disable=g-import-not-at-top

  if kind == "binary":
    return lambda problem, text: float(task.score_text(problem, text, STYLE) >= PASS_SCORE)
  return lambda problem, text: float(task.score_text(problem, text, STYLE))


def score_rewards(reward_fn: RewardFn, problems: Sequence[Any], texts: Sequence[Sequence[str]]) -> np.ndarray:
  """float32[P, G] rewards of every completion.

  Raises:
    ValueError: the reward function raised, or returned something that is not
      a finite number; the message names the problem, the sample and its text.
  """
  rows = []
  for row, (problem, group) in enumerate(zip(problems, texts)):
    where = f"problem {getattr(problem, 'index', row)} (row {row} of the batch)"
    values = []
    for i, text in enumerate(group):
      try:
        value = reward_fn(problem, text)
      except Exception as e:  # pylint: disable=broad-except
        raise ValueError(
            f"the reward function raised {type(e).__name__}: {e} on {where}, sample {i}, completion {text!r}."
        ) from e
      try:
        value = float(value)
      except (TypeError, ValueError) as e:
        raise ValueError(
            f"the reward function returned {value!r} (not a number) on {where}, sample {i}, completion {text!r}."
        ) from e
      if not math.isfinite(value):
        raise ValueError(
            f"the reward function returned {value} on {where}, sample {i}, completion {text!r}; rewards "
            "must be finite numbers."
        )
      values.append(value)
    rows.append(values)
  return np.asarray(rows, np.float32)


def distinct_per_group(texts: Sequence[Sequence[str]]) -> float:
  """Mean number of distinct completions per group."""
  return float(np.mean([len(set(group)) for group in texts]))


def steps_to_target(records: Sequence[dict], target: float, metric: str = "pass@1") -> int | None:
  """The first eval step whose `metric` reaches `target` (None if never)."""
  for record in sorted((r for r in records if r.get("kind") == "eval"), key=lambda r: r["step"]):
    if record.get(metric) is not None and record[metric] >= target:
      return int(record["step"])
  return None


# ---------------------------------------------------------------------------
# Config.


def _is_int(x) -> bool:
  return not isinstance(x, bool) and isinstance(x, (int, np.integer))


def _is_real(x) -> bool:
  return not isinstance(x, bool) and isinstance(x, (int, float, np.integer, np.floating)) and math.isfinite(x)


REQUIRED = (
    "task", "task_options", "init_checkpoint", "init_step", "model", "prompt_len", "max_new_tokens", "seed",
    "sampler", "group_size", "batch_size", "temperature", "reward", "advantage", "baseline", "adv_eps", "clip_eps",
    "kl_coef", "loss_aggregation", "updates_per_batch", "num_steps", "learning_rate", "warmup_steps",
    "end_lr_fraction", "weight_decay", "grad_clip", "b1", "b2", "train_pool_size", "train_start", "checkpoint_every",
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
      ("eval_batch_size", 1), ("init_step", -1),
  ):
    value = config[name]
    if not _is_int(value) or value < minimum:
      raise ValueError(f"config.{name} must be an int >= {minimum}, got {value!r}.")
  if config.sampler not in samplers_lib.SAMPLERS:
    raise ValueError(f"config.sampler must be one of {tuple(samplers_lib.SAMPLERS)}, got {config.sampler!r}.")
  if config.advantage not in advantages_lib.ADVANTAGES:
    raise ValueError(f"config.advantage must be one of {advantages_lib.ADVANTAGES}, got {config.advantage!r}.")
  if not _is_real(config.baseline):
    raise ValueError(f"config.baseline must be a finite number (used by advantage 'fixed'), got {config.baseline!r}.")
  if not _is_int(config.group_size) or config.group_size < 2:
    raise ValueError(
        f"config.group_size must be an int >= 2 (advantages compare each sample with the rest of its group), "
        f"got {config.group_size!r}."
    )
  try:
    samplers_lib.get_sampler(config.sampler).check_group_size(int(config.group_size))
  except ValueError as e:
    raise ValueError(f"config.group_size={config.group_size} cannot be served by config.sampler="
                     f"{config.sampler!r}: {e}") from e
  if config.reward not in REWARDS:
    raise ValueError(f"config.reward must be one of {REWARDS}, got {config.reward!r}.")
  if config.loss_aggregation not in LOSS_AGGREGATIONS:
    raise ValueError(f"config.loss_aggregation must be one of {LOSS_AGGREGATIONS}, got {config.loss_aggregation!r}.")
  if config.progress_bar not in PROGRESS_BAR:
    raise ValueError(f"config.progress_bar must be one of {PROGRESS_BAR}, got {config.progress_bar!r}.")
  for name, low, strict in (
      ("temperature", 0.0, True), ("adv_eps", 0.0, False), ("clip_eps", 0.0, True), ("kl_coef", 0.0, False),
      ("learning_rate", 0.0, True), ("grad_clip", 0.0, True), ("weight_decay", 0.0, False),
      ("end_lr_fraction", 0.0, False), ("target", 0.0, False),
  ):
    value = config[name]
    if not _is_real(value) or value < low or (strict and value == low):
      raise ValueError(f"config.{name} must be a finite number {'>' if strict else '>='} {low:g}, got {value!r}.")
  for name in ("b1", "b2"):
    if not _is_real(config[name]) or not 0 <= config[name] < 1:
      raise ValueError(f"config.{name} must be in [0, 1), got {config[name]!r}.")
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


def run_keys(config) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(init key, sample key, eval key): key(config.seed) split once; steps fold in their index."""
  init_key, sample_key, eval_key = jax.random.split(jax.random.key(config.seed), 3)
  return init_key, sample_key, eval_key


def optimizer_config(config) -> sft.OptimizerConfig:
  """AdamW over num_steps * updates_per_batch updates (warmup counted in steps, too)."""
  u = config.updates_per_batch
  return sft.OptimizerConfig(
      learning_rate=float(config.learning_rate), warmup_steps=config.warmup_steps * u,
      num_steps=config.num_steps * u, end_lr_fraction=float(config.end_lr_fraction),
      weight_decay=float(config.weight_decay), grad_clip=float(config.grad_clip), b1=float(config.b1),
      b2=float(config.b2),
  )


def loss_config(config) -> LossConfig:
  return LossConfig(float(config.clip_eps), float(config.kl_coef), float(config.temperature), config.loss_aggregation)


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
    params = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), model.params)  # uncommitted, see sft._restore.
    return Policy(llama.Model(model.config, params), tokenizer, task, prompt_len, max_new,
                  {"checkpoint": os.path.abspath(path), "step": int(restored.step)})
  if task is None:
    options = config.task_options
    task = tasks_lib.get_task(config.task, **(options.to_dict() if hasattr(options, "to_dict") else dict(options)))
  tokenizer = data.task_tokenizer(task)
  m = config.model
  mconfig = llama.LlamaConfig(
      vocab_size=tokenizer.vocab_size, hidden_size=m.hidden_size, intermediate_size=m.intermediate_size,
      num_layers=m.num_layers, num_heads=m.num_heads, num_kv_heads=m.num_kv_heads,
      rope_theta=float(m.get("rope_theta", 10000.0)), tie_embeddings=bool(m.get("tie_embeddings", True)),
      max_seq_len=config.prompt_len + config.max_new_tokens,
  )
  params = llama.init_params(mconfig, run_keys(config)[0])
  return Policy(llama.Model(mconfig, params), tokenizer, task, config.prompt_len, config.max_new_tokens,
                {"checkpoint": "", "step": 0})


# ---------------------------------------------------------------------------
# Log and checkpoints.


def read_log(workdir: str) -> list[dict]:
  """The records of workdir/grpo_log.jsonl."""
  with open(os.path.join(workdir, LOG_NAME)) as f:
    return [json.loads(line) for line in f if line.strip()]


def _restore(workdir: str, state: sft.TrainState, policy: Policy, config, updates_per_batch: int):
  """(state, step, train_seconds, last eval) from the latest checkpoint in `workdir`."""
  restored = checkpoint_lib.restore_checkpoint(workdir, extra_target={"opt_state": state.opt_state})
  meta = restored.metadata or {}
  where = f"{workdir}: checkpoint {restored.step}"
  if restored.model.config != policy.model.config:
    raise ValueError(f"{where} holds a different model ({restored.model.config}); use a fresh workdir.")
  sft.check_same_run(where, meta, policy.task, meta.get("grpo_config", {}), config, _RUN_FIELDS)
  if restored.extra is None:
    raise ValueError(f"{where} has no optimizer state to resume from; use a fresh workdir.")
  fresh = lambda tree: jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), tree)  # noqa: E731
  step = int(restored.step)
  state = sft.TrainState(jnp.int32(step * updates_per_batch), fresh(restored.model.params),
                         fresh(restored.extra["opt_state"]))
  return state, step, float(meta.get("train_seconds", 0.0)), meta.get("eval")


class _Problems:
  """The training problems of each step: streamed from `start` or cycled over a pool there."""

  def __init__(self, task, batch_size: int, pool_size: int, start: int):
    self.task, self.batch_size, self.start = task, batch_size, start
    self.pool = task.problems("train", pool_size, start=start) if pool_size else None

  def __call__(self, step: int) -> list:
    if self.pool is None:
      return self.task.problems("train", self.batch_size, start=self.start + step * self.batch_size)
    rows = (step * self.batch_size + np.arange(self.batch_size)) % len(self.pool)
    return [self.pool[r] for r in rows]


def _progress_disable(setting: str):
  return {"auto": None, "on": False, "off": True}[setting]  # None: off when stderr is not a tty.


# ---------------------------------------------------------------------------
# Training.


def train(config, workdir: str | None = None, *, task=None, reward_fn: RewardFn | None = None) -> dict:
  """Trains (or resumes) a GRPO run; returns its final metrics.

  Args:
    config: an ml_collections config as in configs/grpo.py.
    workdir: checkpoints and the log (default config.workdir).
    task: a task object (default: the init checkpoint's, or
      `get_task(config.task, **config.task_options)`); tests pass synthetic ones.
    reward_fn: reward(problem, text) -> float (default `task_reward_fn(task,
      config.reward)`).

  Returns:
    {"task", "sampler", "seed", "step", the final `sft.evaluate` metrics,
    "steps_to_target" (config.target > 0, else None), "train_seconds" (wall
    time, summed over resumes), "seconds_per_step" (this process's steps,
    sampling + rewards + updates, without evaluations and checkpoints),
    "num_params", "init" ({"checkpoint", "step"} of the initial policy;
    "" and 0 for a random one), "workdir"}.

  Raises:
    ValueError: a bad config value (named), a reward function that raises or
      returns a non-finite value (naming the problem and the completion), or
      a checkpoint in `workdir` from a different run.
  """
  check_config(config)
  workdir = os.path.abspath(workdir or config.workdir)
  policy = initial_policy(config, task=task)
  task, tokenizer, mconfig = policy.task, policy.tokenizer, policy.model.config
  reward_fn = reward_fn or task_reward_fn(task, config.reward)
  opt, lconfig = optimizer_config(config), loss_config(config)
  group, num_new = int(config.group_size), policy.max_new_tokens
  _, sample_key, eval_key = run_keys(config)
  ref_params = policy.model.params
  state = sft.TrainState(jnp.int32(0), ref_params, sft.make_optimizer(opt).init(ref_params))

  clock = time.perf_counter()
  start, train_seconds, last_eval = 0, 0.0, None
  if checkpoint_lib.latest_checkpoint_step(workdir) is not None:
    state, start, train_seconds, last_eval = _restore(workdir, state, policy, config, config.updates_per_batch)
    logging.info("resumed %s from step %d", workdir, start)
  os.makedirs(workdir, exist_ok=True)
  log = files.JsonlLog(os.path.join(workdir, LOG_NAME), keep_through=start if start else -1)  # -1: a fresh log.
  eval_set = sft.make_eval_set(tokenizer, task, config.eval_problems, policy.prompt_len)
  problems_of = _Problems(task, config.batch_size, config.train_pool_size, config.train_start)
  pad = jnp.int32(tokenizer.pad_id)

  def run_eval(step: int) -> dict:
    result = sft.evaluate(
        jax.random.fold_in(eval_key, step), llama.Model(mconfig, state.params), tokenizer, task, eval_set,
        max_new_tokens=num_new, num_samples=config.eval_samples, batch_size=config.eval_batch_size,
    )
    log.write({"kind": "eval", "step": step, **result})
    logging.info("step %d eval %s", step, result)
    return result

  def save(step: int) -> None:
    metadata = {
        "tokenizer": tokenizer.to_dict(), "task": task.to_dict(), "style": STYLE,
        "prompt_len": policy.prompt_len, "max_new_tokens": num_new, "grpo_config": config.to_dict(),
        "init": policy.init, "train_seconds": train_seconds, "eval": last_eval,
    }
    checkpoint_lib.save_checkpoint(
        workdir, llama.Model(mconfig, state.params), step, extra={"opt_state": state.opt_state},
        metadata=files.to_jsonable(metadata), max_to_keep=config.max_to_keep,
    )

  if start == 0 and config.eval_every:
    last_eval = run_eval(0)
  step_seconds = []
  if start < config.num_steps:
    bar = tqdm.tqdm(
        total=config.num_steps, initial=start, desc=f"grpo {getattr(task, 'name', '')} {config.sampler}",
        disable=_progress_disable(config.progress_bar), dynamic_ncols=True, mininterval=1.0,
    )
    window = []
    try:
      for step in range(start, config.num_steps):
        t0 = time.perf_counter()
        problems = problems_of(step)
        prompts, lengths = prompting.encode_prompts(
            tokenizer, task, problems, STYLE, length=policy.prompt_len, pad_id=tokenizer.pad_id
        )
        out = decode.generate(
            jax.random.fold_in(sample_key, step), llama.Model(mconfig, state.params), prompts, lengths,
            num_samples=group, max_new_tokens=num_new,
            sampling=sampling.SamplingOptions.create(config.sampler, temperature=float(config.temperature)),
            eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id,
        )
        tokens, out_lengths = np.asarray(out.tokens), np.asarray(out.lengths)
        t1 = time.perf_counter()
        texts = prompting.decode_completions(tokenizer, tokens, out_lengths)
        rewards = score_rewards(reward_fn, problems, texts)
        adv = advantages_lib.advantages(
            rewards, config.advantage, eps=float(config.adv_eps),
            baseline=float(config.baseline) if config.advantage == "fixed" else None,
        )
        t2 = time.perf_counter()
        rollout = make_rollout(
            ref_params, jnp.asarray(prompts), jnp.asarray(lengths), out, adv, pad, model_config=mconfig,
            temperature=float(config.temperature), with_reference=bool(config.kl_coef),
        )
        first = None
        for _ in range(config.updates_per_batch):
          state, metrics = train_step(state, rollout, model_config=mconfig, opt=opt, loss_config=lconfig)
          first = first or metrics
        metrics = jax.device_get({**metrics, "ratio_dev": first["ratio_dev"]})  # the first update's: ~0.
        t3 = time.perf_counter()
        step_seconds.append(t3 - t0)
        last = np.take_along_axis(tokens, np.maximum(out_lengths - 1, 0)[..., None], axis=-1)[..., 0]
        window.append({
            "reward": float(rewards.mean()),
            "zero_variance": float(advantages_lib.zero_variance_fraction(rewards)),
            "distinct": distinct_per_group(texts),
            "length": float(out_lengths.mean()),
            "no_eos": float(1.0 - np.mean((out_lengths > 0) & (last == tokenizer.eos_id))),
            **{k: float(v) for k, v in metrics.items()},
            "sample_s": t1 - t0, "reward_s": t2 - t1, "update_s": t3 - t2,
        })
        done = step + 1
        bar.update(1)
        final = done == config.num_steps
        if done % config.log_every == 0 or final:
          record = {"kind": "train", "step": done}
          record.update({k: float(np.mean([w[k] for w in window])) for k in window[0]})
          log.write(record)
          bar.set_postfix(reward=f"{record['reward']:.3f}", zero_var=f"{record['zero_variance']:.2f}", refresh=False)
          window = []
        if config.eval_every and (final or done % config.eval_every == 0):
          last_eval = run_eval(done)
        if final or done % config.checkpoint_every == 0:
          now = time.perf_counter()
          train_seconds += now - clock
          clock = now
          save(done)
    finally:
      bar.close()
  elif last_eval is None and config.eval_every:
    last_eval = run_eval(config.num_steps)

  records = log.records()
  reached = steps_to_target(records, config.target, config.target_metric) if config.target > 0 else None
  return {
      "task": getattr(task, "name", None),
      "sampler": config.sampler,
      "seed": config.seed,
      "step": config.num_steps,
      **(last_eval or {}),
      "steps_to_target": reached,
      "train_seconds": train_seconds,
      "seconds_per_step": float(np.mean(step_seconds)) if step_seconds else None,
      "num_params": sft.num_params(state.params),
      "init": policy.init,
      "workdir": workdir,
  }


# ---------------------------------------------------------------------------
# Results, summary, plots.


def result_name(task: str, sampler: str, seed: int) -> str:
  return f"{task}_{sampler}_seed{seed}"


_atomic_write_json = files.write_json


def run(config, *, command: str = "", task=None, reward_fn: RewardFn | None = None) -> dict:
  """`train`, then <output_dir>/<task>_<sampler>_seed<seed>.json (+ .png) and the summary (+ .png).

  The result file holds the final metrics, the whole log, the config and the
  command; the summary is rebuilt from every result file in output_dir
  (`build_summary`, `write_summary`).
  """
  metrics = train(config, task=task, reward_fn=reward_fn)
  records = read_log(metrics["workdir"])
  result = {
      "kind": RESULT_KIND,
      "task": metrics["task"],
      "sampler": config.sampler,
      "seed": config.seed,
      "metrics": metrics,
      "log": records,
      "command": command,
      "config": config.to_dict(),
  }
  name = result_name(metrics["task"], config.sampler, config.seed)
  path = os.path.join(config.output_dir, name + ".json")
  _atomic_write_json(result, path)
  paths = {"result": path}
  paths.update(write_summary(build_summary(config.output_dir), config.output_dir))
  if config.plot:
    paths["plot"] = os.path.join(config.output_dir, name + ".png")
    save_figure(figure_runs([result]), paths["plot"])
    runs = [r for r in load_results(config.output_dir) if r["task"] == metrics["task"]]
    paths["summary_plot"] = os.path.join(config.output_dir, f"summary_{metrics['task']}.png")
    save_figure(figure_runs(runs, title=f"GRPO {metrics['task']}: {len(runs)} runs"), paths["summary_plot"])
  result["paths"] = paths
  return result


def load_results(output_dirs: str | Sequence[str]) -> list[dict]:
  """Every GRPO result file in one folder or several, sorted by (task, sampler, seed).

  Each result gets "results_dir", the folder it was read from.

  Raises:
    ValueError: two folders hold a result of the same (task, sampler, seed).
  """
  dirs = [output_dirs] if isinstance(output_dirs, str) else list(output_dirs)
  results, seen = [], {}
  for directory in dirs:
    for path, result in files.load_results(directory, RESULT_KIND, skip=(SUMMARY_NAME, AGGREGATE_NAME)):
      run = (result["task"], result["sampler"], result["seed"])
      if run in seen:
        raise ValueError(f"{path} and {seen[run]} are both results of (task, sampler, seed) = {run}.")
      seen[run] = path
      results.append({**result, "results_dir": directory})
  return sorted(results, key=lambda r: (r["task"], r["sampler"], r["seed"]))


def _final_metric(result: dict, metric: str):
  evals = [r for r in result["log"] if r.get("kind") == "eval"]
  return evals[-1].get(metric) if evals else None


def _mean_metric(result: dict, metric: str):
  """The mean of `metric` over the evaluations after step 0 (an area under the learning curve)."""
  values = [r[metric] for r in result["log"] if r.get("kind") == "eval" and r["step"] > 0 and r.get(metric) is not None]
  return float(np.mean(values)) if values else None


def _t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
  import scipy.stats  # pylint: disable=g-import-not-at-top

  values = np.asarray(values, np.float64)
  mean = float(values.mean())
  if len(values) < 2:
    return mean, float("nan"), float("nan")
  half = float(scipy.stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
  return mean, mean - half, mean + half


def build_summary(output_dirs: str | Sequence[str]) -> dict:
  """Steps to a target held-out metric per (task, sampler, seed), and per (task, sampler) with intervals.

  `output_dirs`: one results folder or several (`load_results`), e.g. one
  experiment per task family.

  The target of a task is its runs' `config.target` when > 0; otherwise the
  mean final `target_metric` of its i.i.d. runs (the paper's question: how
  many steps does a sampler need to reach the accuracy i.i.d. GRPO ends
  with). A run that never reaches it has steps_to_target null.

  Returns:
    {"rows": [{"task", "sampler", "seed", "steps_to_target", "target",
    "target_metric", "final", "mean_eval" (mean of the metric over the
    evaluations after step 0), "num_steps", "eval_every", "zero_variance"
    (mean over the run), "distinct" (mean), "init_checkpoint", "init_step"
    (the starting policy), "results_dir"}], "aggregate": [{"task",
    "sampler", "seeds", "reached", "mean_steps", "ci_low", "ci_high"
    (t-interval over seeds; unreached runs count as num_steps, a lower
    bound, and "censored" says how many), "final" and "mean_eval"
    ({"mean", "ci_low", "ci_high"} over seeds), "zero_variance",
    "distinct", "steps_saved_vs_iid" (1 - mean steps / i.i.d. mean
    steps), "paired_vs_iid" (None for i.i.d.; else over the seeds both
    samplers ran, which share prompts and evaluation keys: {"seeds",
    "steps_diff", "mean_eval_diff"}, each {"mean", "ci_low", "ci_high"} of
    sampler minus i.i.d.)}]}.
  """
  results = load_results(output_dirs)
  rows = []
  for task in sorted({r["task"] for r in results}):
    runs = [r for r in results if r["task"] == task]
    metric = runs[0]["config"].get("target_metric", "pass@1")
    target = float(runs[0]["config"].get("target", 0.0))
    if target <= 0:
      finals = [_final_metric(r, metric) for r in runs if r["sampler"] == BASELINE_SAMPLER]
      finals = [x for x in finals if x is not None]
      target = float(np.mean(finals)) if finals else None
    if len({(r["config"].get("target", 0.0), r["config"].get("target_metric", "pass@1")) for r in runs}) > 1:
      raise ValueError(f"the {task} runs were given different config.target / target_metric values.")
    for r in runs:
      train_records = [x for x in r["log"] if x.get("kind") == "train"]
      rows.append({
          "task": task, "sampler": r["sampler"], "seed": r["seed"],
          "steps_to_target": steps_to_target(r["log"], target, metric) if target is not None else None,
          "target": target, "target_metric": metric, "final": _final_metric(r, metric),
          "mean_eval": _mean_metric(r, metric),
          "num_steps": r["config"]["num_steps"], "eval_every": r["config"]["eval_every"],
          "zero_variance": float(np.mean([x["zero_variance"] for x in train_records])) if train_records else None,
          "distinct": float(np.mean([x["distinct"] for x in train_records])) if train_records else None,
          "init_checkpoint": r["config"].get("init_checkpoint"),
          "init_step": r.get("metrics", {}).get("init", {}).get("step", r["config"].get("init_step")),
          "results_dir": r["results_dir"],
      })
  aggregate = []
  for task, sampler in sorted({(r["task"], r["sampler"]) for r in rows}):
    group = [r for r in rows if r["task"] == task and r["sampler"] == sampler]
    steps = [r["steps_to_target"] if r["steps_to_target"] is not None else r["num_steps"] for r in group]
    mean, low, high = _t_interval(steps)
    finals = [r["final"] for r in group if r["final"] is not None]
    curves = [r["mean_eval"] for r in group if r["mean_eval"] is not None]
    aggregate.append({
        "task": task, "sampler": sampler, "seeds": len(group),
        "reached": sum(r["steps_to_target"] is not None for r in group),
        "censored": sum(r["steps_to_target"] is None for r in group),
        "mean_steps": mean, "ci_low": low, "ci_high": high,
        "final": dict(zip(("mean", "ci_low", "ci_high"), _t_interval(finals))) if finals else None,
        "mean_eval": dict(zip(("mean", "ci_low", "ci_high"), _t_interval(curves))) if curves else None,
        "zero_variance": float(np.mean([r["zero_variance"] for r in group if r["zero_variance"] is not None] or [np.nan])),
        "distinct": float(np.mean([r["distinct"] for r in group if r["distinct"] is not None] or [np.nan])),
    })
  for a in aggregate:
    iid = [b for b in aggregate if b["task"] == a["task"] and b["sampler"] == BASELINE_SAMPLER]
    a["steps_saved_vs_iid"] = (1.0 - a["mean_steps"] / iid[0]["mean_steps"]) if iid and iid[0]["mean_steps"] else None
    a["paired_vs_iid"] = _paired_vs_iid(rows, a["task"], a["sampler"])
  return {"rows": rows, "aggregate": aggregate}


def _paired_vs_iid(rows: Sequence[dict], task: str, sampler: str) -> dict | None:
  """Per-seed differences sampler - i.i.d. over the seeds both ran (same prompts and eval keys).

  Steps of unreached runs count as num_steps, as in the aggregate.
  """
  if sampler == BASELINE_SAMPLER:
    return None
  by_seed = lambda name: {r["seed"]: r for r in rows if r["task"] == task and r["sampler"] == name}  # noqa: E731
  mine, iid = by_seed(sampler), by_seed(BASELINE_SAMPLER)
  seeds = sorted(set(mine) & set(iid))
  if not seeds:
    return None
  steps = lambda r: r["num_steps"] if r["steps_to_target"] is None else r["steps_to_target"]  # noqa: E731
  interval = lambda values: dict(zip(("mean", "ci_low", "ci_high"), _t_interval(values)))  # noqa: E731
  paired = {"seeds": len(seeds), "steps_diff": interval([steps(mine[s]) - steps(iid[s]) for s in seeds])}
  curves = [(mine[s]["mean_eval"], iid[s]["mean_eval"]) for s in seeds]
  if all(a is not None and b is not None for a, b in curves):
    paired["mean_eval_diff"] = interval([a - b for a, b in curves])
  return paired


def write_summary(summary: dict, output_dir: str) -> dict[str, str]:
  """Writes `build_summary`'s rows to output_dir/summary.json (a list, one row per run) and its
  aggregate to output_dir/summary_by_sampler.json; returns {"summary", "summary_by_sampler"} paths."""
  paths = {"summary": os.path.join(output_dir, SUMMARY_NAME), "summary_by_sampler": os.path.join(output_dir, AGGREGATE_NAME)}
  _atomic_write_json(summary["rows"], paths["summary"])
  _atomic_write_json(summary["aggregate"], paths["summary_by_sampler"])
  return paths


def format_summary(summary: dict) -> str:
  """The aggregate rows as a table ("paired diff": steps minus i.i.d.'s, per seed)."""
  lines = [f"{'task':<12} {'sampler':<11} {'seeds':>5} {'reached':>7} {'steps (95% CI)':>24} {'saved':>7} "
           f"{'paired diff (95% CI)':>22} {'final':>6} {'mean eval':>9} {'zero-var':>8} {'distinct':>8}"]
  for a in summary["aggregate"]:
    saved = "-" if a["steps_saved_vs_iid"] is None else f"{a['steps_saved_vs_iid']:+.0%}"
    diff = (a.get("paired_vs_iid") or {}).get("steps_diff")
    diff = "-" if diff is None else f"{diff['mean']:+.1f} [{diff['ci_low']:+.1f}, {diff['ci_high']:+.1f}]"
    lines.append(
        f"{a['task']:<12} {a['sampler']:<11} {a['seeds']:>5} {a['reached']:>7} "
        f"{a['mean_steps']:>8.1f} [{a['ci_low']:>6.1f}, {a['ci_high']:>6.1f}] {saved:>7} {diff:>22} "
        f"{_fmt(a['final']):>6} {_fmt(a['mean_eval']):>9} {a['zero_variance']:>8.3f} {a['distinct']:>8.2f}"
    )
  return "\n".join(lines)


def _fmt(interval) -> str:
  return "-" if interval is None else f"{interval['mean']:.3f}"


PLOT_PANELS = (
    ("train", "reward", "train reward (mean)"),
    ("eval", "pass@1", "held-out pass@1"),
    ("train", "zero_variance", "zero-variance groups"),
    ("train", "distinct", "distinct completions / group"),
)


def figure_runs(results: Sequence[dict], *, title: str | None = None):
  """A 2x2 Figure of reward, held-out pass@1, zero-variance fraction and distinct per group vs step.

  One color per sampler: each run a thin line, the mean over a sampler's runs
  (where they share steps) a thick one.
  """
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  if not results:
    raise ValueError("results is empty: nothing to plot.")
  fig = Figure(figsize=(10, 7), layout="constrained")
  axes = fig.subplots(2, 2).ravel()
  samplers = sorted({r["sampler"] for r in results})
  colors = {s: f"C{i}" for i, s in enumerate(samplers)}
  for ax, (kind, field, label) in zip(axes, PLOT_PANELS):
    for sampler in samplers:
      curves = []
      runs = [r for r in results if r["sampler"] == sampler]
      for r in runs:
        points = [(x["step"], x[field]) for x in r["log"] if x.get("kind") == kind and x.get(field) is not None]
        if points:
          steps, values = zip(*points)
          curves.append(dict(zip(steps, values)))
          ax.plot(steps, values, color=colors[sampler], alpha=0.3 if len(runs) > 1 else 1.0, lw=0.8)
      common = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
      if len(curves) > 1 and common:
        ax.plot(common, [np.mean([c[s] for c in curves]) for s in common], color=colors[sampler], lw=2,
                label=f"{sampler} (mean of {len(curves)})")
      elif curves:
        ax.plot([], [], color=colors[sampler], label=sampler)
    ax.set_xlabel("step")
    ax.set_title(label)
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=8)
  if title is None:
    r = results[0]
    title = f"GRPO {r['task']} / {r['sampler']} seed {r['seed']}" if len(results) == 1 else f"GRPO {r['task']}"
  fig.suptitle(title)
  return fig


def save_figure(fig, path: str) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=110)
