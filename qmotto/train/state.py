"""What the SFT and GRPO trainers share about the optimizer: the train state and AdamW.

    opt = OptimizerConfig.from_config(config)           # or built field by field
    state = TrainState(jnp.int32(0), params, make_optimizer(opt).init(params))
    updates, opt_state = make_optimizer(opt).update(grads, state.opt_state, state.params)

The optimizer is global-norm clipping, then AdamW (weight decay on matrices
only) with linear warmup and cosine decay (`learning_rate_schedule`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax


class TrainState(NamedTuple):
  """What the train step carries (a pytree).

  Attributes:
    step: int32[] optimizer updates taken.
    params: the model's parameter tree.
    opt_state: the optax state.
  """

  step: jax.Array
  params: Any
  opt_state: Any


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
    """The fields of the same names in `config` (an ml_collections config or a dict)."""
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


def global_norm(tree) -> jax.Array:
  """float32[] the L2 norm of all the arrays of `tree` together (the gradient norm before clipping)."""
  return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def num_params(params) -> int:
  """The number of parameters (array elements) in a parameter tree."""
  return int(sum(np.prod(np.shape(x)) for x in jax.tree.leaves(params)))
