"""The GRPO objective: rollouts, teacher-forced log-probabilities, the clipped-ratio loss, the train step.

    rollout = make_rollout(ref_params, prompts, prompt_lengths, generate_output, advantages, pad_id,
                           model_config=model_config, temperature=1.0, with_reference=False)
    state, metrics = train_step(state, rollout, model_config=model_config, opt=opt, loss_config=LossConfig())

The loss (per completion token t of sample i, mask m by its length):
    ratio = exp(logp_new - logp_old),
    obj   = min(ratio * A_i, clip(ratio, 1 - eps, 1 + eps_high) * A_i)
    kl    = exp(logp_ref - logp_new) - (logp_ref - logp_new) - 1   (k3)
    per-token loss = -obj + kl_coef * kl
logp_old are `generate`'s sampling-time log-probabilities; logp_new are
recomputed by a teacher-forced forward pass over prompt + completion, both
of logits / temperature. With one update per batch the ratio is 1 up to
float rounding and the gradient is the policy gradient. eps_high = eps
unless `clip_eps_high` is set (DAPO's "clip-higher": a larger upper bound
lets the probability of unlikely good tokens grow faster).

Aggregation (`LOSS_AGGREGATIONS`), with per-token loss l_it and mask m_it
over the R = B * G completions of N tokens:
  * "sequence": sum_it m_it l_it / (R N), a constant divisor, so at ratio 1
    the gradient is exactly -(1 / (R N)) sum_i A_i grad log pi(y_i): with a
    fixed baseline it is unbiased under coupling (`qmotto.rl.advantages`).
    This is Dr. GRPO's "no length normalisation" (TRL loss_type="dr_grpo").
  * "token_mean": sum_it m_it l_it / sum_it m_it, the mean over the batch's
    completion tokens (DAPO; TRL "dapo" / "bnpo").
  * "sequence_mean": mean_i (sum_t m_it l_it / sum_t m_it), the mean of the
    completions' token means (the GRPO paper; TRL "grpo").
The last two weight tokens by length-dependent factors. The peers' names are
accepted as aliases (`AGGREGATION_ALIASES`): "dr_grpo" -> "sequence",
"token" and "dapo" -> "token_mean", "grpo" -> "sequence_mean". Dr. GRPO also
drops the group std from the advantages: advantage "mean"
(`qmotto.rl.advantages`).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from qmotto import decode
from qmotto.models import llama
from qmotto.train import state as state_lib

LOSS_AGGREGATIONS = ("sequence", "token_mean", "sequence_mean")
# The names other GRPO implementations use (TRL, verl, the papers) for the same aggregations.
AGGREGATION_ALIASES = {"dr_grpo": "sequence", "token": "token_mean", "dapo": "token_mean", "grpo": "sequence_mean"}


def resolve_aggregation(name) -> str:
  """The canonical aggregation (one of LOSS_AGGREGATIONS) for `name` or its alias.

  Raises:
    ValueError: naming the allowed names and aliases.
  """
  if isinstance(name, str):
    name = AGGREGATION_ALIASES.get(name, name)
    if name in LOSS_AGGREGATIONS:
      return name
  raise ValueError(
      f"loss aggregation must be one of {LOSS_AGGREGATIONS} or an alias {sorted(AGGREGATION_ALIASES)}, "
      f"got {name!r}."
  )


class LossConfig(NamedTuple):
  """The objective's settings (hashable: a static jit argument).

  Attributes:
    clip_eps: the ratio is clipped to [1 - clip_eps, 1 + clip_eps_high].
    kl_coef: weight of the k3 KL estimate to the reference model (0: none).
    temperature: logits are divided by it (as when sampling).
    aggregation: one of LOSS_AGGREGATIONS or an alias (AGGREGATION_ALIASES).
    clip_eps_high: the upper clip (DAPO's clip-higher, e.g. 0.28); None:
      clip_eps (symmetric).
  """

  clip_eps: float = 0.2
  kl_coef: float = 0.0
  temperature: float = 1.0
  aggregation: str = "sequence"
  clip_eps_high: float | None = None


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
  """The aggregation of per-token values [R, N] under the mask (the module docstring)."""
  aggregation = resolve_aggregation(aggregation)
  total = values * mask
  if aggregation == "sequence":
    return jnp.sum(total) / mask.size
  if aggregation == "token_mean":
    return jnp.sum(total) / jnp.maximum(jnp.sum(mask), 1.0)
  return jnp.mean(jnp.sum(total, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1.0))  # sequence_mean.


def policy_loss(
    params, model_config: llama.LlamaConfig, rollout: Rollout, loss_config: LossConfig
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The clipped-ratio objective with an optional KL penalty (the module docstring's formula).

  Returns:
    (loss float32[], {"pg_loss", "kl", "entropy", "clip_fraction" (tokens whose
    clipped term is the active one), "ratio_dev" (max |ratio - 1| over
    tokens)}).
  """
  num_new = rollout.mask.shape[1]
  logp, entropy = completion_logprobs(
      params, model_config, rollout.tokens, rollout.prompt_lengths, num_new, loss_config.temperature
  )
  loss, metrics = objective(logp, rollout, loss_config)
  tokens = jnp.maximum(jnp.sum(rollout.mask), 1.0)
  return loss, {**metrics, "entropy": jnp.sum(entropy * rollout.mask) / tokens}


def objective(logp: jax.Array, rollout: Rollout, loss_config: LossConfig) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The loss from the current log-probabilities of the rollout's tokens (no model call).

  Args:
    logp: float32[R, N], log pi_new of each completion token.
    rollout: the rollout (its mask, old and reference log-probs, advantages).
    loss_config: the objective's settings.

  Returns:
    (loss float32[], {"pg_loss", "kl", "clip_fraction", "ratio_dev"}).
  """
  mask = rollout.mask
  log_ratio = jnp.where(mask > 0, logp - rollout.old_logprobs, 0.0)
  ratio = jnp.exp(log_ratio)
  adv = rollout.advantages[:, None]
  low = loss_config.clip_eps
  high = low if loss_config.clip_eps_high is None else loss_config.clip_eps_high
  unclipped, clipped = ratio * adv, jnp.clip(ratio, 1.0 - low, 1.0 + high) * adv
  pg_loss = _aggregate(-jnp.minimum(unclipped, clipped), mask, loss_config.aggregation)
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
      "clip_fraction": jnp.sum((clipped < unclipped) * mask) / tokens,
      "ratio_dev": jnp.max(jnp.abs(ratio - 1.0) * mask),
  }
  return loss, metrics


@functools.partial(jax.jit, static_argnames=("model_config", "opt", "loss_config"))
def train_step(
    state: state_lib.TrainState, rollout: Rollout, *, model_config: llama.LlamaConfig,
    opt: state_lib.OptimizerConfig, loss_config: LossConfig,
) -> tuple[state_lib.TrainState, dict[str, jax.Array]]:
  """One optax update on a rollout; state.step counts updates.

  Returns:
    (the next TrainState, {"loss", "grad_norm" (before clipping), "lr", and
    `policy_loss`'s metrics}).
  """
  (loss, metrics), grads = jax.value_and_grad(policy_loss, has_aux=True)(
      state.params, model_config, rollout, loss_config
  )
  updates, opt_state = state_lib.make_optimizer(opt).update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = {
      **metrics, "loss": loss, "grad_norm": state_lib.global_norm(grads),
      "lr": state_lib.learning_rate_schedule(opt)(state.step),
  }
  return state_lib.TrainState(state.step + 1, params, opt_state), metrics


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
