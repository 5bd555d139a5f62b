"""GRPO (qmotto.rl.grpo): the loss's gradient, one compile, exact resume after a crash,
bad input, the summary, and the runner's smoke config end to end."""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qmotto
from qmotto.tasks import prompting
from tests import tracing
from qmotto.models import llama
from qmotto.models.loading import checkpoint_steps
from qmotto.models.loading import load_model
from qmotto.models.loading import restore_checkpoint
from qmotto.rl import advantages
from qmotto.rl import grpo
from qmotto.train import data

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
from ..fakes import ReverseTask, override  # noqa: E402
from configs import grpo as grpo_config  # noqa: E402


TASK = ReverseTask(max_digits=3)


def char_reward(problem, text) -> float:
  """Partial credit with variance even for a random model: matching characters."""
  return sum(a == b for a, b in zip(text, problem.answer)) / len(problem.answer) + 0.1 * ("5" in text)


def _config(**overrides):
  config = grpo_config.get_config("task=countdown,sampler=lattice,smoke")
  config.prompt_len, config.max_new_tokens = 5, 4
  config.model.hidden_size, config.model.intermediate_size = 16, 32
  config.learning_rate = 1e-2
  return override(config, **overrides)


def _params(path):
  return restore_checkpoint(path).model.params


def _tiny_model(seed=0):
  tokenizer = data.task_tokenizer(TASK)
  config = llama.LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, intermediate_size=32, num_layers=1,
                             num_heads=2, num_kv_heads=2, max_seq_len=12)
  return llama.init_model(config, jax.random.key(seed)), tokenizer


TEMPERATURE = 0.7


@functools.lru_cache(maxsize=None)
def _rollout(sampler="lattice", temperature=TEMPERATURE):
  """A tiny model, 3 prompts x 4 samples, and their Rollout (one generate compile for the module)."""
  model, tokenizer = _tiny_model()
  problems = TASK.problems("train", 3)
  prompts, lengths = prompting.encode_prompts(tokenizer, TASK, problems, "compact", length=5, pad_id=tokenizer.pad_id)
  out = qmotto.generate(jax.random.key(1), model, prompts, lengths, num_samples=4, max_new_tokens=4,
                        sampling=qmotto.SamplingOptions.create(sampler, temperature=temperature),
                        eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
  texts = prompting.decode_completions(tokenizer, out.tokens, out.lengths)
  rewards = grpo.score_rewards(char_reward, problems, texts)
  adv = advantages.advantages(rewards, "mean")
  rollout = grpo.make_rollout(model.params, jnp.asarray(prompts), jnp.asarray(lengths), out, adv,
                              jnp.int32(tokenizer.pad_id), model_config=model.config, temperature=temperature,
                              with_reference=True)
  return model, tokenizer, prompts, lengths, out, rollout


def test_join_sequences_matches_a_loop():
  prompts = np.array([[1, 5, 6, 0], [1, 7, 0, 0]], np.int32)
  lengths = np.array([3, 2], np.int32)
  completions = np.arange(2 * 3 * 2, dtype=np.int32).reshape(2, 3, 2) + 10
  got = np.asarray(grpo.join_sequences(jnp.asarray(prompts), jnp.asarray(lengths), jnp.asarray(completions), 0))
  for p in range(2):
    for i in range(3):
      want = list(prompts[p, : lengths[p]]) + list(completions[p, i])
      want += [0] * (6 - len(want))
      assert list(got[p * 3 + i]) == want


def test_teacher_forced_logprobs_match_sampling_time_logprobs():
  model, _, _, _, _, rollout = _rollout()
  logp, _ = grpo.completion_logprobs(model.params, model.config, rollout.tokens, rollout.prompt_lengths, 4,
                                     TEMPERATURE)
  mask = np.asarray(rollout.mask)
  assert mask.sum() > 0
  np.testing.assert_allclose(np.asarray(logp) * mask, np.asarray(rollout.old_logprobs) * mask, atol=2e-5)
  np.testing.assert_allclose(np.asarray(rollout.ref_logprobs), np.asarray(rollout.old_logprobs), atol=2e-5)


def test_gradient_at_ratio_one_is_the_policy_gradient():
  model, _, _, _, _, rollout = _rollout()
  cfg = model.config
  lconf = grpo.LossConfig(clip_eps=0.2, kl_coef=0.0, temperature=1.0, aggregation="sequence")
  # Old log-probs equal to the current ones, as for the first update on a batch.
  logp, _ = grpo.completion_logprobs(model.params, cfg, rollout.tokens, rollout.prompt_lengths, 4, 1.0)
  rollout = rollout._replace(old_logprobs=logp * rollout.mask)
  # The reference equal to the policy: the KL term and its gradient are 0.
  rollout_ref = rollout._replace(ref_logprobs=rollout.old_logprobs)
  # Ratios far outside the clip range with positive advantages: no gradient from those tokens.
  far = rollout._replace(old_logprobs=(logp - 1.0) * rollout.mask, advantages=jnp.abs(rollout.advantages) + 1.0)

  def surrogate(params):  # -(1 / (R N)) sum_i A_i log pi(y_i)
    lp, _ = grpo.completion_logprobs(params, cfg, rollout.tokens, rollout.prompt_lengths, 4, 1.0)
    return -jnp.sum(rollout.advantages * jnp.sum(lp * rollout.mask, axis=1)) / rollout.mask.size

  @jax.jit
  def all_grads(params):  # one compile for the four gradients.
    loss = lambda r, c: lambda p: grpo.policy_loss(p, cfg, r, c)[0]  # noqa: E731
    return (jax.grad(loss(rollout, lconf))(params), jax.grad(surrogate)(params),
            jax.grad(loss(rollout_ref, lconf._replace(kl_coef=0.5)))(params), jax.grad(loss(far, lconf))(params))

  grads, want, grads_kl, clipped_grads = all_grads(model.params)
  for a, b, c in zip(jax.tree.leaves(grads), jax.tree.leaves(want), jax.tree.leaves(grads_kl), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(np.asarray(c), np.asarray(b), rtol=1e-4, atol=1e-6)
  assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(want)) > 0
  assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(clipped_grads)) == 0.0
  _, metrics = grpo.policy_loss(model.params, cfg, rollout_ref, lconf._replace(kl_coef=0.5))
  assert abs(float(metrics["kl"])) < 1e-6
  assert float(grpo.policy_loss(model.params, cfg, far, lconf)[1]["clip_fraction"]) == 1.0


@pytest.mark.parametrize("aggregation", grpo.LOSS_AGGREGATIONS)
def test_aggregations_are_finite(aggregation):
  model, _, _, _, _, rollout = _rollout()
  loss, _ = jax.jit(grpo.policy_loss, static_argnums=(1, 3))(
      model.params, model.config, rollout, grpo.LossConfig(aggregation=aggregation))
  assert math.isfinite(float(loss))


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
  return metrics, grpo.train(config, crashed, task=TASK, reward_fn=char_reward)


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


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("group_size", 1, "config.group_size must be an int >= 2"),
        ("sampler", "gumbel", "config.sampler must be one of"),
        ("advantage", "median", "config.advantage must be one of"),
        ("baseline", float("nan"), "config.baseline must be a finite number"),
        ("reward", "exact", "config.reward must be one of"),
        ("loss_aggregation", "sum", "config.loss_aggregation must be one of"),
        ("temperature", 0.0, "config.temperature must be a finite number > 0"),
        ("clip_eps", -0.1, "config.clip_eps"),
        ("num_steps", 0, "config.num_steps must be an int >= 1"),
        ("train_pool_size", 2, "config.train_pool_size"),
        ("target_metric", "accuracy", "config.target_metric"),
    ],
)
def test_bad_config_values_name_the_field(tmp_path, field, value, match):
  with pytest.raises(ValueError, match=match):
    grpo.train(_config(**{field: value}), str(tmp_path), task=TASK, reward_fn=char_reward)


def test_group_size_the_sampler_cannot_serve(tmp_path):
  with pytest.raises(ValueError, match=r"config.group_size=6 cannot be served by config.sampler='sobol'.*power of two"):
    grpo.train(_config(sampler="sobol", group_size=6), str(tmp_path), task=TASK, reward_fn=char_reward)


@pytest.mark.parametrize("bad, match", [
    (float("nan"), r"returned nan on problem 0 \(row 0 of the batch\), sample 0, completion '.*'; rewards must be finite"),
    ("high", "returned 'high' \\(not a number\\)"),
    (None, "returned None \\(not a number\\)"),
])
def test_bad_rewards_are_named(bad, match):
  problems = TASK.problems("train", 2)
  with pytest.raises(ValueError, match=match):
    grpo.score_rewards(lambda problem, text: bad, problems, [["12", "3"], ["4", "5"]])
  with pytest.raises(ValueError, match="reward function raised ZeroDivisionError.*problem 1 .*sample 1, completion '5'"):
    grpo.score_rewards(lambda problem, text: 1 / (text != "5"), problems, [["12", "3"], ["4", "5"]])


def test_missing_init_checkpoint_says_what_to_do(tmp_path):
  config = grpo_config.get_config("task=maze,sampler=iid")
  config.init_checkpoint = str(tmp_path / "none")
  with pytest.raises(ValueError, match="train the SFT model first"):
    grpo.train(config, str(tmp_path / "w"))


def _fake_result(task, sampler, seed, curve, target=0.0):
  log = [{"kind": "eval", "step": 10 * i, "pass@1": v} for i, v in enumerate(curve)]
  log += [{"kind": "train", "step": 10 * i + 10, "zero_variance": 0.5, "distinct": 3.0, "reward": v}
          for i, v in enumerate(curve)]
  return {"kind": grpo.RESULT_KIND, "task": task, "sampler": sampler, "seed": seed, "log": log,
          "config": {"num_steps": 10 * (len(curve) - 1), "eval_every": 10, "target": target, "target_metric": "pass@1"}}


def test_summary_steps_to_target_against_iid(tmp_path):
  runs = [
      _fake_result("t", "iid", 0, [0.1, 0.2, 0.3, 0.4]), _fake_result("t", "iid", 1, [0.1, 0.2, 0.3, 0.6]),
      _fake_result("t", "lattice", 0, [0.1, 0.5, 0.5, 0.5]), _fake_result("t", "lattice", 1, [0.1, 0.2, 0.2, 0.2]),
  ]
  for r in runs:
    (tmp_path / f"{grpo.result_name(r['task'], r['sampler'], r['seed'])}.json").write_text(json.dumps(r))
  summary = grpo.build_summary(str(tmp_path))
  rows = {(r["sampler"], r["seed"]): r for r in summary["rows"]}
  assert all(r["target"] == pytest.approx(0.5) for r in rows.values())  # mean final i.i.d. pass@1.
  assert rows["iid", 0]["steps_to_target"] is None and rows["iid", 1]["steps_to_target"] == 30
  assert rows["lattice", 0]["steps_to_target"] == 10 and rows["lattice", 1]["steps_to_target"] is None
  agg = {a["sampler"]: a for a in summary["aggregate"]}
  assert agg["iid"]["reached"] == 1 and agg["iid"]["censored"] == 1 and agg["iid"]["mean_steps"] == 30
  assert agg["lattice"]["mean_steps"] == 20 and agg["lattice"]["steps_saved_vs_iid"] == pytest.approx(1 / 3)
  assert agg["lattice"]["final"]["mean"] == pytest.approx(0.35) and agg["iid"]["mean_eval"]["mean"] == pytest.approx(1 / 3)
  assert rows["lattice", 0]["mean_eval"] == pytest.approx(0.5)
  # Per seed, lattice - iid: steps 10 - 30 (seed 0 iid unreached: 30), 30 - 30; curves 0.5 - 0.3, 0.2 - 0.3667.
  paired = agg["lattice"]["paired_vs_iid"]
  assert agg["iid"]["paired_vs_iid"] is None and paired["seeds"] == 2
  assert paired["steps_diff"]["mean"] == pytest.approx(-10.0) and paired["steps_diff"]["ci_low"] < -10.0
  assert paired["mean_eval_diff"]["mean"] == pytest.approx((0.2 - 1 / 6) / 2)
  assert "lattice" in grpo.format_summary(summary)
  assert grpo.steps_to_target(runs[0]["log"], 0.15) == 10 and grpo.steps_to_target(runs[0]["log"], 0.9) is None


def _write_results(folder, runs):
  folder.mkdir(parents=True, exist_ok=True)
  for r in runs:
    (folder / f"{grpo.result_name(r['task'], r['sampler'], r['seed'])}.json").write_text(json.dumps(r))


def test_summary_over_several_folders_keeps_each_task_target(tmp_path):
  _write_results(tmp_path / "a", [_fake_result("a", "iid", 0, [0.1, 0.3], target=0.25),
                                  _fake_result("a", "lattice", 0, [0.3, 0.3], target=0.25)])
  _write_results(tmp_path / "b", [_fake_result("b", "iid", 0, [0.5, 0.6, 0.7], target=0.65)])
  summary = grpo.build_summary([str(tmp_path / "a"), str(tmp_path / "b")])
  rows = {(r["task"], r["sampler"]): r for r in summary["rows"]}
  assert rows["a", "iid"]["steps_to_target"] == 10 and rows["a", "lattice"]["steps_to_target"] == 0
  assert rows["b", "iid"]["target"] == 0.65 and rows["b", "iid"]["steps_to_target"] == 20
  assert rows["b", "iid"]["results_dir"] == str(tmp_path / "b")
  assert grpo.build_summary(str(tmp_path / "a"))["rows"] == summary["rows"][:2]

  _write_results(tmp_path / "c", [_fake_result("a", "iid", 0, [0.1])])
  with pytest.raises(ValueError, match=r"both results of \(task, sampler, seed\) = \('a', 'iid', 0\)"):
    grpo.build_summary([str(tmp_path / "a"), str(tmp_path / "c")])
  _write_results(tmp_path / "d", [_fake_result("a", "stratified", 0, [0.1, 0.2], target=0.5)])
  with pytest.raises(ValueError, match="the a runs were given different config.target"):
    grpo.build_summary([str(tmp_path / "a"), str(tmp_path / "d")])


def test_summary_runner_writes_one_summary_of_several_folders(tmp_path):
  _write_results(tmp_path / "a", [_fake_result("a", "iid", 0, [0.1, 0.3], target=0.25)])
  _write_results(tmp_path / "b", [_fake_result("b", "lattice", 1, [0.5, 0.6, 0.7], target=0.65)])
  out = tmp_path / "all"
  proc = subprocess.run(
      [sys.executable, "experiments/grpo_summary.py", f"--results={tmp_path / 'a'},{tmp_path / 'b'}",
       f"--output_dir={out}"],
      cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"},
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = json.loads((out / grpo.SUMMARY_NAME).read_text())  # the format: a list of per-run rows.
  assert [(r["task"], r["sampler"], r["seed"], r["steps_to_target"]) for r in rows] == [
      ("a", "iid", 0, 10), ("b", "lattice", 1, 20)]
  by_sampler = json.loads((out / grpo.AGGREGATE_NAME).read_text())
  assert [(a["task"], a["sampler"], a["mean_steps"]) for a in by_sampler] == [("a", "iid", 10.0), ("b", "lattice", 20.0)]
  assert (tmp_path / "all" / "summary_a.png").exists() and (tmp_path / "all" / "summary_b.png").exists()
  assert "lattice" in proc.stdout


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


@pytest.mark.parametrize("task", ["maze", "mini_sudoku", "arc_1d"])
def test_config_defaults_reproduce_the_committed_experiment(task):
  """Each committed result of results/grpo/<task>_experiment was run with what get_config gives today."""
  folder = os.path.join(REPO, "results", "grpo", f"{task}_experiment")
  results = grpo.load_results(folder)
  assert len(results) >= 9 and {r["sampler"] for r in results} == {"iid", "stratified", "lattice"}
  fields = grpo._RUN_FIELDS + ("target", "target_metric", "eval_every", "eval_problems", "eval_samples",
                               "checkpoint_every", "output_dir", "workdir")
  for r in results:
    config = grpo_config.get_config(f"task={task},sampler={r['sampler']},seed={r['seed']}").to_dict()
    assert {f: config[f] for f in fields} == {f: r["config"][f] for f in fields}, (r["sampler"], r["seed"])


def test_smoke_config_end_to_end(tmp_path):
  """What `experiments/grpo.py --config=configs/grpo.py:task=countdown,sampler=lattice,smoke` runs."""
  config = grpo_config.get_config("task=countdown,sampler=lattice,smoke")
  config.workdir, config.output_dir = str(tmp_path / "work"), str(tmp_path / "results")
  config.target = 0.01
  result = grpo.run(config, command="python experiments/grpo.py --config=configs/grpo.py:task=countdown,sampler=lattice,smoke")
  saved = json.loads((tmp_path / "results" / "countdown_lattice_seed0.json").read_text())
  assert saved["kind"] == grpo.RESULT_KIND and saved["metrics"]["step"] == config.num_steps and "smoke" in saved["command"]
  assert [r["step"] for r in saved["log"] if r["kind"] == "eval"] == [0, 2, 4]
  rows = json.loads((tmp_path / "results" / grpo.SUMMARY_NAME).read_text())
  assert isinstance(rows, list) and rows[0]["task"] == "countdown" and rows[0]["sampler"] == "lattice"
  assert set(rows[0]) >= {"task", "sampler", "seed", "steps_to_target"}
  assert json.loads((tmp_path / "results" / grpo.AGGREGATE_NAME).read_text())[0]["seeds"] == 1
  for name in ("plot", "summary_plot"):
    assert os.path.getsize(result["paths"][name]) > 1000
