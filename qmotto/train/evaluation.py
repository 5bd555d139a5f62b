"""Held-out evaluation of a task model, shared by the SFT and GRPO trainers.

    eval_set = make_eval_set(tokenizer, task, num_problems=64, prompt_len=32)
    metrics = evaluate(key, model, tokenizer, task, eval_set, max_new_tokens=48, num_samples=8, batch_size=64)

    # In a train loop: one run's evaluation, its key folded with the step.
    evaluator = Evaluator(eval_key, model_config, tokenizer, task, eval_set, max_new_tokens=48,
                          num_samples=8, batch_size=64)
    log_evaluation(log, step, evaluator(step, state.params))

Greedy accuracy and pass@k of i.i.d. samples at temperature 1 on the first
test problems of the task, in the compact format (`data.STYLE`). Shapes are
fixed (prompts padded to prompt_len, chunks of batch_size problems), so each
of the two samplers (greedy, i.i.d.) compiles once per model shape.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np
from absl import logging

from qmotto import decode
from qmotto import metrics as metrics_lib
from qmotto import sampling
from qmotto.models import llama
from qmotto.tasks import prompting
from qmotto.train import data
from qmotto.utils import run_log


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


def make_eval_set(tokenizer, task, num_problems: int, prompt_len: int) -> EvalSet:
  """The first `num_problems` test problems, prompts padded to `prompt_len`."""
  return problem_set(tokenizer, task, task.problems("test", num_problems, start=0), prompt_len)


def problem_set(tokenizer, task, problems: list, prompt_len: int) -> EvalSet:
  """Any problems of `task` with their compact prompts padded to `prompt_len`."""
  try:
    prompts, lengths = prompting.encode_prompts(
        tokenizer, task, problems, data.STYLE, length=prompt_len, pad_id=tokenizer.pad_id
    )
  except ValueError as e:
    raise ValueError(f"{e} Raise config.prompt_len.") from e
  return EvalSet(problems, prompts, lengths)


def generate_completions(key, model, eval_set: EvalSet, *, tokenizer, chunk: int, num_samples: int,
                         max_new_tokens: int, sampling_options: sampling.SamplingOptions):
  """Completion texts [P][k] and an EOS flag bool[P, k]; fixed-shape chunks of problems (group id = row)."""
  num = len(eval_set.problems)
  texts, stopped = [], []
  for start in range(0, num, chunk):
    rows = np.arange(start, start + chunk)
    rows = np.where(rows < num, rows, start)  # pad the last chunk with a real prompt.
    out = decode.generate(
        key, model, eval_set.prompts[rows], eval_set.lengths[rows], num_samples=num_samples,
        max_new_tokens=max_new_tokens, sampling=sampling_options, eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id,
        group_ids=rows.astype(np.uint32),
    )
    real = min(chunk, num - start)
    texts += prompting.decode_completions(tokenizer, np.asarray(out.tokens)[:real], np.asarray(out.lengths)[:real])
    stopped.append(np.asarray(out.ended(tokenizer.eos_id))[:real])
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
  greedy, _ = generate_completions(
      greedy_key, model, eval_set, num_samples=1,
      sampling_options=sampling.SamplingOptions.create("iid", temperature=0.0), **common,
  )
  samples, stopped = generate_completions(
      sample_key, model, eval_set, num_samples=num_samples,
      sampling_options=sampling.SamplingOptions.create("iid", temperature=temperature), **common,
  )
  score = lambda problem, text: float(task.score_text(problem, text, data.STYLE))  # noqa: E731
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


class Evaluator(NamedTuple):
  """A training run's held-out evaluation: everything fixed but the parameters and the step.

  evaluator(step, params) is `evaluate` of the model with `params` and key
  fold_in(key, step), so a resumed run evaluates with the keys an
  uninterrupted one would have used.

  Attributes:
    key: the run's evaluation key.
    model_config: the LlamaConfig of the trained model.
    tokenizer: its tokenizer.
    task: the task.
    eval_set: the held-out problems (`make_eval_set`).
    max_new_tokens: completion tokens per sample.
    num_samples: samples per problem (pass@k up to k = num_samples).
    batch_size: problems per generate call.
  """

  key: jax.Array
  model_config: llama.LlamaConfig
  tokenizer: Any
  task: Any
  eval_set: EvalSet
  max_new_tokens: int
  num_samples: int
  batch_size: int

  def __call__(self, step: int, params) -> dict[str, float]:
    """`evaluate`'s metrics of the model with `params` after `step` steps."""
    return evaluate(
        jax.random.fold_in(self.key, step), llama.Model(self.model_config, params), self.tokenizer, self.task,
        self.eval_set, max_new_tokens=self.max_new_tokens, num_samples=self.num_samples,
        batch_size=self.batch_size,
    )


def log_evaluation(log: run_log.JsonlLog, step: int, result: dict[str, float]) -> None:
  """Writes {"kind": "eval", "step", **result} to the run's log (and the absl log)."""
  log.write({"kind": "eval", "step": step, **result})
  logging.info("step %d eval %s", step, result)
