"""Supervised training of the small character-level task models.

    from qmotto.train import sft
    metrics = sft.train(config, workdir)   # config: configs/train_task.py

`train` fits the project's Llama (`qmotto.models`) to one reasoning-gym task
family in its compact format (`qmotto.train.data`) with optax AdamW (linear
warmup, cosine decay, global-norm clipping: `qmotto.train.state`), and keeps
everything in `workdir`:

  workdir/<step>/          orbax checkpoints (`save_checkpoint`): params, the
                           optimizer state, and metadata {"tokenizer", "task",
                           "style", "prompt_len", "max_new_tokens",
                           "train_config", "train_seconds", "eval"}; the final
                           one has no optimizer state (a few MB), and
                           `qmotto.load_model(workdir)` returns it with its
                           CharTokenizer.
  workdir/train_log.jsonl  one line per log interval {"kind": "train", "step",
                           "loss", "lr", "grad_norm", "tokens_per_s"} and per
                           evaluation {"kind": "eval", "step", "greedy_accuracy",
                           "pass@1", "pass@2", ..., "mean_score", "distinct",
                           "no_eos"} (`qmotto.train.evaluation`).

Each step: the batch of the step (`data.BatchStream`), one AdamW update
(`train_step`), and when due a train log line, a held-out evaluation, a
checkpoint.

Resuming. `train` restarts from the latest checkpoint in `workdir`. The batch
of a step depends only on the step, the model's initialization only on
config.seed, and evaluation keys are fold_in(eval key, step), so a run
interrupted after a checkpoint and resumed ends with bit-identical parameters
(and log lines) to an uninterrupted one. Log lines written after the restored
checkpoint are dropped. On a finished workdir `train` only evaluates the final
checkpoint again (the same numbers; the log is left alone).

One run per workdir: `train` checks that it can write workdir before
loading anything and holds its lock (`qmotto.utils.locks`) for the whole run;
a second run on it is refused at once, naming the first. Under the lock,
`.tmp-*` files left in workdir by a killed write are removed.

Shapes are fixed (batches padded to config.seq_len, evaluation prompts to
config.prompt_len, evaluation chunks to config.eval_batch_size problems), so
the train step compiles once and each evaluation sampler once (the tests
count the traces through `jax.monitoring`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from qmotto.models import llama
from qmotto.models.loading import checkpoint as checkpoint_lib
from qmotto.train import config_checks
from qmotto.train import data
from qmotto.train import evaluation
from qmotto.train import resume
from qmotto.train import state as state_lib
from qmotto.utils import files
from qmotto.utils import locks
from qmotto.utils import progress
from qmotto.utils import run_log

LOG_NAME = "train_log.jsonl"

# The config fields whose change makes a checkpoint in the workdir a different
# run (resuming from it is refused); the others (logging, evaluation,
# checkpoint intervals, paths) may change between resumes.
RUN_FIELDS = (
    "seed", "batch_size", "seq_len", "num_steps", "learning_rate", "warmup_steps", "end_lr_fraction",
    "weight_decay", "grad_clip", "b1", "b2", "train_pool_size", "model",
)


# ---------------------------------------------------------------------------
# Config.


def check_config(config, *, need_task_name: bool = True) -> None:
  """Raises ValueError naming the first config field that is missing or out of range."""
  required = (
      "task", "task_options", "seed", "model", "seq_len", "prompt_len", "max_new_tokens", "batch_size",
      "num_steps", "learning_rate", "warmup_steps", "end_lr_fraction", "weight_decay", "grad_clip", "b1",
      "b2", "train_pool_size", "checkpoint_every", "max_to_keep", "log_every", "eval_every",
      "eval_problems", "eval_samples", "eval_batch_size", "progress_bar", "workdir",
  )
  missing = [name for name in required if name not in config]
  if missing:
    raise ValueError(f"config lacks the fields {missing} (see configs/train_task.py).")
  if need_task_name:
    from qmotto import tasks  # pylint: disable=g-import-not-at-top

    if config.task not in tasks.FAMILIES:
      raise ValueError(f"config.task must be one of {tasks.FAMILIES}, got {config.task!r}.")
  for name, minimum in (
      ("seed", 0), ("seq_len", 2), ("prompt_len", 1), ("max_new_tokens", 1), ("batch_size", 1),
      ("num_steps", 1), ("warmup_steps", 0), ("train_pool_size", 0), ("checkpoint_every", 1),
      ("max_to_keep", 1), ("log_every", 1), ("eval_every", 0), ("eval_problems", 1), ("eval_samples", 1),
      ("eval_batch_size", 1),
  ):
    config_checks.require_int(config, name, minimum)
  if config.warmup_steps >= config.num_steps:
    raise ValueError(
        f"config.warmup_steps must be in [0, num_steps={config.num_steps}), got {config.warmup_steps}."
    )
  if config.train_pool_size and config.train_pool_size < config.batch_size:
    raise ValueError(
        f"config.train_pool_size must be 0 (stream fresh problems) or >= batch_size={config.batch_size}, "
        f"got {config.train_pool_size}."
    )
  for name in ("learning_rate", "grad_clip"):
    config_checks.require_float(config, name, 0.0, exclusive_minimum=True)
  for name in ("weight_decay", "end_lr_fraction"):
    config_checks.require_float(config, name, 0.0)
  for name in ("b1", "b2"):
    config_checks.require_fraction(config, name)
  progress.check_progress_bar(config.progress_bar)
  if not isinstance(config.workdir, str) or not config.workdir:
    raise ValueError(f"config.workdir must be a non-empty path, got {config.workdir!r}.")
  for name in ("hidden_size", "intermediate_size", "num_layers", "num_heads", "num_kv_heads"):
    if name not in config.model:
      raise ValueError(f"config.model lacks {name!r}.")


def _config_task(config):
  from qmotto import tasks  # pylint: disable=g-import-not-at-top

  return tasks.get_task(config.task, **config.task_options.to_dict())


# ---------------------------------------------------------------------------
# The train step.


def loss_fn(params, config: llama.LlamaConfig, tokens: jax.Array, target_mask: jax.Array) -> jax.Array:
  """Mean next-token cross-entropy over the target (and EOS) tokens.

  Args:
    params: the model's parameters.
    config: its LlamaConfig.
    tokens: int32[B, L].
    target_mask: float32[B, L], 1 at the tokens to predict.

  Returns:
    float32[] the loss.
  """
  logits, _ = llama.Llama(config).apply({"params": params}, tokens[:, :-1])  # [B, L-1, V]
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:])  # [B, L-1]
  weights = target_mask[:, 1:]  # position t predicts token t + 1.
  return jnp.sum(ce * weights) / jnp.maximum(jnp.sum(weights), 1.0)


@functools.partial(jax.jit, static_argnames=("model_config", "opt"))
def init_state(
    key: jax.Array, *, model_config: llama.LlamaConfig, opt: state_lib.OptimizerConfig
) -> state_lib.TrainState:
  """Step 0: random parameters (`llama.init_params`) and a fresh optimizer state."""
  params = llama.Llama(model_config).init(key, jnp.zeros((1, 1), jnp.int32))["params"]
  return state_lib.TrainState(jnp.int32(0), params, state_lib.make_optimizer(opt).init(params))


@functools.partial(jax.jit, static_argnames=("model_config", "opt"))
def train_step(
    state: state_lib.TrainState, tokens: jax.Array, target_mask: jax.Array, *, model_config: llama.LlamaConfig,
    opt: state_lib.OptimizerConfig,
) -> tuple[state_lib.TrainState, dict[str, jax.Array]]:
  """One AdamW step on a batch.

  Args:
    state: the TrainState before the step.
    tokens: int32[B, L] (`data.Batch.tokens`).
    target_mask: float32[B, L] (`data.Batch.target_mask`).
    model_config: the model's LlamaConfig (static).
    opt: the OptimizerConfig (static).

  Returns:
    (the next TrainState, {"loss", "grad_norm" (before clipping), "lr" (of this step)}).
  """
  loss, grads = jax.value_and_grad(loss_fn)(state.params, model_config, tokens, target_mask)
  updates, opt_state = state_lib.make_optimizer(opt).update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  step_metrics = {
      "loss": loss, "grad_norm": state_lib.global_norm(grads),
      "lr": state_lib.learning_rate_schedule(opt)(state.step),
  }
  return state_lib.TrainState(state.step + 1, params, opt_state), step_metrics


# ---------------------------------------------------------------------------
# The steps of the train loop besides the update: resume, log, evaluate, checkpoint.


def _resume(workdir: str, state: state_lib.TrainState, mconfig: llama.LlamaConfig, task, config) -> resume.Resumed:
  """Where the run continues: the latest checkpoint in `workdir`, or step 0 from `state` if none."""
  if checkpoint_lib.latest_checkpoint_step(workdir) is None:
    return resume.start_afresh(state)
  restored = checkpoint_lib.restore_checkpoint(workdir, extra_target={"opt_state": state.opt_state})
  meta = restored.metadata or {}
  where = f"{workdir}: checkpoint {restored.step}"
  if dataclasses.replace(restored.model.config, max_seq_len=mconfig.max_seq_len) != mconfig:
    raise ValueError(f"{where} holds a different model ({restored.model.config}); use a fresh workdir.")
  resume.check_same_run(where, meta, task, meta.get("train_config", {}), config, RUN_FIELDS)
  params = resume.uncommitted(restored.model.params)
  if restored.extra is None:
    if restored.step < config.num_steps:
      raise ValueError(f"{where} has no optimizer state to resume from; use a fresh workdir.")
    opt_state = state.opt_state  # final checkpoint: nothing left to train.
  else:
    opt_state = resume.uncommitted(restored.extra["opt_state"])
  logging.info("resumed %s from step %d", workdir, restored.step)
  return resume.Resumed(
      state_lib.TrainState(jnp.int32(restored.step), params, opt_state), restored.step,
      float(meta.get("train_seconds", 0.0)), meta.get("eval"),
  )


class _LogWindow:
  """The train steps since the last train log line: their metrics, tokens and start time."""

  def __init__(self):
    self.step_metrics, self.tokens, self.since = [], 0, time.perf_counter()

  def add(self, step_metrics: dict[str, jax.Array], batch: data.Batch, pad_id: int) -> None:
    self.step_metrics.append(step_metrics)
    self.tokens += int((batch.tokens != pad_id).sum())

  def restart_clock(self) -> None:
    """Evaluation time is not training throughput: tokens_per_s counts from now."""
    self.since = time.perf_counter()

  def record(self, step: int) -> dict:
    """The train log line of the window's steps (means, the last lr); starts a new window."""
    host = jax.device_get(self.step_metrics)
    loss = float(np.mean([m["loss"] for m in host]))
    now = time.perf_counter()
    record = {
        "kind": "train", "step": step, "loss": loss, "lr": float(host[-1]["lr"]),
        "grad_norm": float(np.mean([m["grad_norm"] for m in host])),
        "tokens_per_s": self.tokens / max(now - self.since, 1e-9),
    }
    self.step_metrics, self.tokens, self.since = [], 0, now
    return record


def _save(workdir: str, state: state_lib.TrainState, step: int, *, final: bool, model_config: llama.LlamaConfig,
          metadata: dict, max_to_keep: int) -> None:
  """A checkpoint of `state` at `step`; the final one without the optimizer state."""
  checkpoint_lib.save_checkpoint(
      workdir, llama.Model(model_config, state.params), step,
      extra=None if final else {"opt_state": state.opt_state},
      metadata=files.to_jsonable(metadata), max_to_keep=max_to_keep,
  )


def _metadata(config, tokenizer, task, train_seconds: float, last_eval: dict | None) -> dict:
  """What a checkpoint records beside the arrays (module docstring)."""
  return {
      "tokenizer": tokenizer.to_dict(),
      "task": task.to_dict(),
      "style": data.STYLE,
      "prompt_len": config.prompt_len,
      "max_new_tokens": config.max_new_tokens,
      "train_config": config.to_dict(),
      "train_seconds": train_seconds,
      "eval": last_eval,
  }


# ---------------------------------------------------------------------------
# Training.


def train(config, workdir: str | None = None, *, task=None) -> dict:
  """Trains (or resumes training of) a task model; returns the final metrics.

  Args:
    config: an ml_collections config as in configs/train_task.py.
    workdir: where checkpoints and the log go (default config.workdir).
    task: a task object (default `qmotto.tasks.get_task(config.task,
      **config.task_options)`); tests pass small synthetic tasks.

  Returns:
    {"task", "step", "loss" (last logged), the final `evaluation.evaluate`
    metrics, "train_seconds" (wall time of training, summed over resumes),
    "num_params", "workdir"}.

  Raises:
    ValueError: a bad config value (named), a workdir that cannot be
      written, an example longer than config.seq_len, or a checkpoint in
      `workdir` from a different run.
    qmotto.utils.locks.DirectoryInUse (a ValueError): another run holds
      `workdir`; the message names it.
  """
  check_config(config, need_task_name=task is None)
  name = "config.workdir" if workdir is None else "workdir"
  workdir = files.check_writable(workdir or config.workdir, name)  # before loading anything.
  with locks.hold_run_directory(workdir, name=name, run=f"sft {config.task}"):
    return _train(config, workdir, task)


def _train(config, workdir: str, task) -> dict:
  """`train`'s work, in a checked, writable and locked `workdir`."""
  task = _config_task(config) if task is None else task
  tokenizer = data.task_tokenizer(task)
  mconfig = data.task_model_config(
      config.model, tokenizer.vocab_size, max(config.seq_len, config.prompt_len + config.max_new_tokens)
  )
  opt = state_lib.OptimizerConfig.from_config(config)
  init_key, eval_key = jax.random.split(jax.random.key(config.seed))
  state = init_state(init_key, model_config=mconfig, opt=opt)

  clock = progress.Stopwatch()  # train_seconds: wall time, with compiles, data and evaluations.
  state, start, clock.seconds, last_eval = _resume(workdir, state, mconfig, task, config)
  os.makedirs(workdir, exist_ok=True)
  log = run_log.JsonlLog(os.path.join(workdir, LOG_NAME), keep_through=start)
  eval_set = evaluation.make_eval_set(tokenizer, task, config.eval_problems, config.prompt_len)
  evaluator = evaluation.Evaluator(
      eval_key, mconfig, tokenizer, task, eval_set, max_new_tokens=config.max_new_tokens,
      num_samples=config.eval_samples, batch_size=config.eval_batch_size,
  )
  save = functools.partial(_save, workdir, model_config=mconfig, max_to_keep=config.max_to_keep)

  loss = None
  if start < config.num_steps:
    stream = data.BatchStream(
        task, tokenizer, batch_size=config.batch_size, seq_len=config.seq_len, pool_size=config.train_pool_size,
    )
    window = _LogWindow()
    with progress.progress_bar(
        config.progress_bar, total=config.num_steps, initial=start, desc=f"train {getattr(task, 'name', '')}"
    ) as bar:
      for step, batch in stream.iterate(start, config.num_steps):
        state, step_metrics = train_step(state, batch.tokens, batch.target_mask, model_config=mconfig, opt=opt)
        window.add(step_metrics, batch, tokenizer.pad_id)
        bar.update(1)
        done = step + 1
        final = done == config.num_steps
        if final or done % config.log_every == 0:
          record = window.record(done)
          log.write(record)
          loss = record["loss"]
          bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if final or (config.eval_every and done % config.eval_every == 0):
          last_eval = evaluator(done, state.params)
          evaluation.log_evaluation(log, done, last_eval)
          bar.set_postfix(loss=f"{loss:.4f}" if loss is not None else "-", pass1=f"{last_eval['pass@1']:.3f}",
                          refresh=False)
          window.restart_clock()
        if final or done % config.checkpoint_every == 0:
          save(state, done, final=final, metadata=_metadata(config, tokenizer, task, clock.lap(), last_eval))
  else:
    # A finished run: evaluate its final checkpoint again (the same numbers;
    # the log is left as it is).
    last_eval = evaluator(config.num_steps, state.params)
    logging.info("step %d eval %s", config.num_steps, last_eval)

  return {
      "task": getattr(task, "name", None),
      "step": config.num_steps,
      "loss": loss if loss is not None else log.last("train", "loss"),
      **last_eval,
      "train_seconds": clock.seconds,
      "num_params": state_lib.num_params(state.params),
      "workdir": workdir,
  }


# ---------------------------------------------------------------------------
# The runner's result file.


def _folder_bytes(path: str) -> int:
  return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def run(config, *, command: str = "") -> dict:
  """`train`, then writes config.output: the metrics, difficulty, config and command.

  The training log is copied beside it (config.output with .jsonl). The
  folder of config.output is checked for writing before anything is loaded,
  and config.workdir is locked for the whole run.
  """
  check_config(config)
  if not isinstance(config.output, str) or not config.output:
    raise ValueError(f"config.output must be a non-empty path, got {config.output!r}.")
  files.check_writable(os.path.dirname(os.path.abspath(config.output)), "the folder of config.output")
  workdir = files.check_writable(config.workdir, "config.workdir")
  run_description = f"sft {config.task}" + (f": {command}" if command else "")
  with locks.hold_run_directory(workdir, name="config.workdir", run=run_description):
    metrics = _train(config, workdir, None)
    with open(os.path.join(workdir, LOG_NAME)) as src:
      log_text = src.read()
  metrics.pop("workdir")  # an absolute path: not for the results file.
  result = {
      "task": config.task,
      "difficulty": config.task_options.to_dict(),
      "metrics": metrics,
      "checkpoint": os.path.relpath(workdir),
      "checkpoint_bytes": _folder_bytes(workdir),
      "command": command,
      "config": config.to_dict(),
  }
  files.write_json(result, config.output)
  with open(os.path.splitext(config.output)[0] + ".jsonl", "w") as dst:
    dst.write(log_text)
  return result


def format_result(result: dict) -> str:
  """A few lines for the terminal."""
  m = result["metrics"]
  passk = "  ".join(f"{key} {value:.3f}" for key, value in m.items() if key.startswith("pass@"))
  return "\n".join([
      f"{result['task']} {result['difficulty']}: {m['num_params']:,} parameters, {m['step']} steps, "
      f"{m['train_seconds'] / 60:.1f} min, final loss {m['loss']:.4f}",
      f"held-out: greedy accuracy {m['greedy_accuracy']:.3f}  {passk}  distinct {m['distinct']:.2f}/"
      f"{result['config']['eval_samples']}  no-EOS {m['no_eos']:.3f}",
      f"checkpoint {result['checkpoint']} ({result['checkpoint_bytes'] / 1e6:.1f} MB)",
  ])
