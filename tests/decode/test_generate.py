"""Tests of qmotto.decode.generate: exact reuse of the samplers, the cache
path against a full-forward reference, EOS, shared prefill, tracing, bad input."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qmotto
from qmotto import decode
from qmotto import models
from qmotto.decode.generate import generate_groups
from qmotto.decode.generate import prepare_generate

from tests import tracing
from tests.models import helpers
from tests.sampling import reference

MODEL = helpers.random_model(7, max_seq_len=24)
PROMPTS = np.array([[5, 9, 2, 0, 0, 0], [7, 1, 4, 4, 8, 3], [11, 0, 0, 0, 0, 0]], np.int32)
LENGTHS = np.array([3, 6, 1], np.int32)
K, N = 8, 7
GREEDY = qmotto.SamplingOptions.create("lattice", temperature=0.0)
TRANSFORM = dict(temperature=0.7, top_k=20, top_p=0.95, min_p=0.01)
SOBOL_OPTIONS = dict(sampling=qmotto.SamplingOptions.create("sobol", **TRANSFORM))


def _generate(key=0, model=MODEL, prompts=PROMPTS, lengths=LENGTHS, **kwargs):
  kwargs = dict(num_samples=K, max_new_tokens=N) | kwargs
  return decode.generate(jax.random.key(key), model, prompts, lengths, **kwargs)


def _bigram_model(seed: int) -> models.Model:
  """A Llama whose logits depend on the current input token only: attention
  and MLP outputs are exactly zero (o and down kernels are 0)."""
  model = helpers.random_model(seed, max_seq_len=24)
  params = jax.tree.map(np.array, model.params)
  for i in range(model.config.num_layers):
    params["layers"]["attn"]["o"]["kernel"][i] = 0.0
    params["layers"]["mlp"]["down"]["kernel"][i] = 0.0
  return models.Model(model.config, params)


def _bigram_logits_fn(table: np.ndarray, last_prompt_tokens: np.ndarray):
  """sample_sequences_batched's view of the bigram model: the row of the
  previous token, or of the group's last prompt token at t = 0."""
  table, last = jnp.asarray(table), jnp.asarray(last_prompt_tokens)

  def logits_fn(tokens, t):  # [G, k, L] -> [G, k, V]
    prev = jax.lax.dynamic_index_in_dim(tokens, jnp.maximum(t - 1, 0), -1, False)  # [G, k]
    prev = jnp.where(t > 0, prev, last[:, None])
    return table[prev]

  return logits_fn


@pytest.mark.parametrize("options", ["lattice", qmotto.SamplingOptions.create("sobol", **TRANSFORM)])
def test_same_tokens_as_sample_sequences_batched(options):
  """With logits that ignore the prompt (but for its last token), generate
  draws exactly the tokens of the model-agnostic sampler: same uniforms,
  same groups (group p = fold_in(key, p)), same coupled_step."""
  model = _bigram_model(8)
  vocab = model.config.vocab_size
  table = np.asarray(models.forward_logits(model, np.arange(vocab)[:, None]))[:, 0]  # [V, V]
  last = PROMPTS[np.arange(3), LENGTHS - 1]
  key = jax.random.key(21)
  expected = qmotto.sample_sequences_batched(
      key, _bigram_logits_fn(table, last), num_groups=3, num_samples=K, length=N, sampling=options
  )
  out = decode.generate(key, model, PROMPTS, LENGTHS, num_samples=K, max_new_tokens=N, sampling=options)
  np.testing.assert_array_equal(out.tokens, expected)
  np.testing.assert_array_equal(out.lengths, N)
  assert len({tuple(s) for s in np.asarray(out.tokens).reshape(-1, N)}) > 3 * K // 2  # not degenerate.

  # With an EOS: the same tokens up to and including the first EOS, then padding.
  expected = np.asarray(expected)
  eos = int(np.bincount(expected[:, :, :3].ravel()).argmax())  # a token that occurs early.
  out = decode.generate(
      key, model, PROMPTS, LENGTHS, num_samples=K, max_new_tokens=N, sampling=options, eos_id=eos, pad_id=vocab - 1,
  )
  hit = expected == eos
  first = np.where(hit.any(-1), hit.argmax(-1) + 1, N)  # [P, k] lengths
  np.testing.assert_array_equal(out.lengths, first)
  keep = np.arange(N) < first[..., None]
  np.testing.assert_array_equal(out.tokens, np.where(keep, expected, vocab - 1))
  assert (first < N).any() and (first == N).any()


def _full_forward_logits_fn(model, prompts, lengths, k):
  """The reference: every step runs the full forward pass (no cache) over
  prompt + sampled tokens and reads the logits at position len + t - 1."""
  prompts, lengths = jnp.asarray(prompts), jnp.asarray(lengths)
  num_prompts, prompt_len = prompts.shape

  def logits_fn(tokens, t):  # [P, k, N] -> [P, k, V]
    total = prompt_len + tokens.shape[-1]
    idx = jnp.arange(total)
    in_prompt = idx[None, :] < lengths[:, None]  # [P, total]
    from_prompt = jnp.take(prompts, jnp.minimum(idx, prompt_len - 1), axis=1)  # [P, total]
    gen_idx = jnp.clip(idx[None, :] - lengths[:, None], 0, tokens.shape[-1] - 1)  # [P, total]
    from_gen = jnp.take_along_axis(tokens, jnp.broadcast_to(gen_idx[:, None], (num_prompts, k, total)), -1)
    seq = jnp.where(in_prompt[:, None], from_prompt[:, None], from_gen)  # [P, k, total]
    logits = model.apply(seq.reshape(num_prompts * k, total))[0].reshape(num_prompts, k, total, -1)
    at = jnp.broadcast_to((lengths + t - 1)[:, None, None, None], (num_prompts, k, 1, logits.shape[-1]))
    return jnp.take_along_axis(logits, at, axis=2)[:, :, 0]

  return logits_fn


def test_cached_decoding_matches_full_forward_reference():
  """A real attention model, right-padded prompts of lengths 3, 6 and 1: the
  KV-cache decode gives the tokens of a cache-free full-forward loop, and its
  logprobs are those of the transformed distribution.

  Token mode (Sobol): each token uses a fresh coordinate, so float-level
  differences between the two paths change a token only if a uniform lands
  within ~1e-6 of a bin edge. In code mode they would not stay equal: the
  carried coordinate is rescaled by 1/p every step, which amplifies ulp-level
  logit differences; code-mode equality is pinned by the bit-exact bigram test.
  """
  key = jax.random.key(5)
  options = SOBOL_OPTIONS
  logits_fn = _full_forward_logits_fn(MODEL, PROMPTS, LENGTHS, K)
  expected = qmotto.sample_sequences_batched(
      key, logits_fn, num_groups=3, num_samples=K, length=N, **options
  )
  out = decode.generate(key, MODEL, PROMPTS, LENGTHS, num_samples=K, max_new_tokens=N, **options)
  np.testing.assert_array_equal(out.tokens, expected)
  assert len({tuple(s) for s in np.asarray(out.tokens).reshape(-1, N)}) > 3 * K // 2

  # Logprobs: the reference probabilities of the chosen tokens at every step.
  step_logits = jax.jit(logits_fn)
  ref = np.stack([np.asarray(step_logits(expected, jnp.int32(t))) for t in range(N)], axis=2)  # [P, k, N, V]
  probs = reference.transformed_probs(ref.reshape(-1, ref.shape[-1]), **TRANSFORM)
  chosen = np.take_along_axis(probs, np.asarray(expected).reshape(-1, 1), -1).reshape(3, K, N)
  np.testing.assert_allclose(out.logprobs, np.log(chosen), atol=2e-4)


def test_deterministic_and_key_dependent():
  a, b, c = _generate(0), _generate(0), _generate(1)
  assert a.tokens.shape == (3, K, N) and a.tokens.dtype == jnp.int32
  assert a.logprobs.shape == (3, K, N) and a.logprobs.dtype == jnp.float32
  assert a.lengths.shape == (3, K) and a.lengths.dtype == jnp.int32
  for field in ("tokens", "logprobs", "lengths"):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
  assert not np.array_equal(a.tokens, c.tokens)
  assert (np.asarray(a.logprobs) < 0).all()


def test_prompt_samples_follow_their_group_id():
  """Prompt p's samples depend on (key, group_ids[p]) and the prompt, not on
  the other prompts or their order. (Token mode: in code mode the float-level
  logit differences of another batch layout can grow over the steps, see the
  full-forward test.)"""
  both = _generate(3, **SOBOL_OPTIONS)
  order = np.array([2, 0, 1])
  permuted = _generate(3, prompts=PROMPTS[order], lengths=LENGTHS[order], group_ids=order, **SOBOL_OPTIONS)
  np.testing.assert_array_equal(permuted.tokens, np.asarray(both.tokens)[order])


def test_eos_freezes_length_and_pads():
  eos = int(_generate(2).tokens[0, 0, 1])  # a token that appears early.
  out = _generate(2, eos_id=eos)
  tokens, lengths, logprobs = (np.asarray(x) for x in (out.tokens, out.lengths, out.logprobs))
  assert (lengths < N).any()
  for p, i in np.ndindex(3, K):
    n = lengths[p, i]
    assert (tokens[p, i, : n - 1] != eos).all()
    assert n == N or tokens[p, i, n - 1] == eos
    assert (tokens[p, i, n:] == 0).all() and (logprobs[p, i, n:] == 0).all() and (logprobs[p, i, :n] < 0).all()


def _recording_apply(seen):
  original = models.Model.apply

  def apply(model, tokens, positions=None, cache=None, logits_at=None):
    if isinstance(cache, models.GroupCache):
      seen.append((tokens.shape, cache.prompt.k.shape, cache.samples.k.shape))
    else:
      seen.append((tokens.shape, cache.k.shape))
    jax.debug.callback(lambda: seen.append("call"))
    return original(model, tokens, positions, cache, logits_at)

  return apply


@pytest.fixture
def model_calls(monkeypatch):
  """Records generate's model calls: their shapes at trace time and "call" at each run.

  `Model.apply` is the seam; the caches are cleared so that generate traces
  anew with the recording apply, and again afterwards so that no other test
  reuses a program that records.
  """
  seen = []
  monkeypatch.setattr(models.Model, "apply", _recording_apply(seen))
  jax.clear_caches()
  yield seen
  jax.clear_caches()


def test_prefill_once_per_prompt(model_calls):
  """The prefill runs once with batch P and a cache of Lp slots; the decode
  loop runs with batch P * k on the same prompt cache (once per prompt, not
  repeated k times) beside sample caches of N - 1 slots."""
  seen = model_calls
  jax.eval_shape(lambda: _generate(0))  # traces afresh, compiles nothing.
  assert [s for s in seen if s != "call"] == [
      ((3, 6), (2, 3, 2, 6, 8)),  # cache [L, B, KV, S, Dh]
      ((3 * K, 1), (2, 3, 2, 6, 8), (2, 3 * K, 2, N - 1, 8)),  # prompt [L, P, ...], samples [L, P * k, ...]
  ]


def test_greedy_eos_and_early_stop(model_calls):
  """Greedy: logprobs 0 and k equal samples. With EOS, lengths freeze at the
  EOS, padding follows, and the loop stops (no more model calls) as soon as
  every sample has ended."""
  seen = model_calls
  greedy = _generate(0, sampling=GREEDY)
  jax.effects_barrier()
  assert seen.count("call") == 1 + (N - 1)  # the prefill, then one call per token after the first.
  np.testing.assert_array_equal(greedy.logprobs, 0.0)  # a point mass.
  tokens = np.asarray(greedy.tokens)
  assert (tokens == tokens[:, :1]).all()  # all k samples agree.

  eos = int(tokens[0, 0, 2])  # prompt 0 emits it by step 2; the others maybe later or never.
  ends = [int(np.argmax(row == eos)) + 1 if (row == eos).any() else N for row in tokens[:, 0]]
  seen.clear()
  out = _generate(0, sampling=GREEDY, eos_id=eos, pad_id=1)
  jax.effects_barrier()
  for p, n in enumerate(ends):
    np.testing.assert_array_equal(out.lengths[p], n)
    np.testing.assert_array_equal(out.tokens[p, :, :n], tokens[p, :, :n])
    np.testing.assert_array_equal(out.tokens[p, :, n:], 1)
  assert seen.count("call") == max(ends)  # the prefill, then calls until the last sample ends.

  # Three copies of prompt 0: every sample ends by step 2, and the calls stop there.
  seen.clear()
  out = _generate(0, sampling=GREEDY, eos_id=eos, prompts=np.repeat(PROMPTS[:1], 3, 0), lengths=np.full(3, 3))
  jax.effects_barrier()
  np.testing.assert_array_equal(out.lengths, ends[0])
  assert ends[0] <= 3 and seen.count("call") == ends[0]


def test_no_retrace_across_calls_of_one_shape():
  """New keys, weights, prompts, lengths, group ids, eos_id and pad_id reuse
  one compilation."""
  _generate(0)
  with tracing.count_traces() as traces:
    for i in range(2):
      model = helpers.random_model(10 + i, max_seq_len=24)
      out = _generate(
          i + 1, model=model, prompts=PROMPTS + i, lengths=np.array([2 + i, 5 - i, 6]), eos_id=i, pad_id=i + 1,
          group_ids=np.array([i, i + 5, 9]), sampling=qmotto.SamplingOptions(),
      )
      assert out.tokens.shape == (3, K, N)
  assert traces["generate_groups"] == 0, traces


RANDOM_PRIMITIVES = {"random_bits", "random_fold_in", "random_split", "random_seed", "random_wrap", "threefry2x32"}
LOGIT_CHECK_PRIMITIVES = {"reduce_or", "reduce_and"}  # any(isnan | == inf), all(== -inf) over the vocabulary.


def _loop_body(sampling) -> dict:
  arrays, static = prepare_generate(jax.random.key(0), MODEL, PROMPTS, LENGTHS, K, N, sampling, None, 0, None)
  return tracing.loop_body_primitives(lambda *a: generate_groups(*a, **static), *arrays)


def test_loop_body_holds_only_per_step_work():
  """Per-step work only: the group's rotation words are drawn before the loop
  (no random-number generation in its body), and with check_logits off the
  body holds no logits check (no reductions over the vocabulary to a flag)."""
  checked = _loop_body(qmotto.SamplingOptions.create("lattice"))
  unchecked = _loop_body(qmotto.SamplingOptions.create("lattice", check_logits=False))
  assert not RANDOM_PRIMITIVES & set(checked), checked
  assert not RANDOM_PRIMITIVES & set(_loop_body(qmotto.SamplingOptions.create("sobol"))), "sobol"
  assert LOGIT_CHECK_PRIMITIVES <= set(checked), checked  # the census sees the check when it is on.
  assert not LOGIT_CHECK_PRIMITIVES & set(unchecked), unchecked
  # Nothing else differs: the check is all that check_logits adds.
  assert set((checked - unchecked).keys()) <= LOGIT_CHECK_PRIMITIVES | {"eq", "ne", "or"}, checked - unchecked
  assert not unchecked - checked
  # Top-k and top-p find their thresholds without sorting the vocabulary.
  truncated = _loop_body(qmotto.SamplingOptions.create("lattice", **TRANSFORM))
  assert "sort" not in truncated and "top_k" not in truncated, truncated


def test_under_jit():
  fn = jax.jit(
      lambda key, model, prompts, lengths: _generate_traced(key, model, prompts, lengths).tokens
  )
  np.testing.assert_array_equal(fn(jax.random.key(0), MODEL, PROMPTS, LENGTHS), _generate(0).tokens)


def _generate_traced(key, model, prompts, lengths):
  return decode.generate(key, model, prompts, lengths, num_samples=K, max_new_tokens=N)


def test_invalid_logits_raise():
  params = jax.tree.map(np.array, MODEL.params)
  params["final_norm"]["scale"][:] = np.nan
  with pytest.raises(ValueError, match="invalid logits"):
    _generate(0, model=models.Model(MODEL.config, params))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(prompts=np.zeros((2, 25), np.int32), lengths=np.array([3, 3])),
         "padded length 25 exceed the model's max_seq_len=24"),
        (dict(lengths=np.array([3, 6, 1]), max_new_tokens=19),
         r"prompt length 6 \+ max_new_tokens=19 exceeds the model's max_seq_len=24"),
        (dict(lengths=np.array([3, 7, 1])), r"prompt_lengths must be in \[1, 6\]"),
        (dict(lengths=np.array([0, 6, 1])), r"prompt_lengths must be in \[1, 6\]"),
        (dict(lengths=np.array([3, 6])), r"prompt_lengths must be int\[3\]"),
        (dict(prompts=np.zeros((6,), np.int32), lengths=np.array([1])), r"prompts must be a non-empty int\[P, Lp\]"),
        (dict(prompts=PROMPTS.astype(np.float32)), r"prompts must be a non-empty int\[P, Lp\]"),
        (dict(prompts=PROMPTS + 45), r"prompt tokens must be in \[0, vocab_size=50\)"),
        (dict(eos_id=50), r"eos_id must be None or an int in \[0, vocab_size=50\)"),
        (dict(pad_id=-1), r"pad_id must be an int in \[0, vocab_size=50\)"),
        (dict(max_new_tokens=0), "max_new_tokens must be an int >= 1"),
        (dict(num_samples=6, sampling="sobol"), "needs a power of two"),
        (dict(sampling="nope"), "unknown name 'nope'"),
        (dict(sampling=dict(top_p=0.9)), "sampling must be a qmotto.SamplingOptions"),
        (dict(model=MODEL.params), "model must be a qmotto.models.Model"),
        (dict(group_ids=np.arange(2)), r"group_ids must be int\[3\]"),
    ],
)
def test_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    _generate(0, **kwargs)


@pytest.mark.parametrize("sampling", ["lattice_extensible"])  # token mode: tests/decode/test_loop.py and test_sharding.py.
def test_slices_are_the_whole_groups_slots(sampling):
  """num_samples=GroupSlice(o, 4, 16) decodes slots [o, o + 4) of each
  prompt's group of 16: the same tokens, lengths and logprobs as the
  16-sample call, bit for bit (same prompts: the batch of 3 x 4 rows and 3 x
  16 rows give the same logits here on the CPU), and one compilation for
  every offset. Code mode (lattice_extensible) over 7 tokens would show any
  difference: it amplifies last-bit logit differences step by step. The
  model-agnostic loop checks iid and sobol_code too (tests/decode/test_loop.py);
  generate shares its slice code with every sampler."""
  key, ids = jax.random.key(4), np.array([2, 7, 5])
  whole = _generate(4, sampling=sampling, num_samples=16, group_ids=ids, eos_id=3)
  assert (np.asarray(whole.lengths) < N).any()  # the EOS ends some samples.
  with tracing.count_traces() as traces:
    for offset in range(0, 16, 4):
      part = decode.generate(
          key, MODEL, PROMPTS, LENGTHS, num_samples=decode.GroupSlice(offset, 4, 16), max_new_tokens=N,
          sampling=sampling, group_ids=ids, eos_id=3,
      )
      assert part.tokens.shape == (3, 4, N)
      for field in ("tokens", "lengths", "logprobs"):
        np.testing.assert_array_equal(
            getattr(part, field), np.asarray(getattr(whole, field))[:, offset : offset + 4], err_msg=(field, offset)
        )
  assert traces["generate_groups"] == 1, traces


@pytest.mark.parametrize(
    "slots, sampling, match",
    [
        (decode.GroupSlice(12, 8, 16), "lattice", r"offset \+ size = 12 \+ 8 exceeds group_size=16"),
        (decode.GroupSlice(0, 4, 12), "sobol", r"GroupSlice.group_size=12: sampler 'sobol' needs a power of two"),
        (decode.GroupSlice(-2, 4, 16), "lattice", r"GroupSlice.offset must be an int >= 0"),
    ],
)
def test_bad_slices(slots, sampling, match):
  with pytest.raises(ValueError, match=match):
    _generate(0, num_samples=slots, sampling=sampling)
