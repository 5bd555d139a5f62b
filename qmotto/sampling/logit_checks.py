"""The one check of logits: a row the sampler cannot invert is an error, never a silent token.

Inside the jitted decode loops each step reduces its logits to one flag
(`invalid_rows`, any over the batch), carried to the end of the loop; the
caller then raises with `raise_if_invalid`, eagerly after the loop or, when
the loop runs under the caller's own `jax.jit`, through `jax.debug.callback`
when the program runs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

INVALID_LOGITS = (
    "{source} returned invalid logits: a row holds a NaN, or every logit of a row is -inf "
    "(no token can be sampled). {hint}"
)


def invalid_rows(logits: jax.Array) -> jax.Array:
  """bool[B]: the rows of float[B, V] logits with a NaN, or with every logit -inf."""
  return jnp.any(jnp.isnan(logits), axis=-1) | jnp.all(logits == -jnp.inf, axis=-1)


def raise_if_invalid(invalid: jax.Array, source: str, hint: str) -> None:
  """Raises ValueError if `invalid` (bool[], from the decode loop) is set.

  Args:
    invalid: the loop's flag; a concrete value is checked now, a traced one
      (the loop ran under the caller's jit) when the program runs.
    source: what produced the logits, e.g. "logits_fn" or "the model".
    hint: what to check, appended to the message.
  """
  message = INVALID_LOGITS.format(source=source, hint=hint)

  def check(value) -> None:
    if bool(np.asarray(value)):
      raise ValueError(message)

  if isinstance(invalid, jax.core.Tracer):
    jax.debug.callback(check, invalid)
  else:
    check(invalid)
