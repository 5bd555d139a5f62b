"""The GRPO trainer (qmotto.rl.grpo): one compile, exact resume after a crash, bad input, the configs,
and the runner's smoke config end to end."""

from __future__ import annotations

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests import tracing
from qmotto.models.loading import checkpoint_steps
from qmotto.models.loading import load_model
from qmotto.models.loading import restore_checkpoint
from qmotto.rl import grpo
from qmotto.rl import summary as summary_lib
from qmotto.train import data
from qmotto.utils import locks
from tests.utils import lock_holder

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
from ..fakes import ReverseTask, char_reward, override  # noqa: E402
from configs import grpo as grpo_config  # noqa: E402


TASK = ReverseTask(max_digits=3)


def _config(**overrides):
  config = grpo_config.get_config("task=countdown,sampler=lattice,smoke")
  config.prompt_len, config.max_new_tokens = 5, 4
  config.model.hidden_size, config.model.intermediate_size = 16, 32
  config.learning_rate = 1e-2
  return override(config, **overrides)


def _params(path):
  return restore_checkpoint(path).model.params


def _log(workdir):
  return grpo.read_log(workdir)


def _strip(log):
  timing = ("sample_s", "reward_s", "update_s")
  return [{k: v for k, v in r.items() if k not in timing} for r in log]


class _Crash(Exception):
  pass


def _whole_and_crashed_runs(config, whole: str, crashed: str):
  """(metrics of a run straight through, metrics of a run that crashed at step 3 and resumed)."""
  metrics = grpo.train(config, whole, task=TASK, reward_fn=char_reward)
  batch = config.batch_size

  def failing(problem, text):
    if problem.index >= config.train_start + 3 * batch:
      raise _Crash("reward server down")
    return char_reward(problem, text)

  with pytest.raises(ValueError, match=r"raised _Crash: reward server down on problem 1000012 \(row 0 of the batch\), sample 0, completion"):
    grpo.train(config, crashed, task=TASK, reward_fn=failing)
  assert checkpoint_steps(crashed) == [2]
  stale = os.path.join(crashed, ".tmp-x1y2.json")  # as a write killed mid-way leaves it.
  with open(stale, "w") as f:
    f.write("{half")
  resumed = grpo.train(config, crashed, task=TASK, reward_fn=char_reward)
  assert not os.path.exists(stale)  # removed at the start, under the workdir's lock.
  assert not [name for name in os.listdir(crashed) if name.startswith((".tmp", ".qmotto"))]
  return metrics, resumed


def test_resume_after_a_crash_is_bit_identical_and_compiles_once(tmp_path):
  # hidden_size=24: a model shape no other test compiles, so every trace is counted here.
  config = _config(num_steps=4, checkpoint_every=2, eval_every=2, **{"model.hidden_size": 24,
                                                                     "model.intermediate_size": 48})
  whole, crashed = str(tmp_path / "whole"), str(tmp_path / "crashed")
  with tracing.count_traces() as traces:
    metrics, resumed = _whole_and_crashed_runs(config, whole, crashed)
  assert traces["train_step"] == 1  # one compile for all three runs.
  log = _log(whole)
  assert [(r["kind"], r["step"]) for r in log] == [
      ("eval", 0), ("train", 1), ("train", 2), ("eval", 2), ("train", 3), ("train", 4), ("eval", 4)]
  assert metrics["step"] == 4 and metrics["pass@1"] == log[-1]["pass@1"] and metrics["seconds_per_step"] > 0
  train_lines = [r for r in log if r["kind"] == "train"]
  assert all(0 <= r["zero_variance"] <= 1 and 1 <= r["distinct"] <= 4 and r["ratio_dev"] < 1e-4 for r in train_lines)
  assert any(r["grad_norm"] > 0 for r in train_lines)
  assert not np.array_equal(np.asarray(jax.tree.leaves(_params(whole))[0]),
                            np.asarray(jax.tree.leaves(grpo.initial_policy(config, task=TASK).model.params)[0]))

  # A crash at step 3 (the reward function failed on its problems) lost only step 3.
  for a, b in zip(jax.tree.leaves(_params(whole)), jax.tree.leaves(_params(crashed)), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert _strip(_log(whole)) == _strip(_log(crashed))  # no line lost or doubled.
  assert resumed["pass@1"] == metrics["pass@1"]

  # The checkpoint is a task model: load_model gives the policy and its tokenizer.
  model, tokenizer = load_model(whole)
  assert tokenizer == data.task_tokenizer(TASK) and model.config.max_seq_len == 9
  meta = restore_checkpoint(whole).metadata
  assert meta["style"] == "compact" and meta["grpo_config"]["sampler"] == "lattice" and meta["init"]["checkpoint"] == ""

  # A different run in the same workdir is refused.
  other = config.copy_and_resolve_references()
  other.sampler = "iid"
  with pytest.raises(ValueError, match="sampler"):
    grpo.train(other, whole, task=TASK, reward_fn=char_reward)


def _groups(rewards):
  rewards = np.asarray(rewards, np.float32)
  b, g = rewards.shape
  out = grpo.decode.GenerateOutput(tokens=np.zeros((b, g, 2), np.int32), logprobs=np.zeros((b, g, 2), np.float32),
                                   lengths=np.full((b, g), 2, np.int32))
  return grpo.Groups(np.zeros((b, 3), np.int32), np.full((b,), 3, np.int32), out, np.ones((b, g), bool), rewards,
                     [["x"] * g for _ in range(b)])


def test_dynamic_sampling_trains_on_the_informative_groups_first():
  first = _groups([[1, 1], [0, 1], [0, 0]])  # group 1 varies.
  second = _groups([[0, 0], [1, 0], [0, 1]])  # groups 4 and 5 vary.
  assert list(grpo.informative_first([first, second], 3)) == [1, 4, 5]
  assert list(grpo.informative_first([first], 3)) == [1, 0, 2]  # too few: the others fill the batch, in order.
  taken = grpo.Groups.concatenate([first, second]).take([1, 4, 5])
  np.testing.assert_array_equal(taken.rewards, [[0, 1], [1, 0], [0, 1]])
  assert taken.output.tokens.shape == (3, 2, 2) and len(taken.texts) == 3


def test_dynamic_sampling_needs_a_group_baseline():
  with pytest.raises(ValueError, match="config.dynamic_sampling drops the groups"):
    grpo.check_config(_config(dynamic_sampling=True, advantage="fixed"))


def test_training_problems_extra_batches_are_reproducible_and_disjoint():
  stream = grpo.TrainingProblems(TASK, 4, 0, 1000)
  own = {p.index for step in range(3) for p in stream(step)}
  extra = [p.index for step in range(3) for j in (1, 2) for p in stream(step, j)]
  assert len(set(extra)) == len(extra) and not own & set(extra)
  assert [p.index for p in stream(2, 1)] == [p.index for p in grpo.TrainingProblems(TASK, 4, 0, 1000)(2, 1)]
  pool = grpo.TrainingProblems(TASK, 4, 10, 1000)
  drawn = [p.index for p in pool(5, 2)]
  assert len(set(drawn)) == 4 and set(drawn) <= {p.index for p in pool.pool}
  assert drawn == [p.index for p in grpo.TrainingProblems(TASK, 4, 10, 1000)(5, 2)]


def test_dynamic_sampling_draws_until_the_batch_has_signal_and_counts_every_sample(tmp_path):
  # A reward that is the same for every completion of half the problems (odd index): those groups
  # carry no signal under a group baseline, so dynamic sampling draws further batches for them.
  def half_flat(problem, text):
    return 0.0 if problem.index % 2 else char_reward(problem, text)

  config = _config(num_steps=1, checkpoint_every=1, eval_every=0, warmup_steps=0, dynamic_sampling=True,
                   max_sample_batches=3)
  grpo.train(config, str(tmp_path / "dynamic"), task=TASK, reward_fn=half_flat)
  plain = _config(num_steps=1, checkpoint_every=1, eval_every=0, warmup_steps=0)
  grpo.train(plain, str(tmp_path / "plain"), task=TASK, reward_fn=half_flat)
  group = config.batch_size * config.group_size
  for record in (r for r in _log(str(tmp_path / "dynamic")) if r["kind"] == "train"):
    assert record["sample_batches"] >= 2 and record["samples_drawn"] == record["sample_batches"] * group
    assert record["zero_variance"] < record["zero_variance_drawn"]  # it trained on the varied groups first.
  for record in (r for r in _log(str(tmp_path / "plain")) if r["kind"] == "train"):
    assert record["sample_batches"] == 1 and record["samples_drawn"] == group
    assert record["zero_variance"] >= 0.5 and record["zero_variance"] == record["zero_variance_drawn"]


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("group_size", 1, "config.group_size must be an int >= 2"),
        ("max_sample_batches", 0, "config.max_sample_batches must be an int >= 1"),
        ("clip_eps_high", -0.1, "config.clip_eps_high"),
        ("sampler", "gumbel", "config.sampler must be one of"),
        ("advantage", "median", "config.advantage must be one of"),
        ("baseline", float("nan"), "config.baseline must be a finite float"),
        ("reward", "exact", "config.reward must be one of"),
        ("loss_aggregation", "sum", "config.loss aggregation must be one of"),
        ("temperature", 0.0, "config.temperature must be a finite float > 0"),
        ("clip_eps", -0.1, "config.clip_eps"),
        ("num_steps", 0, "config.num_steps must be an int >= 1"),
        ("train_pool_size", 2, "config.train_pool_size"),
        ("target_metric", "accuracy", "config.target_metric"),
    ],
)
def test_bad_config_values_name_the_field(tmp_path, field, value, match):
  with pytest.raises(ValueError, match=match):
    grpo.train(_config(**{field: value}), str(tmp_path), task=TASK, reward_fn=char_reward)


def test_numbers_may_be_python_numpy_or_jax_scalars():
  config = _config()
  with config.ignore_type():  # a ConfigDict keeps each field's type; here it changes on purpose.
    config.seed, config.group_size, config.num_steps = np.int64(1), jnp.int32(4), np.uint16(6)
    config.temperature, config.learning_rate, config.b2 = jnp.float32(0.9), np.float32(1e-3), np.float64(0.99)
    config.baseline = jnp.array(0.5)
  grpo.check_config(config)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("num_steps", "6", "config.num_steps must be an int >= 1, got the string '6'"),
        ("group_size", 4.0, "config.group_size must be an int >= 2"),
        ("temperature", "1", "config.temperature must be a finite float > 0.0, got the string '1'"),
        ("b1", 1.0, r"config.b1 must be in \[0, 1\)"),
        ("baseline", np.arange(2.0), r"config.baseline must be a finite float .a scalar."),
    ],
)
def test_numbers_of_other_types_get_a_value_error_naming_the_field(field, value, match):
  config = _config()
  with config.ignore_type():
    config[field] = value
  with pytest.raises(ValueError, match=match):
    grpo.check_config(config)


def test_a_second_run_on_the_workdir_is_refused_at_once_naming_the_first(tmp_path):
  config = _config(workdir=str(tmp_path / "work"), output_dir=str(tmp_path / "results"))
  with lock_holder.held_by_another_process(config.workdir, run="grpo countdown sampler=lattice seed=0") as holder:
    refused = rf"workdir=.* in use by another run: pid {holder.pid} .*grpo countdown"
    with pytest.raises(locks.DirectoryInUse, match=refused):
      grpo.train(config, config.workdir, task=TASK, reward_fn=char_reward)
    with pytest.raises(locks.DirectoryInUse, match=rf"config.workdir=.* in use by another run: pid {holder.pid} "):
      grpo.run(config, task=TASK, reward_fn=char_reward)
  assert os.listdir(config.workdir) == [locks.LOCK_NAME]  # nothing trained, no log: the holder was killed.


def test_unwritable_directories_fail_before_training(tmp_path):
  (tmp_path / "file").write_text("in the way")
  config = _config(workdir=str(tmp_path / "work"), output_dir=str(tmp_path / "file" / "results"))
  with pytest.raises(ValueError, match=r"config.output_dir='.*file/results' is not a writable directory"):
    grpo.run(config, task=TASK, reward_fn=char_reward)
  assert not os.path.exists(config.workdir)
  with pytest.raises(ValueError, match=r"^workdir='.*file/work' is not a writable directory"):
    grpo.train(config, str(tmp_path / "file" / "work"), task=TASK, reward_fn=char_reward)


def test_group_size_the_sampler_cannot_serve(tmp_path):
  with pytest.raises(ValueError, match=r"config.group_size=6 cannot be served by config.sampler='sobol'.*power of two"):
    grpo.train(_config(sampler="sobol", group_size=6), str(tmp_path), task=TASK, reward_fn=char_reward)


def test_missing_init_checkpoint_says_what_to_do(tmp_path):
  config = grpo_config.get_config("task=maze,sampler=iid")
  config.init_checkpoint = str(tmp_path / "none")
  with pytest.raises(ValueError, match="train the SFT model first"):
    grpo.train(config, str(tmp_path / "w"))


def test_config_variants_and_bad_arguments():
  for task in grpo_config.TASKS:
    for sampler in ("iid", "stratified", "lattice", "sobol"):
      config = grpo_config.get_config(f"task={task},sampler={sampler},seed=2")
      grpo.check_config(config)
      assert config.init_checkpoint == f"checkpoints/{task}" and config.seed == 2
      assert config.workdir == f"tmp/grpo/{task}_experiment/{sampler}_seed2"
      assert config.output_dir == f"results/grpo/{task}_experiment"
    smoke = grpo_config.get_config(f"task={task},smoke")
    grpo.check_config(smoke)
    assert smoke.init_checkpoint == "" and smoke.num_steps < config.num_steps
  for arg, match in [("task=chess", "task must be one of"), ("task=maze,size=3", "bad argument"),
                     ("seed=-1", "seed must be an int >= 0"), ("smoke=2", "smoke must be 0 or 1"),
                     ("seed", "bad argument"), ("task=", "bad argument")]:
    with pytest.raises(ValueError, match=match):
      grpo_config.get_config(arg)


def test_second_experiment_variant_is_its_design():
  """configs/grpo.py:experiment=grpo2 is the design of results/grpo/EXPERIMENT2.md."""
  for G, batch, high in ((8, 16, 0.25), (16, 8, 0.125)):
    config = grpo_config.get_config(f"task=maze,sampler=iid,seed=100,experiment=grpo2,G={G},dynamic,sweep_lr=3e-4")
    grpo.check_config(config)
    assert (config.group_size, config.batch_size, config.band_low, config.band_high) == (G, batch, 0.0, high)
    assert config.eval_band and config.eval_problems == 512 and config.eval_samples == 8 and config.dynamic_sampling
    assert config.learning_rate == 3e-4 and config.experiment == "grpo2_sweep_lr3e-4"
    assert config.output_dir == "results/grpo/experiment2/sweep_lr3e-4"
    assert summary_lib.run_arm(config.to_dict()) == f"iid+dynamic_G{G}"
  for task, settings in grpo_config.EXPERIMENT2.items():
    if settings["target"] is None:
      with pytest.raises(ValueError, match="fixed by the sweep"):
        grpo_config.get_config(f"task={task},sampler=lattice,experiment=grpo2")
      continue
    for arm, lr in settings["learning_rates"].items():
      sampler, G = arm.split("_G")
      variant = f"task={task},sampler={sampler.replace('+dynamic', ',dynamic')},seed=3,experiment=grpo2,G=16"
      config = grpo_config.get_config(variant)
      grpo.check_config(config)
      assert (config.learning_rate, config.target, config.experiment) == (lr, settings["target"], "grpo2")
      assert config.num_steps == settings["num_steps"] and config.output_dir == f"results/grpo/experiment2/{task}"
  for arg, match in [("task=arc_1d,experiment=grpo2", "has the tasks"), ("task=maze,experiment=grpo3", "grpo1"),
                     ("task=maze,experiment=grpo2,G=4", "G in"),
                     ("task=maze,G=16", "variants of experiment=grpo2"), ("task=maze,dynamic", "variants of"), ("task=maze,experiment=grpo2,sweep_lr=2e-4", "sweep_lr must be one of")]:
    with pytest.raises(ValueError, match=match):
      grpo_config.get_config(arg)


@pytest.mark.parametrize("task", ["maze", "mini_sudoku", "arc_1d"])
def test_config_defaults_reproduce_the_committed_experiment(task):
  """Each committed result of results/grpo/<task>_experiment was run with what get_config gives today."""
  folder = os.path.join(REPO, "results", "grpo", f"{task}_experiment")
  results = summary_lib.load_runs(folder)
  assert len(results) >= 9 and {r["sampler"] for r in results} == {"iid", "stratified", "lattice"}
  fields = grpo.RUN_FIELDS + ("target", "target_metric", "eval_every", "eval_problems", "eval_samples",
                               "checkpoint_every", "output_dir", "workdir")
  for r in results:
    config = grpo_config.get_config(f"task={task},sampler={r['sampler']},seed={r['seed']}").to_dict()
    saved = grpo.saved_run_config(r["config"])
    assert {f: config[f] for f in fields} == {f: saved[f] for f in fields}, (r["sampler"], r["seed"])


def test_smoke_config_end_to_end(tmp_path):
  """What `experiments/grpo.py --config=configs/grpo.py:task=countdown,sampler=lattice,smoke` runs."""
  config = grpo_config.get_config("task=countdown,sampler=lattice,smoke")
  config.workdir, config.output_dir = str(tmp_path / "work"), str(tmp_path / "results")
  config.target = 0.01
  result = grpo.run(config, command="python experiments/grpo.py --config=configs/grpo.py:task=countdown,sampler=lattice,smoke")
  saved = json.loads((tmp_path / "results" / "countdown_lattice_seed0.json").read_text())
  assert saved["kind"] == summary_lib.RESULT_KIND and saved["metrics"]["step"] == config.num_steps and "smoke" in saved["command"]
  assert [r["step"] for r in saved["log"] if r["kind"] == "eval"] == [0, 2, 4]
  rows = json.loads((tmp_path / "results" / summary_lib.SUMMARY_NAME).read_text())
  assert isinstance(rows, list) and rows[0]["task"] == "countdown" and rows[0]["sampler"] == "lattice"
  assert set(rows[0]) >= {"task", "sampler", "seed", "steps_to_target"}
  assert json.loads((tmp_path / "results" / summary_lib.AGGREGATE_NAME).read_text())[0]["seeds"] == 1
  for name in ("plot", "summary_plot"):
    assert os.path.getsize(result["paths"][name]) > 1000
