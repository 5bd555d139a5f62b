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
