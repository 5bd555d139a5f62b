"""Supervised training of the small character-level task models.

    from qmotto.train import sft
    metrics = sft.train(config, workdir)   # config: configs/train_task.py

`train` fits the project's Llama (`qmotto.models`) to one reasoning-gym task
family in its compact format (`qmotto.train.data`) with optax AdamW (linear
warmup, cosine decay, global-norm clipping), and keeps everything in
`workdir`:

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
                           "no_eos"}.

Resuming. `train` restarts from the latest checkpoint in `workdir`. The batch
of a step depends only on the step, the model's initialization only on
config.seed, and evaluation keys are fold_in(eval key, step), so a run
interrupted after a checkpoint and resumed ends with bit-identical parameters
(and log lines) to an uninterrupted one. Log lines written after the restored
checkpoint are dropped. On a finished workdir `train` only evaluates the final
checkpoint again (the same numbers; the log is left alone).

Shapes are fixed (batches padded to config.seq_len, evaluation prompts to
config.prompt_len, evaluation chunks to config.eval_batch_size problems), so
the train step compiles once and each evaluation sampler once (the tests
count the traces through `jax.monitoring`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging as std_logging
import math
import os
import time
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm
from absl import logging

from qmotto import decode
from qmotto import sampling
from qmotto.utils import files
from qmotto import metrics as metrics_lib
from qmotto.tasks import prompting
from qmotto.models import llama
from qmotto.models.loading import checkpoint as checkpoint_lib
from qmotto.train import data

PROGRESS_BAR = ("auto", "on", "off")
STYLE = "compact"
LOG_NAME = "train_log.jsonl"

# Fields whose change makes a checkpoint in the workdir a different run.
_RUN_FIELDS = (
    "seed", "batch_size", "seq_len", "num_steps", "learning_rate", "warmup_steps", "end_lr_fraction",
    "weight_decay", "grad_clip", "b1", "b2", "train_pool_size", "model",
)


class TrainState(NamedTuple):
  """What the train step carries (a pytree).

  Attributes:
    step: int32[] steps taken.
    params: the model's parameter tree.
    opt_state: the optax state.
  """

  step: jax.Array
  params: Any
  opt_state: Any


class EvalSet(NamedTuple):
  """Held-out problems and their prompts, padded to one shape.

  Attributes:
    problems: the test problems.
    prompts: int32[P, Lp] right-padded compact prompts (bos first).
    lengths: int32[P] prompt lengths.
  """

  problems: list
  prompts: np.ndarray
  lengths: np.ndarray


# ---------------------------------------------------------------------------
# Config.


def _is_int(x) -> bool:
  return not isinstance(x, bool) and isinstance(x, (int, np.integer))


def _is_real(x) -> bool:
  return not isinstance(x, bool) and isinstance(x, (int, float, np.integer, np.floating)) and math.isfinite(x)


def _require_int(config, name: str, minimum: int) -> None:
  value = config[name]
  if not _is_int(value) or value < minimum:
    raise ValueError(f"config.{name} must be an int >= {minimum}, got {value!r}.")


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
    _require_int(config, name, minimum)
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
    if not _is_real(config[name]) or config[name] <= 0:
      raise ValueError(f"config.{name} must be a finite number > 0, got {config[name]!r}.")
  for name in ("weight_decay", "end_lr_fraction"):
    if not _is_real(config[name]) or config[name] < 0:
      raise ValueError(f"config.{name} must be a finite number >= 0, got {config[name]!r}.")
  for name in ("b1", "b2"):
    if not _is_real(config[name]) or not 0 <= config[name] < 1:
      raise ValueError(f"config.{name} must be in [0, 1), got {config[name]!r}.")
  if config.progress_bar not in PROGRESS_BAR:
    raise ValueError(f"config.progress_bar must be one of {PROGRESS_BAR}, got {config.progress_bar!r}.")
  if not isinstance(config.workdir, str) or not config.workdir:
    raise ValueError(f"config.workdir must be a non-empty path, got {config.workdir!r}.")
  for name in ("hidden_size", "intermediate_size", "num_layers", "num_heads", "num_kv_heads"):
    if name not in config.model:
      raise ValueError(f"config.model lacks {name!r}.")


def model_config(config, vocab_size: int) -> llama.LlamaConfig:
  """The LlamaConfig of `config.model` for a vocabulary of `vocab_size` ids."""
  m = config.model
  try:
    return llama.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=m.hidden_size,
        intermediate_size=m.intermediate_size,
        num_layers=m.num_layers,
        num_heads=m.num_heads,
        num_kv_heads=m.num_kv_heads,
        rope_theta=float(m.get("rope_theta", 10000.0)),
        tie_embeddings=bool(m.get("tie_embeddings", True)),
        max_seq_len=max(config.seq_len, config.prompt_len + config.max_new_tokens),
    )
  except ValueError as e:
    raise ValueError(f"config.model: {e}") from e


class OptimizerConfig(NamedTuple):
  """The optimizer's hyperparameters (hashable: a static jit argument)."""

  learning_rate: float
  warmup_steps: int
  num_steps: int
  end_lr_fraction: float
  weight_decay: float
  grad_clip: float
  b1: float
  b2: float

  @classmethod
  def from_config(cls, config) -> "OptimizerConfig":
    return cls(*(config[name] for name in cls._fields))


def learning_rate_schedule(opt: OptimizerConfig) -> optax.Schedule:
  """Linear warmup to opt.learning_rate, then cosine decay to end_lr_fraction of it."""
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0,
      peak_value=opt.learning_rate,
      warmup_steps=opt.warmup_steps,
      decay_steps=opt.num_steps,
      end_value=opt.learning_rate * opt.end_lr_fraction,
  )


def make_optimizer(opt: OptimizerConfig) -> optax.GradientTransformation:
  """Global-norm clipping, then AdamW (weight decay on matrices only, not norms)."""
  return optax.chain(
      optax.clip_by_global_norm(opt.grad_clip),
      optax.adamw(
          learning_rate_schedule(opt),
          b1=opt.b1,
          b2=opt.b2,
          weight_decay=opt.weight_decay,
          mask=lambda params: jax.tree.map(lambda p: p.ndim >= 2, params),
      ),
  )


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


def _global_norm(tree) -> jax.Array:
  return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


@functools.partial(jax.jit, static_argnames=("model_config", "opt"))
def init_state(key: jax.Array, *, model_config: llama.LlamaConfig, opt: OptimizerConfig) -> TrainState:
  """Step 0: random parameters (`llama.init_params`) and a fresh optimizer state."""
  params = llama.Llama(model_config).init(key, jnp.zeros((1, 1), jnp.int32))["params"]
  return TrainState(jnp.int32(0), params, make_optimizer(opt).init(params))


@functools.partial(jax.jit, static_argnames=("model_config", "opt"))
def train_step(
    state: TrainState, tokens: jax.Array, target_mask: jax.Array, *, model_config: llama.LlamaConfig,
    opt: OptimizerConfig,
) -> tuple[TrainState, dict[str, jax.Array]]:
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
  updates, opt_state = make_optimizer(opt).update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  step_metrics = {"loss": loss, "grad_norm": _global_norm(grads), "lr": learning_rate_schedule(opt)(state.step)}
  return TrainState(state.step + 1, params, opt_state), step_metrics


# ---------------------------------------------------------------------------
# Evaluation.


def make_eval_set(tokenizer, task, num_problems: int, prompt_len: int) -> EvalSet:
  """The first `num_problems` test problems, prompts padded to `prompt_len`."""
  problems = task.problems("test", num_problems, start=0)
  try:
    prompts, lengths = prompting.encode_prompts(
        tokenizer, task, problems, STYLE, length=prompt_len, pad_id=tokenizer.pad_id
    )
  except ValueError as e:
    raise ValueError(f"{e} Raise config.prompt_len.") from e
  return EvalSet(problems, prompts, lengths)


def _generate_chunks(key, model, eval_set: EvalSet, *, chunk: int, tokenizer, **kwargs):
  """Completion texts [P][k] and an EOS flag bool[P, k]; fixed-shape chunks of problems."""
  num = len(eval_set.problems)
  texts, stopped = [], []
  for start in range(0, num, chunk):
    rows = np.arange(start, start + chunk)
    rows = np.where(rows < num, rows, start)  # pad the last chunk with a real prompt.
    out = decode.generate(
        key, model, eval_set.prompts[rows], eval_set.lengths[rows], group_ids=jnp.asarray(rows, jnp.uint32),
        eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id, **kwargs,
    )
    real = min(chunk, num - start)
    tokens, lengths = np.asarray(out.tokens)[:real], np.asarray(out.lengths)[:real]
    texts += prompting.decode_completions(tokenizer, tokens, lengths)
    last = np.take_along_axis(tokens, np.maximum(lengths - 1, 0)[..., None], axis=-1)[..., 0]
    stopped.append((lengths > 0) & (last == tokenizer.eos_id))
  return texts, np.concatenate(stopped)


def evaluate(
    key: jax.Array,
    model: llama.Model,
    tokenizer,
    task,
    eval_set: EvalSet,
    *,
    max_new_tokens: int,
    num_samples: int,
    batch_size: int,
    temperature: float = 1.0,
) -> dict[str, float]:
  """Held-out greedy accuracy and sampled pass@k (i.i.d. samples at `temperature`).

  A sample is correct when `task.score_text(problem, text, "compact")` is 1.

  Returns:
    {"greedy_accuracy", "pass@1", "pass@2", ... (powers of two <= num_samples,
    Chen's estimator), "mean_score" (of the samples), "distinct" (distinct
    completions per problem, averaged), "no_eos" (fraction of samples that
    hit max_new_tokens without EOS)}.
  """
  common = dict(chunk=batch_size, tokenizer=tokenizer, max_new_tokens=max_new_tokens)
  greedy_key, sample_key = jax.random.split(key)
  greedy, _ = _generate_chunks(
      greedy_key, model, eval_set, num_samples=1, sampling=sampling.SamplingOptions.create("iid", temperature=0.0),
      **common,
  )
  samples, stopped = _generate_chunks(
      sample_key, model, eval_set, num_samples=num_samples,
      sampling=sampling.SamplingOptions.create("iid", temperature=temperature), **common,
  )
  score = lambda problem, text: float(task.score_text(problem, text, STYLE))  # noqa: E731
  greedy_scores = np.array([score(p, row[0]) for p, row in zip(eval_set.problems, greedy)])
  scores = np.array([[score(p, t) for t in row] for p, row in zip(eval_set.problems, samples)])  # [P, k]
  correct = (scores >= 1.0).sum(-1)
  result = {"greedy_accuracy": float((greedy_scores >= 1.0).mean())}
  k = 1
  while k <= num_samples:
    result[f"pass@{k}"] = float(metrics_lib.chen_pass_at_k(num_samples, correct, k).mean())
    k *= 2
  result["mean_score"] = float(scores.mean())
  result["distinct"] = float(np.mean([len(set(row)) for row in samples]))
  result["no_eos"] = float(1.0 - stopped.mean())
  return result


# ---------------------------------------------------------------------------
# Checkpoints and the log.


def check_same_run(where: str, meta: dict, task, saved_config: dict, config, fields: Sequence[str]) -> None:
  """Raises ValueError if a checkpoint (metadata `meta`, its run's config `saved_config`) is of another run.

  Another run: another task, or other values of any of `fields` than `config`
  has. Shared by the SFT and GRPO resumes; `where` names the checkpoint.
  """
  if meta.get("task") != files.to_jsonable(task.to_dict()):
    raise ValueError(f"{where} was trained on task {meta.get('task')}, not {task.to_dict()}; use a fresh workdir.")
  wanted = files.to_jsonable(config.to_dict())
  changed = sorted(name for name in fields if saved_config.get(name) != wanted.get(name))
  if changed:
    raise ValueError(
        f"{where} was trained with other values of {changed} (saved {[saved_config.get(n) for n in changed]}, "
        f"config {[wanted.get(n) for n in changed]}); use a fresh workdir or the saved values."
    )


def _restore(workdir: str, state: TrainState, mconfig: llama.LlamaConfig, task, config):
  """(state, step, train_seconds, eval metrics) from the latest checkpoint in `workdir`."""
  restored = checkpoint_lib.restore_checkpoint(workdir, extra_target={"opt_state": state.opt_state})
  meta = restored.metadata or {}
  where = f"{workdir}: checkpoint {restored.step}"
  if dataclasses.replace(restored.model.config, max_seq_len=mconfig.max_seq_len) != mconfig:
    raise ValueError(f"{where} holds a different model ({restored.model.config}); use a fresh workdir.")
  check_same_run(where, meta, task, meta.get("train_config", {}), config, _RUN_FIELDS)
  # Host round trip: orbax returns committed arrays, which would compile the
  # train step and generate again for the same shapes.
  fresh = lambda tree: jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), tree)  # noqa: E731
  params = fresh(restored.model.params)
  if restored.extra is None:
    if restored.step < config.num_steps:
      raise ValueError(f"{where} has no optimizer state to resume from; use a fresh workdir.")
    opt_state = state.opt_state  # final checkpoint: nothing left to train.
  else:
    opt_state = fresh(restored.extra["opt_state"])
  state = TrainState(jnp.int32(restored.step), params, opt_state)
  return state, restored.step, float(meta.get("train_seconds", 0.0)), meta.get("eval")


def _progress_disable(setting: str):
  return {"auto": None, "on": False, "off": True}[setting]  # None: off when stderr is not a tty.


def num_params(params) -> int:
  return int(sum(np.prod(np.shape(x)) for x in jax.tree.leaves(params)))


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
    {"task", "step", "loss" (last logged), the final `evaluate` metrics,
    "train_seconds" (wall time of training, summed over resumes),
    "num_params", "workdir"}.

  Raises:
    ValueError: a bad config value (named), an example longer than
      config.seq_len, or a checkpoint in `workdir` from a different run.
  """
  check_config(config, need_task_name=task is None)
  workdir = os.path.abspath(workdir or config.workdir)
  if task is None:
    from qmotto import tasks  # pylint: disable=g-import-not-at-top

    task = tasks.get_task(config.task, **config.task_options.to_dict())
  tokenizer = data.task_tokenizer(task)
  mconfig = model_config(config, tokenizer.vocab_size)
  opt = OptimizerConfig.from_config(config)
  init_key, eval_key = jax.random.split(jax.random.key(config.seed))
  state = init_state(init_key, model_config=mconfig, opt=opt)

  clock = time.perf_counter()  # train_seconds: wall time, with compiles, data and evaluations.
  start, train_seconds, last_eval = 0, 0.0, None
  if checkpoint_lib.latest_checkpoint_step(workdir) is not None:
    state, start, train_seconds, last_eval = _restore(workdir, state, mconfig, task, config)
    logging.info("resumed %s from step %d", workdir, start)
  os.makedirs(workdir, exist_ok=True)
  log = files.JsonlLog(os.path.join(workdir, LOG_NAME), keep_through=start)
  eval_set = make_eval_set(tokenizer, task, config.eval_problems, config.prompt_len)

  def run_eval(step: int, record: bool = True) -> dict:
    result = evaluate(
        jax.random.fold_in(eval_key, step), llama.Model(mconfig, state.params), tokenizer, task, eval_set,
        max_new_tokens=config.max_new_tokens, num_samples=config.eval_samples,
        batch_size=config.eval_batch_size,
    )
    if record:
      log.write({"kind": "eval", "step": step, **result})
    logging.info("step %d eval %s", step, result)
    return result

  def save(step: int, final: bool) -> None:
    metadata = {
        "tokenizer": tokenizer.to_dict(),
        "task": task.to_dict(),
        "style": STYLE,
        "prompt_len": config.prompt_len,
        "max_new_tokens": config.max_new_tokens,
        "train_config": config.to_dict(),
        "train_seconds": train_seconds,
        "eval": last_eval,
    }
    checkpoint_lib.save_checkpoint(
        workdir, llama.Model(mconfig, state.params), step,
        extra=None if final else {"opt_state": state.opt_state},
        metadata=files.to_jsonable(metadata), max_to_keep=config.max_to_keep,
    )

  loss = None
  if start < config.num_steps:
    stream = data.BatchStream(
        task, tokenizer, batch_size=config.batch_size, seq_len=config.seq_len,
        pool_size=config.train_pool_size,
    )
    bar = tqdm.tqdm(
        total=config.num_steps, initial=start, desc=f"train {getattr(task, 'name', '')}",
        disable=_progress_disable(config.progress_bar), dynamic_ncols=True, mininterval=1.0,
    )
    window_losses, window_tokens = [], 0
    last_log = time.perf_counter()
    try:
      for step, batch in stream.iterate(start, config.num_steps):
        state, step_metrics = train_step(state, batch.tokens, batch.target_mask, model_config=mconfig, opt=opt)
        done = step + 1
        window_losses.append(step_metrics)
        window_tokens += int((batch.tokens != tokenizer.pad_id).sum())
        bar.update(1)
        if done % config.log_every == 0 or done == config.num_steps:
          host = jax.device_get(window_losses)
          loss = float(np.mean([m["loss"] for m in host]))
          now = time.perf_counter()
          record = {
              "kind": "train", "step": done, "loss": loss, "lr": float(host[-1]["lr"]),
              "grad_norm": float(np.mean([m["grad_norm"] for m in host])),
              "tokens_per_s": window_tokens / max(now - last_log, 1e-9),
          }
          log.write(record)
          bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
          window_losses, window_tokens, last_log = [], 0, now
        final = done == config.num_steps
        if final or (config.eval_every and done % config.eval_every == 0):
          last_eval = run_eval(done)
          bar.set_postfix(loss=f"{loss:.4f}" if loss is not None else "-", pass1=f"{last_eval['pass@1']:.3f}", refresh=False)
          last_log = time.perf_counter()  # evaluation time is not training throughput.
        if final or done % config.checkpoint_every == 0:
          now = time.perf_counter()
          train_seconds += now - clock
          clock = now
          save(done, final)
    finally:
      bar.close()
  else:
    # A finished run: evaluate its final checkpoint again (the same numbers;
    # the log is left as it is).
    last_eval = run_eval(config.num_steps, record=False)

  return {
      "task": getattr(task, "name", None),
      "step": config.num_steps,
      "loss": loss if loss is not None else log.last("train", "loss"),
      **last_eval,
      "train_seconds": train_seconds,
      "num_params": num_params(state.params),
      "workdir": workdir,
  }


write_json = files.write_json


class _DropOrbaxInfo(std_logging.Filter):

  def filter(self, record: std_logging.LogRecord) -> bool:
    return record.levelno > std_logging.INFO or f"{os.sep}orbax{os.sep}" not in record.pathname


def quiet_orbax_logs() -> None:
  """Drops orbax's INFO lines (several per checkpoint) from the absl log."""
  for handler in std_logging.getLogger().handlers + std_logging.getLogger("absl").handlers:
    handler.addFilter(_DropOrbaxInfo())


def _folder_bytes(path: str) -> int:
  return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def run(config, *, command: str = "") -> dict:
  """`train`, then writes config.output: the metrics, difficulty, config and command.

  The training log is copied beside it (config.output with .jsonl).
  """
  metrics = train(config)
  workdir = metrics.pop("workdir")  # an absolute path: not for the results file.
  result = {
      "task": config.task,
      "difficulty": config.task_options.to_dict(),
      "metrics": metrics,
      "checkpoint": os.path.relpath(workdir),
      "checkpoint_bytes": _folder_bytes(workdir),
      "command": command,
      "config": config.to_dict(),
  }
  write_json(result, config.output)
  with open(os.path.join(workdir, LOG_NAME)) as src:
    log_text = src.read()
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
