"""The GRPO objective (qmotto.rl.loss): joined sequences, teacher-forced log-probabilities equal to the
sampling-time ones, the gradient at ratio one is the policy gradient, every aggregation is finite."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qmotto
from qmotto.models import llama
from qmotto.rl import advantages
from qmotto.rl import loss as loss_lib
from qmotto.rl import rewards as rewards_lib
from qmotto.tasks import prompting
from qmotto.train import data

from ..fakes import ReverseTask, char_reward

TASK = ReverseTask(max_digits=3)


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
  rewards = rewards_lib.score_rewards(char_reward, problems, texts)
  adv = advantages.advantages(rewards, "mean")
  rollout = loss_lib.make_rollout(model.params, jnp.asarray(prompts), jnp.asarray(lengths), out, adv,
                                  jnp.int32(tokenizer.pad_id), model_config=model.config, temperature=temperature,
                                  with_reference=True)
  return model, tokenizer, prompts, lengths, out, rollout


def test_join_sequences_matches_a_loop():
  prompts = np.array([[1, 5, 6, 0], [1, 7, 0, 0]], np.int32)
  lengths = np.array([3, 2], np.int32)
  completions = np.arange(2 * 3 * 2, dtype=np.int32).reshape(2, 3, 2) + 10
  got = np.asarray(loss_lib.join_sequences(jnp.asarray(prompts), jnp.asarray(lengths), jnp.asarray(completions), 0))
  for p in range(2):
    for i in range(3):
      want = list(prompts[p, : lengths[p]]) + list(completions[p, i])
      want += [0] * (6 - len(want))
      assert list(got[p * 3 + i]) == want


def test_teacher_forced_logprobs_match_sampling_time_logprobs():
  model, _, _, _, _, rollout = _rollout()
  logp, _ = loss_lib.completion_logprobs(model.params, model.config, rollout.tokens, rollout.prompt_lengths, 4,
                                         TEMPERATURE)
  mask = np.asarray(rollout.mask)
  assert mask.sum() > 0
  np.testing.assert_allclose(np.asarray(logp) * mask, np.asarray(rollout.old_logprobs) * mask, atol=2e-5)
  np.testing.assert_allclose(np.asarray(rollout.ref_logprobs), np.asarray(rollout.old_logprobs), atol=2e-5)


def test_gradient_at_ratio_one_is_the_policy_gradient():
  model, _, _, _, _, rollout = _rollout()
  cfg = model.config
  lconf = loss_lib.LossConfig(clip_eps=0.2, kl_coef=0.0, temperature=1.0, aggregation="sequence")
  # Old log-probs equal to the current ones, as for the first update on a batch.
  logp, _ = loss_lib.completion_logprobs(model.params, cfg, rollout.tokens, rollout.prompt_lengths, 4, 1.0)
  rollout = rollout._replace(old_logprobs=logp * rollout.mask)
  # The reference equal to the policy: the KL term and its gradient are 0.
  rollout_ref = rollout._replace(ref_logprobs=rollout.old_logprobs)
  # Ratios far outside the clip range with positive advantages: no gradient from those tokens.
  far = rollout._replace(old_logprobs=(logp - 1.0) * rollout.mask, advantages=jnp.abs(rollout.advantages) + 1.0)

  def surrogate(params):  # -(1 / (R N)) sum_i A_i log pi(y_i)
    lp, _ = loss_lib.completion_logprobs(params, cfg, rollout.tokens, rollout.prompt_lengths, 4, 1.0)
    return -jnp.sum(rollout.advantages * jnp.sum(lp * rollout.mask, axis=1)) / rollout.mask.size

  @jax.jit
  def all_grads(params):  # one compile for the four gradients.
    loss = lambda r, c: lambda p: loss_lib.policy_loss(p, cfg, r, c)[0]  # noqa: E731
    return (jax.grad(loss(rollout, lconf))(params), jax.grad(surrogate)(params),
            jax.grad(loss(rollout_ref, lconf._replace(kl_coef=0.5)))(params), jax.grad(loss(far, lconf))(params))

  grads, want, grads_kl, clipped_grads = all_grads(model.params)
  for a, b, c in zip(jax.tree.leaves(grads), jax.tree.leaves(want), jax.tree.leaves(grads_kl), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(np.asarray(c), np.asarray(b), rtol=1e-4, atol=1e-6)
  assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(want)) > 0
  assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(clipped_grads)) == 0.0
  _, metrics = loss_lib.policy_loss(model.params, cfg, rollout_ref, lconf._replace(kl_coef=0.5))
  assert abs(float(metrics["kl"])) < 1e-6
  assert float(loss_lib.policy_loss(model.params, cfg, far, lconf)[1]["clip_fraction"]) == 1.0


@pytest.mark.parametrize("aggregation", loss_lib.LOSS_AGGREGATIONS)
def test_aggregations_are_finite(aggregation):
  model, _, _, _, _, rollout = _rollout()
  loss, _ = jax.jit(loss_lib.policy_loss, static_argnums=(1, 3))(
      model.params, model.config, rollout, loss_lib.LossConfig(aggregation=aggregation))
  assert math.isfinite(float(loss))


def _fixed_batch():
  """Two completions of 3 tokens (lengths 3 and 1), hand-picked log-probabilities and advantages."""
  mask = jnp.array([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
  old = jnp.array([[-1.0, -2.0, -0.5], [-1.5, 0.0, 0.0]])
  # New minus old log-probs: log 1.5 (ratio 1.5), log 0.5, 0; and log 1.25 on the second completion.
  logp = old + jnp.log(jnp.array([[1.5, 0.5, 1.0], [1.25, 1.0, 1.0]]))
  rollout = loss_lib.Rollout(
      tokens=jnp.zeros((2, 5), jnp.int32), prompt_lengths=jnp.array([2, 2], jnp.int32), mask=mask,
      old_logprobs=old * mask, ref_logprobs=(old - 0.1) * mask, advantages=jnp.array([1.0, -2.0]))
  return logp, rollout


@pytest.mark.parametrize(
    "aggregation, clip_eps_high, want",
    [
        # Per-token objectives min(r A, clip(r) A): completion 0 (A = 1): r = 1.5 -> clip 1.2 -> 1.2;
        # r = 0.5 -> min(0.5, 0.8) = 0.5; r = 1 -> 1. Completion 1 (A = -2): r = 1.25 ->
        # min(-2.5, -2.4) = -2.5. Losses: -1.2, -0.5, -1.0 and 2.5.
        ("sequence", None, (-1.2 - 0.5 - 1.0 + 2.5) / 6),  # / (R N) = 6, Dr. GRPO.
        ("dr_grpo", None, (-1.2 - 0.5 - 1.0 + 2.5) / 6),
        ("token_mean", None, (-1.2 - 0.5 - 1.0 + 2.5) / 4),  # / 4 completion tokens, DAPO.
        ("token", None, (-1.2 - 0.5 - 1.0 + 2.5) / 4),
        ("sequence_mean", None, ((-1.2 - 0.5 - 1.0) / 3 + 2.5) / 2),  # the GRPO paper.
        ("grpo", None, ((-1.2 - 0.5 - 1.0) / 3 + 2.5) / 2),
        # Clip-higher 0.28: r = 1.5 -> 1.28 (A > 0); completion 1 is unchanged (min picks -2.5).
        ("token_mean", 0.28, (-1.28 - 0.5 - 1.0 + 2.5) / 4),
    ],
)
def test_objective_on_a_fixed_batch_equals_the_hand_computed_loss(aggregation, clip_eps_high, want):
  logp, rollout = _fixed_batch()
  config = loss_lib.LossConfig(clip_eps=0.2, aggregation=aggregation, clip_eps_high=clip_eps_high)
  loss, metrics = loss_lib.objective(logp, rollout, config)
  np.testing.assert_allclose(float(loss), want, rtol=1e-6)
  # Clipped terms active: r = 1.5 with A > 0 (always), r = 0.5 with A > 0 is not (min takes r A).
  np.testing.assert_allclose(float(metrics["clip_fraction"]), 1 / 4, rtol=1e-6)
  np.testing.assert_allclose(float(metrics["ratio_dev"]), 0.5, rtol=1e-6)


def test_objective_kl_term_on_a_fixed_batch():
  logp, rollout = _fixed_batch()
  loss, metrics = loss_lib.objective(logp, rollout, loss_lib.LossConfig(kl_coef=0.5, aggregation="token_mean"))
  # k3 per token with d = ref - new: exp(d) - d - 1, over the 4 completion tokens.
  d = np.asarray((rollout.ref_logprobs - logp) * rollout.mask)
  kl = float(((np.exp(d) - d - 1.0) * np.asarray(rollout.mask)).sum() / 4)
  np.testing.assert_allclose(float(metrics["kl"]), kl, rtol=1e-5)
  np.testing.assert_allclose(float(loss), float(metrics["pg_loss"]) + 0.5 * kl, atol=1e-6)


def test_unknown_aggregation_is_refused_with_the_allowed_names():
  logp, rollout = _fixed_batch()
  with pytest.raises(ValueError, match=r"loss aggregation must be one of .*'sequence'.* or an alias .*'dr_grpo'"):
    loss_lib.objective(logp, rollout, loss_lib.LossConfig(aggregation="sum"))
