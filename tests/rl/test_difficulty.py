"""The difficulty-targeted prompt pool: the band, the cached pre-pass, and a GRPO run that trains only inside it."""

from __future__ import annotations

import json
import os
import sys

import jax
import numpy as np
import pytest

from qmotto.models import llama
from qmotto.rl import difficulty
from qmotto.rl import grpo
from qmotto.train import data

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
from ..fakes import ReverseTask, char_reward, override  # noqa: E402
from configs import grpo as grpo_config  # noqa: E402

TASK = ReverseTask(max_digits=3)


def test_band_keeps_the_half_open_interval_in_order():
  problems = list("abcdef")
  estimate = [0.0, 0.125, 0.25, 0.3, 1.0, 0.25]
  assert difficulty.band_pool(problems, estimate, 0.0, 0.25) == ["b", "c", "f"]  # 0 is out, 0.25 is in.
  assert difficulty.band_pool(problems, estimate, 0.25, 1.0) == ["d", "e"]
  with pytest.raises(ValueError, match=r"needs 0 <= low < high <= 1, got \(0.5, 0.5\]"):
    difficulty.band_pool(problems, estimate, 0.5, 0.5)
  with pytest.raises(ValueError, match="one value per problem"):
    difficulty.band_pool(problems, estimate[:-1], 0.0, 1.0)


def test_estimate_is_computed_once_and_then_read_from_the_cache(tmp_path):
  calls = []

  def compute():
    calls.append(1)
    return [0.5, 0.25]

  settings = {"task": "reverse", "samples": 4}
  first = difficulty.cached_estimate(str(tmp_path), settings, compute)
  second = difficulty.cached_estimate(str(tmp_path), settings, compute)
  np.testing.assert_array_equal(first, second)
  assert len(calls) == 1
  other = difficulty.cached_estimate(str(tmp_path), {**settings, "samples": 8}, compute)  # other settings: a miss.
  assert len(calls) == 2 and len(os.listdir(tmp_path)) == 2
  path = difficulty.cache_path(str(tmp_path), settings)
  saved = json.loads(open(path).read())
  saved["settings"]["samples"] = 99  # a file that does not hold what its name says.
  with open(path, "w") as f:
    json.dump(saved, f)
  with pytest.raises(ValueError, match="holds another difficulty estimate"):
    difficulty.cached_estimate(str(tmp_path), settings, compute)
  np.testing.assert_array_equal(other, [0.5, 0.25])


def test_estimate_success_counts_passing_samples(monkeypatch):
  config = data.task_model_config(
      grpo_config.get_config("task=countdown,smoke").model, data.task_tokenizer(TASK).vocab_size, 12)
  model = llama.init_model(config, jax.random.key(0))
  problems = TASK.problems("train", 3, start=0)
  scored = []

  def score_text(self, problem, text, style):  # passes completions of even length; records every call.
    scored.append((problem.index, len(text) % 2 == 0))
    return float(len(text) % 2 == 0)

  monkeypatch.setattr(type(TASK), "score_text", score_text)  # the class: the task is a frozen dataclass.
  # batch_size 2 over 3 problems: the last chunk is padded with a real prompt, whose samples must not count.
  estimate = difficulty.estimate_success(
      jax.random.key(1), model, data.task_tokenizer(TASK), TASK, problems, prompt_len=6, max_new_tokens=4,
      num_samples=8, batch_size=2)
  assert len(scored) == 3 * 8
  expected = [np.mean([ok for index, ok in scored if index == p.index]) for p in problems]
  np.testing.assert_array_equal(estimate, expected)
  assert len({ok for _, ok in scored}) == 2  # both outcomes occur, so the counting is tested.


def test_grpo_trains_only_on_the_band_and_records_it(tmp_path, monkeypatch):
  seen = []

  def fake_estimate(key, model, tokenizer, task, problems, **kwargs):
    return np.array([(p.index % 4) / 4 for p in problems])  # 0, 0.25, 0.5, 0.75 by index.

  def reward(problem, text):
    seen.append(problem.index)
    return char_reward(problem, text)

  monkeypatch.setattr(difficulty, "estimate_success", fake_estimate)
  config = override(grpo_config.get_config("task=countdown,sampler=lattice,smoke"), prompt_len=5, max_new_tokens=4,
                    num_steps=1, eval_every=0, checkpoint_every=1, warmup_steps=0, band_low=0.0, band_high=0.25,
                    band_candidates=16, band_cache_dir=str(tmp_path / "cache"), eval_band=True, eval_problems=2,
                    eval_band_candidates=8)
  metrics = grpo.train(config, str(tmp_path / "work"), task=TASK, reward_fn=reward)
  band = metrics["band"]
  assert band["candidates"] == 16 and band["pool_size"] == 4 and band["share"] == 0.25
  assert metrics["eval_band"]["candidates"] == 8 and metrics["eval_band"]["pool_size"] == 2
  assert metrics["eval_band"]["cache"] != band["cache"]  # the test split's estimate is cached apart.
  policy = grpo.initial_policy(config, task=TASK)
  held_out, _ = grpo.eval_problems(config, policy)
  assert [p.index for p in held_out] == [1, 5] and held_out == [p for p in TASK.problems("test", 8) if p.index % 4 == 1]
  with pytest.raises(ValueError, match="holds 2 of config.eval_band_candidates=8 test problems, fewer than "
                                       "config.eval_problems=3; raise eval_band_candidates"):
    grpo.eval_problems(override(config, eval_problems=3), policy)
  assert seen and all(i % 4 == 1 for i in seen)  # estimate 0.25: inside (0, 0.25].
  assert os.path.exists(band["cache"])
  with pytest.raises(ValueError, match="config.train_pool_size=8: a difficulty band"):
    grpo.check_config(override(config, train_pool_size=8))
  with pytest.raises(ValueError, match="config.band_low must be < config.band_high"):
    grpo.check_config(override(config, train_pool_size=0, band_low=0.5, band_high=0.5))
  with pytest.raises(ValueError, match="config.eval_band evaluates on the test problems of the difficulty band"):
    grpo.check_config(override(config, band_low=0.0, band_high=1.0))
