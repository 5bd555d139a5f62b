"""Counting traces in tests through JAX's own monitoring events, not counters in library code.

    with tracing.count_traces() as traces:
      run_something()
    assert traces["train_step"] == 1

Every trace of a jitted function records the event JAXPR_TRACE_EVENT with the
function's name (`jax.monitoring`); a listener registered for the block counts
them by name. Only the traces made inside the block are counted: a function
whose compiled program is already cached is not traced again.
"""

import collections
import contextlib

import jax

JAXPR_TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"


@contextlib.contextmanager
def count_traces():
  """Yields a Counter: function name -> traces inside the block."""
  counts = collections.Counter()

  def listener(event, duration, **kwargs):
    del duration
    if event == JAXPR_TRACE_EVENT:
      counts[kwargs.get("fun_name", "?")] += 1

  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    yield counts
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)


def _sub_jaxprs(params: dict):
  for value in params.values():
    for item in value if isinstance(value, (list, tuple)) else (value,):
      if isinstance(item, jax.extend.core.ClosedJaxpr):
        yield item.jaxpr
      elif isinstance(item, jax.extend.core.Jaxpr):
        yield item


def loop_body_primitives(fn, *args) -> collections.Counter:
  """The primitives in the body of every `while_loop` of `fn(*args)`'s jaxpr, nested calls included.

  What a decode loop does per step, counted without compiling: a test can
  assert that work which does not depend on the step stays outside the
  loop.
  """
  counts = collections.Counter()

  def walk(jaxpr, inside: bool) -> None:
    for eqn in jaxpr.eqns:
      if eqn.primitive.name == "while":
        walk(eqn.params["body_jaxpr"].jaxpr, True)
        continue
      if inside:
        counts[eqn.primitive.name] += 1
      for sub in _sub_jaxprs(eqn.params):
        walk(sub, inside)

  walk(jax.make_jaxpr(fn)(*args).jaxpr, False)
  return counts
