"""Tests of the model-agnostic decode loop (qmotto.decode.loop): API, determinism, tracing, batching, slices, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qmotto
from qmotto import decode
from tests import tracing
from tests.sampling import toy_models

MODEL = toy_models.PrefixTableModel(vocab=3, length=4, seed=0)


@pytest.mark.parametrize("sampler", sorted(qmotto.SAMPLERS))
def test_shape_dtype_and_determinism(sampler):
  key = jax.random.key(0)
  a = qmotto.sample_sequences(key, MODEL.logits_fn, num_samples=8, length=4, sampler=sampler)
  b = qmotto.sample_sequences(key, MODEL.logits_fn, num_samples=8, length=4, sampler=sampler)
  assert a.shape == (8, 4) and a.dtype == jnp.int32
  np.testing.assert_array_equal(a, b)
  assert ((np.asarray(a) >= 0) & (np.asarray(a) < 3)).all()


def test_keys_give_different_samples():
  draws = [
      np.asarray(qmotto.sample_sequences(jax.random.key(i), MODEL.logits_fn, num_samples=8, length=4))
      for i in range(3)
  ]
  assert not np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[1], draws[2])


def test_signature_defaults():
  import inspect

  params = inspect.signature(qmotto.sample_sequences).parameters
  # The signature the project promises, exactly.
  assert list(params) == [
      "key", "logits_fn", "num_samples", "length", "sampler", "temperature", "top_k", "top_p", "min_p"
  ]
  assert params["sampler"].default == "lattice" and params["temperature"].default == 1.0
  for name in ("top_k", "top_p", "min_p"):
    assert params[name].default is None


def test_logits_fn_sees_padding_beyond_t_and_traced_step():
  seen = []

  def logits_fn(tokens, t):
    seen.append(type(t))
    beyond = jnp.arange(tokens.shape[-1]) >= t
    ok = jnp.all(jnp.where(beyond, tokens == 7, True))
    # NaN logits (an error) if a position >= t is not padding.
    return jnp.where(ok, jnp.zeros((tokens.shape[0], 5)), jnp.nan)

  out = qmotto.sample_sequences_batched(
      jax.random.key(1), lambda tokens, t: logits_fn(tokens[0], t)[None], num_groups=1, num_samples=4,
      length=6, pad_id=7,
  )
  assert out.shape == (1, 4, 6) and (np.asarray(out) < 5).all()
  assert all(issubclass(tp, jax.core.Tracer) for tp in seen)


def test_one_trace_per_shape():
  traces = []

  def logits_fn(tokens, t):
    traces.append(tokens.shape)
    return MODEL.logits_fn(tokens, t)

  for i in range(3):
    qmotto.sample_sequences(jax.random.key(i), logits_fn, num_samples=8, length=4, sampler="sobol")
  assert len(traces) == 1
  jitted = jax.jit(
      lambda k: qmotto.sample_sequences(k, logits_fn, num_samples=16, length=4, sampler="lattice")
  )
  for i in range(3):
    jitted(jax.random.key(i)).block_until_ready()
  assert len(traces) == 2
  qmotto.sample_sequences(jax.random.key(0), logits_fn, num_samples=16, length=4, sampler="stratified")
  assert len(traces) == 3  # a new sampler is a new static argument.


def test_under_jit_and_lax_map():
  keys = jax.random.split(jax.random.key(3), 5)
  f = lambda k: qmotto.sample_sequences(k, MODEL.logits_fn, num_samples=8, length=4, sampler="lattice")
  mapped = jax.jit(lambda ks: jax.lax.map(f, ks))(keys)
  eager = np.stack([np.asarray(f(k)) for k in keys])
  np.testing.assert_array_equal(mapped, eager)


def test_batched_groups_are_independent_and_addressable():
  key = jax.random.key(5)
  batched_fn = lambda tokens, t: MODEL.logits_fn(tokens, t)
  full = qmotto.sample_sequences_batched(
      key, batched_fn, num_groups=6, num_samples=8, length=4, sampling="sobol"
  )
  assert full.shape == (6, 8, 4)
  # Group 0 of the batched form is the single-group call with the same key.
  single = qmotto.sample_sequences(key, MODEL.logits_fn, num_samples=8, length=4, sampler="sobol")
  np.testing.assert_array_equal(full[0], single)
  # Any subset of groups, computed on its own, equals the same groups of the whole.
  part = qmotto.sample_sequences_batched(
      key, batched_fn, num_groups=2, num_samples=8, length=4, sampling="sobol",
      group_ids=jnp.array([4, 1]),
  )
  np.testing.assert_array_equal(part, full[np.array([4, 1])])
  # The same with the options object: a name is the default transform.
  with_options = qmotto.sample_sequences_batched(
      key, batched_fn, num_groups=6, num_samples=8, length=4, sampling=qmotto.SamplingOptions.create("sobol")
  )
  np.testing.assert_array_equal(with_options, full)
  # Groups are randomized independently: not all equal.
  assert len({np.asarray(g).tobytes() for g in full}) > 1


def test_lattice_group_members_spread_out():
  # One step, uniform over 8 tokens: a lattice group of 8 gets all 8 tokens.
  logits_fn = lambda tokens, t: jnp.zeros((8, 8))
  for i in range(5):
    out = qmotto.sample_sequences(jax.random.key(i), logits_fn, num_samples=8, length=1)
    assert sorted(np.asarray(out)[:, 0].tolist()) == list(range(8))


def test_greedy_every_sample_is_the_argmax_path():
  out = np.asarray(
      qmotto.sample_sequences(jax.random.key(0), MODEL.logits_fn, num_samples=4, length=4, temperature=0.0)
  )
  tokens = np.zeros((1, 4), np.int32)
  for t in range(4):
    tokens[0, t] = int(np.argmax(np.asarray(MODEL.logits_fn(jnp.asarray(tokens), t))[0]))
  np.testing.assert_array_equal(out, np.repeat(tokens, 4, 0))


def test_sampler_objects_and_names():
  s = qmotto.get_sampler("lattice")
  assert s == qmotto.Sampler("lattice", "code") and s.name == "lattice" and hash(s)
  custom = qmotto.Sampler("sobol", "token", scramble="lms", pad="iid")
  out = qmotto.sample_sequences(jax.random.key(0), MODEL.logits_fn, num_samples=4, length=4, sampler=custom)
  assert out.shape == (4, 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sampler="halton"), "unknown name 'halton'"),
        (dict(sampler="sobol", num_samples=6), "power of two"),
        (dict(temperature=-0.5), "temperature"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.2), "top_p"),
        (dict(top_k=0), "top_k"),
        (dict(min_p=2.0), "min_p"),
        (dict(length=0), "length"),
        (dict(num_samples=0), "num_samples"),
    ],
)
def test_bad_arguments(kwargs, match):
  args = dict(num_samples=8, length=4)
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    qmotto.sample_sequences(jax.random.key(0), MODEL.logits_fn, **args)


def test_bad_sampler_objects():
  with pytest.raises(ValueError, match="mode"):
    qmotto.Sampler("lattice", "cod")
  with pytest.raises(ValueError, match="points='iid' needs mode='token'"):
    qmotto.Sampler("iid", "code")
  with pytest.raises(ValueError, match="unknown point set"):
    qmotto.Sampler("halton")


def test_sobol_token_mode_beyond_max_dimension():
  logits_fn = lambda tokens, t: jnp.zeros((2, 3))
  with pytest.raises(ValueError, match="pad='iid'"):
    qmotto.sample_sequences(
        jax.random.key(0), logits_fn, num_samples=2, length=qmotto.qmc.SOBOL_MAX_DIM + 1, sampler="sobol"
    )


@pytest.mark.parametrize(
    "bad_row",
    [np.array([0.0, np.nan, 1.0]), np.array([-np.inf, -np.inf, -np.inf])],
    ids=["nan", "all_neg_inf"],
)
def test_invalid_logits_raise_eagerly_and_under_jit(bad_row):
  def logits_fn(tokens, t):
    rows = jnp.zeros((tokens.shape[0], 3)).at[1].set(jnp.asarray(bad_row, jnp.float32))
    return jnp.where(t == 2, rows, jnp.zeros_like(rows))

  with pytest.raises(ValueError, match="invalid logits"):
    qmotto.sample_sequences(jax.random.key(0), logits_fn, num_samples=4, length=4)
  jitted = jax.jit(lambda k: qmotto.sample_sequences(k, logits_fn, num_samples=4, length=4))
  with pytest.raises(Exception, match="invalid logits"):
    jitted(jax.random.key(0)).block_until_ready()


def test_check_logits_off_skips_the_check():
  def logits_fn(tokens, t):
    return jnp.zeros((tokens.shape[0], tokens.shape[1], 3)).at[:, 1].set(jnp.nan)

  options = qmotto.SamplingOptions.create("lattice", check_logits=False)
  out = qmotto.sample_sequences_batched(
      jax.random.key(0), logits_fn, num_groups=1, num_samples=4, length=2, sampling=options
  )
  assert out.shape == (1, 4, 2)
  with pytest.raises(ValueError, match="invalid logits"):
    qmotto.sample_sequences_batched(jax.random.key(0), logits_fn, num_groups=1, num_samples=4, length=2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sampling=3), "sampling must be a qmotto.SamplingOptions, a qmotto.Sampler or a sampler name"),
        (dict(sampling="nope"), "unknown name 'nope'"),
        (dict(num_groups=0), "num_groups must be an int >= 1"),
        (dict(group_ids=jnp.arange(5)), r"group_ids must be int\[2\] \(one id per group\)"),
        (dict(logits_fn="table"), "logits_fn must be callable"),
    ],
)
def test_batched_bad_arguments(kwargs, match):
  args = dict(logits_fn=lambda tokens, t: MODEL.logits_fn(tokens, t), num_groups=2, num_samples=8, length=4)
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    qmotto.sample_sequences_batched(jax.random.key(0), **args)


def test_wrong_logits_shape_is_reported():
  with pytest.raises(ValueError, match="logits_fn must return"):
    qmotto.sample_sequences(jax.random.key(0), lambda tok, t: jnp.zeros((3,)), num_samples=4, length=2)


def test_decode_state_is_a_pytree():
  state = decode.DecodeState(
      step=jnp.int32(0), tokens=jnp.zeros((1, 2, 3), jnp.int32), codes=jnp.zeros((1, 2), jnp.uint32),
      invalid=jnp.bool_(False),
  )
  assert len(jax.tree_util.tree_leaves(state)) == 4


SLICED = ["lattice_extensible", "sobol", "lattice"]  # code mode (extensible), token mode, and the natural-order lattice.


@pytest.mark.parametrize("sampler", SLICED)
def test_a_slice_holds_the_whole_groups_slots(sampler):
  """GroupSlice(o, b, N) draws slots [o, o + b) of each group of N, for any
  sampler (bit for bit: the logits_fn is row-wise, so the batch layout does
  not matter). Only for an extensible sampler is the first slice also the
  group of b itself; the natural-order lattice makes another (checked for
  the two lattices; tests/sampling/test_samplers.py checks every sampler's
  words)."""
  key, ids = jax.random.key(8), jnp.array([3, 0, 9])
  kw = dict(num_groups=3, length=4, sampling=sampler, group_ids=ids)
  whole = np.asarray(qmotto.sample_sequences_batched(key, MODEL.logits_fn, num_samples=16, **kw))
  with tracing.count_traces() as traces:
    for offset in range(0, 16, 4):
      part = qmotto.sample_sequences_batched(key, MODEL.logits_fn, num_samples=decode.GroupSlice(offset, 4, 16), **kw)
      assert part.shape == (3, 4, 4)
      np.testing.assert_array_equal(part, whole[:, offset : offset + 4], err_msg=f"offset {offset}")
  assert traces["sample_groups"] == 1  # the offset is data.
  if sampler in ("lattice", "lattice_extensible"):
    alone = np.asarray(qmotto.sample_sequences_batched(key, MODEL.logits_fn, num_samples=4, **kw))
    assert np.array_equal(alone, whole[:, :4]) == (sampler == "lattice_extensible")


def test_slice_offset_may_be_traced():
  key = jax.random.key(2)
  kw = dict(num_groups=2, length=4, sampling="lattice_extensible")
  sliced = jax.jit(
      lambda o: qmotto.sample_sequences_batched(key, MODEL.logits_fn, num_samples=decode.GroupSlice(o, 2, 8), **kw)
  )
  whole = np.asarray(qmotto.sample_sequences_batched(key, MODEL.logits_fn, num_samples=8, **kw))
  np.testing.assert_array_equal(sliced(jnp.int32(6)), whole[:, 6:])


@pytest.mark.parametrize(
    "slots, sampling, match",
    [
        (decode.GroupSlice(12, 8, 16), "lattice", r"offset \+ size = 12 \+ 8 exceeds group_size=16"),
        (decode.GroupSlice(0, 32, 16), "lattice", r"GroupSlice.size=32 exceeds GroupSlice.group_size=16"),
        (decode.GroupSlice(0, 0, 16), "lattice", r"GroupSlice.size must be an int >= 1"),
        (decode.GroupSlice(-1, 4, 16), "lattice", r"GroupSlice.offset must be an int >= 0"),
        (decode.GroupSlice(1.0, 4, 16), "lattice", r"GroupSlice.offset must be an int >= 0"),
        (decode.GroupSlice(0, 4, 12), "sobol", r"GroupSlice.group_size=12: sampler 'sobol' needs a power of two"),
        (decode.GroupSlice(0, 4, 12), "lattice_extensible", r"GroupSlice.group_size=12: .* needs a power of two"),
    ],
)
def test_bad_slices(slots, sampling, match):
  with pytest.raises(ValueError, match=match):
    qmotto.sample_sequences_batched(
        jax.random.key(0), MODEL.logits_fn, num_groups=2, num_samples=slots, length=4, sampling=sampling
    )
