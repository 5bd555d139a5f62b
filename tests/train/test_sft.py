"""Tests of the task-model trainer (qmotto.train): batches, the loss falls, one
compile, exact resume after an interruption, loadable checkpoints, config
errors, and the smoke config end to end (what the absl runner calls)."""

from __future__ import annotations

import json
import os
import shutil
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qmotto
from qmotto.tasks import prompting
from tests import tracing
from qmotto.models.loading import CharTokenizer
from qmotto.models.loading import checkpoint_steps
from qmotto.models.loading import load_model
from qmotto.models.loading import restore_checkpoint
from qmotto.train import data
from qmotto.train import sft
from qmotto.utils import locks
from tests.utils import lock_holder

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
from ..fakes import ReverseTask, override  # noqa: E402
from configs import train_task as train_task_config  # noqa: E402


TASK = ReverseTask()


def _config(**overrides):
  config = train_task_config.get_config("task=countdown,smoke=1")
  config.task = "reverse"
  config.task_options = {}
  config.seq_len, config.prompt_len, config.max_new_tokens = 12, 6, 6
  config.learning_rate = 1e-2
  config.eval_problems, config.eval_samples, config.eval_batch_size = 4, 4, 4
  return override(config, **overrides)


def _params(path):
  return restore_checkpoint(path).model.params


def _log(workdir):
  with open(os.path.join(workdir, sft.LOG_NAME)) as f:
    return [json.loads(line) for line in f]


def test_batches_mask_the_target_and_depend_only_on_the_step():
  tokenizer = data.task_tokenizer(TASK)
  stream = data.BatchStream(TASK, tokenizer, batch_size=3, seq_len=12)
  batch = stream.batch(2)
  problems = TASK.problems("train", 3, start=6)  # step 2 of batch 3: problems 6, 7, 8.
  for row, problem in enumerate(problems):
    ids = batch.tokens[row]
    assert tokenizer.decode(ids, skip_special_tokens=True) == problem.question + "=" + problem.answer
    assert ids[0] == tokenizer.bos_id
    masked = ids[batch.target_mask[row] == 1]
    assert tokenizer.decode(masked) == problem.answer + "<eos>"
  streamed = dict(stream.iterate(1, 4))  # built ahead in a thread: the same batches.
  np.testing.assert_array_equal(streamed[2].tokens, batch.tokens)
  pooled = data.BatchStream(TASK, tokenizer, batch_size=3, seq_len=12, pool_size=5)
  np.testing.assert_array_equal(pooled.batch(1).tokens, data.encode_batch(  # rows 3, 4, 0 of the pool.
      tokenizer, TASK, [TASK.problems("train", 1, start=i)[0] for i in (3, 4, 0)], 12).tokens)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """40 steps with evaluations at 20 and 40; records the trace counts."""
  workdir = str(tmp_path_factory.mktemp("trained"))
  with tracing.count_traces() as traces:
    # hidden_size=24: a model shape no other test compiles, so every trace is counted here.
    config = _config(num_steps=40, warmup_steps=4, log_every=10, eval_every=20, checkpoint_every=10,
                     batch_size=16, **{"model.hidden_size": 24, "model.intermediate_size": 48})
    metrics = sft.train(config, workdir, task=TASK)
  return dict(workdir=workdir, metrics=metrics, config=config, traces=traces)


def test_loss_decreases_and_log_is_complete(trained):
  log = _log(trained["workdir"])
  train_lines = [r for r in log if r["kind"] == "train"]
  assert [r["step"] for r in train_lines] == [10, 20, 30, 40]
  assert train_lines[-1]["loss"] < 0.8 * train_lines[0]["loss"], train_lines
  assert all(r["tokens_per_s"] > 0 and r["lr"] > 0 for r in train_lines)
  evals = [r for r in log if r["kind"] == "eval"]
  assert [r["step"] for r in evals] == [20, 40]
  for key in ("greedy_accuracy", "pass@1", "pass@2", "pass@4", "mean_score", "distinct", "no_eos"):
    assert 0 <= evals[-1][key] <= 4
    assert trained["metrics"][key] == evals[-1][key]
  assert trained["metrics"]["pass@1"] <= trained["metrics"]["pass@2"] <= trained["metrics"]["pass@4"]
  assert trained["metrics"]["step"] == 40 and trained["metrics"]["loss"] == train_lines[-1]["loss"]


def test_one_compile_for_training_and_for_each_eval_sampler(trained):
  assert trained["traces"]["train_step"] == 1, trained["traces"]
  # Greedy and sampled generate each traced once, although evaluation ran twice.
  assert trained["traces"]["generate_groups"] == 2, trained["traces"]


def test_final_checkpoint_loads_with_tokenizer_for_generate(trained):
  workdir, config = trained["workdir"], trained["config"]
  assert checkpoint_steps(workdir) == [40]  # max_to_keep=1: only the final step.
  restored = restore_checkpoint(workdir)
  assert restored.extra is None  # the final checkpoint has no optimizer state.
  meta = restored.metadata
  assert meta["task"] == TASK.to_dict() and meta["style"] == "compact"
  assert meta["max_new_tokens"] == config.max_new_tokens and meta["prompt_len"] == config.prompt_len
  assert meta["train_config"]["num_steps"] == 40 and meta["eval"]["pass@1"] == trained["metrics"]["pass@1"]
  model, tokenizer = load_model(workdir)
  assert isinstance(tokenizer, CharTokenizer) and tokenizer == data.task_tokenizer(TASK)
  prompting.check_vocabulary(model, tokenizer, TASK, "compact")
  problems = TASK.problems("test", 3)
  prompts, lengths = prompting.encode_prompts(
      tokenizer, TASK, problems, "compact", length=meta["prompt_len"], pad_id=tokenizer.pad_id)
  out = qmotto.generate(jax.random.key(0), model, prompts, lengths, num_samples=2,
                        max_new_tokens=meta["max_new_tokens"], sampling="lattice", eos_id=tokenizer.eos_id)
  texts = prompting.decode_completions(tokenizer, out.tokens, out.lengths)
  assert len(texts) == 3 and all(isinstance(t, str) for row in texts for t in row)


class _Interrupted(Exception):
  pass


def _resume_config(**overrides):
  settings = dict(num_steps=6, checkpoint_every=2, log_every=1, eval_every=3, eval_problems=2, eval_samples=2,
                  eval_batch_size=2)
  return _config(**{**settings, **overrides})


def _interrupted_and_whole_runs(config, tmp_path, monkeypatch):
  """(whole, resumed): a run straight through, and one interrupted after step 4 and resumed."""
  whole = str(tmp_path / "whole")
  sft.train(config, whole, task=TASK)

  resumed = str(tmp_path / "resumed")
  original = data.BatchStream.batch

  def interrupt(self, step):
    if step == 4:  # after the checkpoint of step 4, before step 5.
      raise _Interrupted()
    return original(self, step)

  monkeypatch.setattr(data.BatchStream, "batch", interrupt)
  with pytest.raises(_Interrupted):
    sft.train(config, resumed, task=TASK)
  assert checkpoint_steps(resumed) == [4]
  monkeypatch.setattr(data.BatchStream, "batch", original)
  (tmp_path / "resumed" / ".tmp-a1b2.json").write_text("{half")  # as a write killed mid-way leaves it.
  return whole, resumed


def test_resume_after_interruption_is_bit_identical(tmp_path, monkeypatch):
  config = _resume_config(**{"model.hidden_size": 40})  # a shape of its own: its traces are counted.
  with tracing.count_traces() as traces:
    whole, resumed = _interrupted_and_whole_runs(config, tmp_path, monkeypatch)
    metrics = sft.train(config, resumed, task=TASK)
    assert not [name for name in os.listdir(resumed) if name.startswith((".tmp", ".qmotto"))]

    a, b = _params(whole), _params(resumed)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    strip = lambda log: [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in log]  # noqa: E731
    assert strip(_log(whole)) == strip(_log(resumed))  # same lines, none lost, none doubled.
    assert metrics["step"] == 6

    # Running a finished workdir again only re-evaluates its final checkpoint.
    log = _log(resumed)
    again = sft.train(config, resumed, task=TASK)
  assert again["pass@1"] == metrics["pass@1"] and checkpoint_steps(resumed) == [6]
  assert _log(resumed) == log
  assert traces["train_step"] == 1  # one compile for both runs and the resume.


def test_resume_refuses_a_different_run(trained, tmp_path):
  workdir = str(tmp_path / "copy")
  shutil.copytree(trained["workdir"], workdir)
  other = trained["config"].copy_and_resolve_references()
  other.learning_rate = 1e-3
  with pytest.raises(ValueError, match="learning_rate"):
    sft.train(other, workdir, task=TASK)
  other = trained["config"].copy_and_resolve_references()
  other.model.num_layers = 2
  with pytest.raises(ValueError, match="different model"):
    sft.train(other, workdir, task=TASK)


def test_examples_longer_than_seq_len_are_rejected(tmp_path):
  with pytest.raises(ValueError, match="seq_len=8"):
    sft.train(_config(seq_len=8), str(tmp_path), task=TASK)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("num_steps", 0, "config.num_steps must be an int >= 1"),
        ("batch_size", 0, "config.batch_size must be an int >= 1"),
        ("warmup_steps", 99, r"config.warmup_steps must be in \[0, num_steps=6\)"),
        ("learning_rate", -1.0, "config.learning_rate"),
        ("b2", 1.0, r"config.b2 must be in \[0, 1\)"),
        ("progress_bar", "maybe", "config.progress_bar must be one of"),
        ("train_pool_size", 3, "config.train_pool_size"),
        ("model.num_heads", 3, "config.model"),
    ],
)
def test_bad_config_values_name_the_field(tmp_path, field, value, match):
  with pytest.raises(ValueError, match=match):
    sft.train(_config(**{field: value}), str(tmp_path), task=TASK)


def test_numbers_may_be_python_numpy_or_jax_scalars():
  config = _config()
  with config.ignore_type():  # a ConfigDict keeps each field's type; here it changes on purpose.
    config.seed, config.batch_size, config.num_steps = np.int64(1), jnp.int32(4), np.uint16(6)
    config.learning_rate, config.b1, config.weight_decay = jnp.float32(1e-3), np.float32(0.9), jnp.array(0.0)
  sft.check_config(config, need_task_name=False)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("num_steps", "6", "config.num_steps must be an int >= 1, got the string '6'"),
        ("seq_len", 12.0, "config.seq_len must be an int >= 2"),
        ("learning_rate", "1e-3", "config.learning_rate must be a finite float > 0.0, got the string"),
        ("grad_clip", float("inf"), "config.grad_clip must be a finite float"),
        ("b1", None, r"config.b1 must be a finite float in \[0.0, 1.0\], got None"),
    ],
)
def test_numbers_of_other_types_get_a_value_error_naming_the_field(field, value, match):
  config = _config()
  with config.ignore_type():
    config[field] = value
  with pytest.raises(ValueError, match=match):
    sft.check_config(config, need_task_name=False)


def test_a_second_run_on_the_workdir_is_refused_at_once_naming_the_first(tmp_path):
  workdir = str(tmp_path / "work")
  with lock_holder.held_by_another_process(workdir, run="sft reverse") as holder:
    refused = rf"workdir=.* in use by another run: pid {holder.pid} .*sft reverse"
    with pytest.raises(locks.DirectoryInUse, match=refused):
      sft.train(_config(), workdir, task=TASK)
  assert os.listdir(workdir) == [locks.LOCK_NAME]  # nothing trained.


def test_unwritable_paths_fail_before_training(tmp_path):
  (tmp_path / "file").write_text("in the way")
  with pytest.raises(ValueError, match=r"^workdir='.*file/work' is not a writable directory"):
    sft.train(_config(), str(tmp_path / "file" / "work"), task=TASK)
  pytest.importorskip("qmotto.tasks")
  config = train_task_config.get_config("task=countdown,smoke=1")
  config.workdir, config.output = str(tmp_path / "ckpt"), str(tmp_path / "file" / "countdown.json")
  with pytest.raises(ValueError, match=r"the folder of config.output='.*file' is not a writable directory"):
    sft.run(config)
  assert not os.path.exists(config.workdir)


def test_config_variants_and_bad_arguments():
  for task in train_task_config.TASKS:
    config = train_task_config.get_config(f"task={task}")
    sft.check_config(config, need_task_name=False)
    assert config.workdir == f"checkpoints/{task}" and config.output == f"results/train/{task}.json"
    assert config.task_options  # the difficulty settings live in the config.
    smoke = train_task_config.get_config(f"task={task},smoke=1")
    assert smoke.num_steps < config.num_steps and smoke.progress_bar == "off"
  for arg, match in [("", "task must be one of"), ("task=chess", "task must be one of"),
                     ("task=maze,size=3", "bad argument"), ("task=maze,smoke=2", "smoke must be 0 or 1")]:
    with pytest.raises(ValueError, match=match):
      train_task_config.get_config(arg)
  with pytest.raises(ValueError, match="config.task must be one of"):
    sft.check_config(_config())  # "reverse" is no qmotto.tasks family.


def test_smoke_config_end_to_end(tmp_path):
  """What `experiments/train_task.py --config=configs/train_task.py:task=countdown,smoke=1` runs."""
  pytest.importorskip("qmotto.tasks")
  config = train_task_config.get_config("task=countdown,smoke=1")
  config.workdir, config.output = str(tmp_path / "ckpt"), str(tmp_path / "countdown.json")
  result = sft.run(config, command="python experiments/train_task.py --config=configs/train_task.py:task=countdown,smoke=1")
  assert "greedy accuracy" in sft.format_result(result)
  saved = json.loads((tmp_path / "countdown.json").read_text())
  assert saved["task"] == "countdown" and saved["metrics"]["step"] == config.num_steps
  assert saved["difficulty"] == saved["config"]["task_options"] and "smoke=1" in saved["command"]
  assert saved["checkpoint_bytes"] > 0 and (tmp_path / "countdown.jsonl").exists()
  model, tokenizer = load_model(tmp_path / "ckpt")
  assert tokenizer.vocab_size == model.config.vocab_size
