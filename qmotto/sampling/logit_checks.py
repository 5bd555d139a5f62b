"""The one check of logits: a row the sampler cannot invert is an error, never a silent token.

A row is invalid when it holds a NaN or a +inf, or when every logit is -inf:
none of these is a distribution (a +inf would take all the mass, and
exp(inf - inf) is NaN), so the inverse CDF would return an arbitrary token.

Inside the jitted decode loops each step reduces its logits to one flag
(`invalid_rows`, any over the batch), carried to the end of the loop; the
caller then raises with `raise_if_invalid`:
  * eagerly (the usual call), a `ValueError` after the loop;
  * when the loop runs under the caller's own `jax.jit`, the check runs with
    the program (`jax.debug.callback`) and JAX surfaces the ValueError as a
    `jax.errors.JaxRuntimeError` (a RuntimeError) whose message holds the
    ValueError's text, "returned invalid logits" (a compiled program cannot
    raise Python exceptions of its own).
The dtype and shape of the logits are static and checked when the loop is
traced (`check_logits_array`): complex, bool and integer logits and an empty
vocabulary are refused with a ValueError, also under jit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

INVALID_LOGITS = (
    "{source} returned invalid logits: a row holds a NaN or a +inf, or every logit of a row "
    "is -inf (no distribution to sample from). {hint}"
)


def check_logits_array(logits: jax.Array, source: str, shape: tuple[int, ...] | None = None) -> None:
  """Raises ValueError unless `logits` are real floating point with a non-empty vocabulary.

  Static (dtype and shape only), so it runs when the decode loop is traced.

  Args:
    logits: float[..., V], what `source` returned.
    source: what produced them, named in the message (e.g. "logits_fn").
    shape: the expected leading shape (all but the vocabulary axis), if any.
  """
  dtype = jnp.result_type(logits)
  if not jnp.issubdtype(dtype, jnp.floating):
    raise ValueError(
        f"{source} must return real floating-point logits (float32, bfloat16, float16, ...), "
        f"got dtype {dtype}."
    )
  expected = "[" + ", ".join(map(str, shape)) + ", vocab]" if shape is not None else "[..., vocab]"
  if shape is not None and (logits.ndim != len(shape) + 1 or tuple(logits.shape[:-1]) != tuple(shape)):
    raise ValueError(f"{source} must return float{expected} logits, got shape {logits.shape}.")
  if logits.ndim < 1 or logits.shape[-1] == 0:
    raise ValueError(
        f"{source} returned logits over an empty vocabulary (shape {logits.shape}); "
        "at least one token is needed."
    )


def invalid_rows(logits: jax.Array) -> jax.Array:
  """bool[B]: the rows of float[B, V] logits with a NaN or +inf, or with every logit -inf."""
  bad_entry = jnp.isnan(logits) | (logits == jnp.inf)  # [B, V]
  return jnp.any(bad_entry, axis=-1) | jnp.all(logits == -jnp.inf, axis=-1)


def raise_if_invalid(invalid: jax.Array, source: str, hint: str) -> None:
  """Raises ValueError if `invalid` (bool[], from the decode loop) is set.

  Args:
    invalid: the loop's flag; a concrete value is checked now, a traced one
      (the loop ran under the caller's jit) when the program runs, where JAX
      wraps the ValueError in a `jax.errors.JaxRuntimeError` (module
      docstring).
    source: what produced the logits, e.g. "logits_fn" or "the model".
    hint: what to check, appended to the message.
  """
  message = INVALID_LOGITS.format(source=source, hint=hint)

  def check(value) -> None:
    if bool(np.asarray(value)):
      raise ValueError(message)

  if isinstance(invalid, jax.core.Tracer):
    jax.debug.callback(check, invalid)
  elif isinstance(invalid, jax.Array) and not invalid.is_fully_addressable:
    check(invalid.addressable_data(0))  # replicated over several processes: each holds the whole flag.
  else:
    check(invalid)
