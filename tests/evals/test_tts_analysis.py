"""The test-time-scaling analysis (qmotto.evals.tts_analysis) on hand-made samples, no model."""

import types

import numpy as np
import pytest

from configs import tts as tts_config_file
from qmotto import metrics
from qmotto.evals import tts_analysis

COUPLED = tts_config_file.COUPLED[0]
P, N = 6, 8


def _setup():
  problems = [types.SimpleNamespace(index=10 + i) for i in range(P)]
  return types.SimpleNamespace(problems=problems, task=types.SimpleNamespace(name="toy"), model_name="m",
                               style="compact")


def _samples(seed=0):
  """Per sampler the arrays of `chunks.sample_all`: problem 0 always right, problem 1 never answered."""
  rng = np.random.default_rng(seed)
  out = {}
  for name, reps in (("iid", 2), (COUPLED, 1)):
    shape = (P, reps, N)
    answer = rng.integers(0, 4, shape)  # answer 0 is right.
    answer[0] = 0
    answered = rng.random(shape) < 0.9
    answered[0], answered[1] = True, False
    group = dict(correct=(answer == 0) & answered, answered=answered, answer_hash=answer * 1_000_003 - 17,
                 lengths=rng.integers(1, 9, shape), stopped=np.ones(shape, bool),
                 mean_logprob=-rng.random(shape), examples=["x"])
    out[name] = dict(groups={N: group}, stats=dict(seconds=1.0, sampled_chunks=1, loaded_chunks=0))
  return dict(directory="/nowhere", samplers=out)


def _config():
  config = tts_config_file.get_config("smoke")
  config.samplers = ("iid", COUPLED)
  config.progress = False
  return config


def test_answer_ids_are_shared_across_samplers():
  samples = _samples()
  groups = {name: s["groups"][N] for name, s in samples["samplers"].items()}
  ids = tts_analysis.shared_answer_ids(groups)
  for p in range(P):
    pairs = {}
    for name, group in groups.items():
      for h, i, a in zip(group["answer_hash"][p].ravel(), ids[name][p].ravel(), group["answered"][p].ravel()):
        assert (i >= 0) == a
        if a:
          assert pairs.setdefault(int(h), int(i)) == i  # one id per answer, whichever sampler drew it.
    assert len(set(pairs.values())) == len(pairs)


def test_rows_on_sure_and_hopeless_problems():
  config = _config()
  out = tts_analysis.analyze_tts(config, _setup(), _samples())
  for name, per_metric in out["per_problem"].items():
    for label in ("pass@k", "maj@k", "weighted@k", "bon@k"):
      values = np.array(per_metric[label])
      assert values.shape == (P, len(config.ks)) and np.all((0 <= values) & (values <= 1))
      assert np.all(values[0] == 1.0) and np.all(values[1] == 0.0), (name, label)
    for q, fs in per_metric["first_success"].items():
      # Problem 0: the first slot is accepted and right; problem 1: nothing is ever accepted.
      assert fs["samples"][0] == config.round_size and fs["solved"][0] == 1.0
      assert fs["samples"][1] == N and fs["solved"][1] == 0.0
    # A perfect verifier's solve rate is pass@N, problem by problem.
    np.testing.assert_allclose(per_metric["first_success"]["0.0"]["solved"], np.array(per_metric["pass@k"])[:, -1],
                               atol=1e-6)
  rows = out["rows"]
  assert {r["metric"] for r in rows} == {"pass@k", "maj@k", "weighted@k", "bon@k", "first_success"}
  for r in rows:
    assert r["task"] == "toy" and r["num_problems"] == P and r["replications"] == (2 if r["sampler"] == "iid" else 1)
  fs_rows = [r for r in rows if r["metric"] == "first_success" and r["sampler"] == COUPLED]
  for r in fs_rows:
    iid = next(x for x in rows if x["metric"] == "first_success" and x["sampler"] == "iid" and x["q"] == r["q"])
    assert r["saved_vs_iid"] == pytest.approx(1 - r["expected_samples"] / iid["expected_samples"])
  mode = np.array(out["majority_at_infinity"])
  assert mode[0] == 1.0 and mode[1] == 0.0
  assert out["arrays"]["iid"]["answer_ids"].shape == (P, 2, N)


def test_the_verifier_is_keyed_by_the_problems_own_indices():
  config = _config()
  config.strategies = ("first_success",)
  config.breakdown_ks = ()
  samples = _samples(seed=3)
  group = samples["samplers"][COUPLED]["groups"][N]
  got = tts_analysis.first_success_per_problem(config, _setup(), COUPLED, group)
  indices = np.arange(10, 10 + P)
  for q, fs in got.items():
    accepted = metrics.imperfect_verifier(group["correct"], false_positive_rate=q, seed=config.seed,
                                          problem_indices=indices, answered=group["answered"])
    want = metrics.first_success_in_order(accepted[:, 0], group["correct"][:, 0], round_size=config.round_size,
                                          lengths=group["lengths"][:, 0])
    for a, b in zip(fs, want):
      np.testing.assert_array_equal(a, b)


def test_full_size_pooled_groups_of_a_sure_problem_stay_probabilities():
  # Two i.i.d. groups of 64, every sample right: bon@2's rank weights once summed to 1 + 7e-16,
  # which the samples-saved interval refused as no probability.
  config = tts_config_file.get_config("task=countdown")
  config.samplers, config.progress = ("iid", COUPLED), False
  rng = np.random.default_rng(0)
  values = {}
  for name, reps in (("iid", 2), (COUPLED, 1)):
    shape = (3, reps, 64)
    group = dict(correct=np.ones(shape, bool), mean_logprob=-rng.random(shape))
    values[name] = tts_analysis.per_problem_at_ks(config, name, group, np.zeros(shape, np.int64))
    for label, v in values[name].items():
      assert np.all(v <= 1.0) and np.allclose(v, 1.0), (name, label)
  rows = tts_analysis.k_rows(config, values)
  assert all(r["saved_vs_iid"] == 1 - 1 / r["k"] for r in rows if r["sampler"] == COUPLED)
