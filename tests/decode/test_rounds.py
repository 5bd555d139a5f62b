"""Tests of qmotto.decode.rounds: sampling in rounds until a verifier accepts.

One run does most of the work (`test_rounds_against_the_one_shot_group`): G groups of one prompt on
a tiny float32 model (vocabulary 8, an EOS, 2 new tokens), the extensible
lattice with rounds of 2 slots and a budget of 8, against the one-shot group
`generate(..., num_samples=8)` with the same key and group ids.
"""

import math

import jax
import numpy as np
import pytest
import scipy.stats

import qmotto
from qmotto import decode
from qmotto import models

from tests import tracing
from tests.models import helpers

SMALL = helpers.tiny_config(
    vocab_size=8, hidden_size=16, intermediate_size=32, num_heads=4, num_kv_heads=2, max_seq_len=8
)
MODEL = models.Model(SMALL, helpers.random_params(SMALL, 5, scale=1.0))
PROMPT = np.array([3, 1, 4], np.int32)
EOS, PAD, ACCEPTED_TOKEN = 5, 7, 0
GROUPS, ROUND, BUDGET, NEW = 1024, 2, 8, 2
SAMPLER = "lattice_extensible"


def _verdicts(tokens, lengths):
  """The fixed pattern the verifier accepts: two tokens (no EOS first), the second ACCEPTED_TOKEN."""
  return (lengths == 2) & (tokens[..., 1] == ACCEPTED_TOKEN)


class RecordingVerifier:
  """A verifier that accepts `_verdicts` and records what each round showed it."""

  def __init__(self, verdicts=_verdicts):
    self.verdicts, self.calls = verdicts, []

  def __call__(self, rows, tokens, lengths):
    self.calls.append((np.array(rows), np.array(tokens), np.array(lengths)))
    return self.verdicts(tokens, lengths)


def _prompts(num):
  return np.repeat(PROMPT[None], num, 0), np.full(num, len(PROMPT), np.int32)


def _run() -> dict:
  """The rounds and the one-shot group of the same key and group ids."""
  prompts, lengths = _prompts(GROUPS)
  key = jax.random.key(11)
  group_ids = np.arange(GROUPS) * 7 + 3  # any ids: the rounds pass them through.
  kwargs = dict(max_new_tokens=NEW, sampling=SAMPLER, eos_id=EOS, pad_id=PAD, group_ids=group_ids)
  one_shot = decode.generate(key, MODEL, prompts, lengths, num_samples=BUDGET, **kwargs)
  verifier, progress = RecordingVerifier(), []
  rounds = decode.Rounds(verifier, round_size=ROUND, budget=BUDGET, progress=lambda *a: progress.append(a))
  with tracing.count_traces() as traces:
    out = decode.sample_until_accepted(key, MODEL, prompts, lengths, rounds=rounds, **kwargs)
  one_shot = jax.tree.map(np.asarray, one_shot)
  return dict(out=out, one_shot=one_shot, calls=verifier.calls, progress=progress, traces=traces)


def _expected_stops(one_shot):
  """(first_accepted, samples_drawn) computed from the one-shot group of BUDGET slots."""
  accepted = _verdicts(one_shot.tokens, one_shot.lengths)  # [G, N]
  first = np.where(accepted.any(1), accepted.argmax(1), -1)
  drawn = np.where(first >= 0, (first // ROUND + 1) * ROUND, BUDGET)
  return first, drawn


def _check_stops_at_the_first_accepted_slot_of_the_one_shot_group(run):
  out, one_shot = run["out"], run["one_shot"]
  first, drawn = _expected_stops(one_shot)
  np.testing.assert_array_equal(out.first_accepted, first)
  np.testing.assert_array_equal(out.samples_drawn, drawn)
  # Not degenerate: problems stop in every round, and some never.
  assert set(np.unique(drawn)) == {2, 4, 6, 8} and (first == -1).any(), np.bincount(drawn)
  np.testing.assert_array_equal(out.drawn, np.arange(BUDGET)[None] < drawn[:, None])
  np.testing.assert_array_equal(out.accepted, _verdicts(one_shot.tokens, one_shot.lengths) & out.drawn)
  assert out.first_accepted.dtype == np.int32 and out.samples_drawn.dtype == np.int32


def _check_drawn_slots_hold_the_one_shot_groups_samples(run):
  """Stopping decides which slots are drawn, never what they hold: every
  drawn slot equals the one-shot group's slot.

  Tokens and lengths bit for bit; logprobs to float rounding. The rounds
  run batches of 1024 and 512 problems x 2 slots, the one-shot call 1024 x
  8, and on the CPU the logits of these batch shapes differ in the last bits
  (logprobs by up to ~7e-7, hence atol 4e-6). Code mode can turn such
  differences into other later tokens (see `generate`), but with 2 tokens a
  difference moves the second token only if its carried coordinate lies
  within ~1e-6 of a bin edge (about 1e-5 per sample): none does for this
  key, and a slicing error would change most samples."""
  out, one_shot = run["out"], run["one_shot"]
  drawn = out.drawn
  np.testing.assert_array_equal(out.tokens[drawn], one_shot.tokens[drawn])
  np.testing.assert_array_equal(out.lengths[drawn], one_shot.lengths[drawn])
  np.testing.assert_allclose(out.logprobs[drawn], one_shot.logprobs[drawn], rtol=0, atol=4e-6)
  # Undrawn slots are padding.
  assert (out.tokens[~drawn] == PAD).all() and (out.lengths[~drawn] == 0).all()
  assert (out.logprobs[~drawn] == 0).all()
  np.testing.assert_array_equal(out.tokens_spent, (one_shot.lengths * drawn).sum(1))
  assert out.tokens_spent.dtype == np.int64 and 1 <= one_shot.lengths.min() < one_shot.lengths.max()


def _check_stopped_problems_draw_no_further_rounds(run):
  out, calls = run["out"], run["calls"]
  assert len(calls) == BUDGET // ROUND
  for r, (rows, tokens, lengths) in enumerate(calls):
    # Round r sees exactly the problems not stopped before it (no padding rows).
    np.testing.assert_array_equal(rows, np.flatnonzero(out.samples_drawn > r * ROUND))
    assert tokens.shape == (len(rows), ROUND, NEW) and lengths.shape == (len(rows), ROUND)
    np.testing.assert_array_equal(tokens, out.tokens[rows, r * ROUND : (r + 1) * ROUND])
  active = [int((out.samples_drawn > (r + 1) * ROUND).sum()) for r in range(len(calls))]
  assert run["progress"] == [(r + 1, a) for r, a in enumerate(active)]


def _check_compilations_are_bounded_by_the_buckets(run):
  """The active batch is padded to min(G, a power of two): one trace per
  bucket, whatever the number of rounds (the slice offset is data)."""
  buckets = [decode.rounds.bucket_size(len(rows), GROUPS) for rows, _, _ in run["calls"]]
  assert all(b >= len(rows) and (b == GROUPS or b & (b - 1) == 0) for b, (rows, _, _) in zip(buckets, run["calls"]))
  assert len(set(buckets)) < len(buckets), buckets  # some bucket served two rounds.
  assert run["traces"]["generate_groups"] == len(set(buckets)), (run["traces"], buckets)
  assert len(set(buckets)) <= math.log2(GROUPS) + 1


def test_bucket_sizes():
  assert [decode.rounds.bucket_size(m, 12) for m in (1, 2, 3, 5, 8, 9, 12)] == [1, 2, 4, 8, 8, 12, 12]
  assert len({decode.rounds.bucket_size(m, 1000) for m in range(1, 1001)}) <= math.ceil(math.log2(1000)) + 1


def _exact_sequence_probs(temperature: float = 1.0) -> np.ndarray:
  """float64[V * V]: the model's exact distribution of (t0, t1), id t0 + V t1; after EOS, t1 = PAD."""
  vocab = SMALL.vocab_size
  softmax = lambda logits: np.asarray(jax.nn.softmax(logits / temperature), np.float64)
  first = softmax(models.forward_logits(MODEL, PROMPT[None])[0, -1])
  both = np.concatenate([np.repeat(PROMPT[None], vocab, 0), np.arange(vocab)[:, None]], 1)
  second = softmax(models.forward_logits(MODEL, both)[:, -1])  # [t0, t1]
  joint = first[:, None] * second
  joint[EOS] = 0.0
  joint[EOS, PAD] = first[EOS]  # the sample ends at EOS; the next position holds padding.
  return (joint / joint.sum()).T.reshape(-1)


def _chi_square_pvalue(tokens: np.ndarray, probs: np.ndarray) -> float:
  """Goodness of fit of sequences int[G, 2] to probs (cells expecting < 5 pooled into one)."""
  vocab = SMALL.vocab_size
  counts = np.bincount(tokens[:, 0] + vocab * tokens[:, 1], minlength=vocab * vocab)
  if counts[probs == 0].any():
    return 0.0  # an impossible sequence.
  expected = probs * len(tokens)
  small = expected < 5
  obs = np.append(counts[~small], counts[small].sum())
  exp = np.append(expected[~small], expected[small].sum())
  return float(scipy.stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)


def _check_every_slot_of_the_one_shot_group_is_an_exact_draw(run):
  """Each slot's (t0, t1) over the G independent groups against the model's
  exact distribution (chi-square). With the drawn slots equal to the
  one-shot group's, each slot of the rounds is an exact draw too, whether
  or not the stopping reached it: its value does not depend on the stopping.

  What is *not* the model's distribution: a slot given that it was drawn.
  Slot 2 is drawn only when slots 0 and 1 were rejected, and coupled slots
  are dependent, so that conditional distribution leans to what they missed
  (that is the point of coupling); the unbiased quantities are averages over
  whole groups (samples_drawn, tokens_spent).

  Threshold: a correct implementation gives 8 p-values uniform on (0, 1);
  P(any < 1e-8) <= 8e-8 < 1e-6 (Bonferroni). Power: the same check rejects
  the distribution at temperature 0.8 for every slot."""
  exact, hotter = _exact_sequence_probs(), _exact_sequence_probs(temperature=0.8)
  tokens = run["one_shot"].tokens  # [G, N, 2]
  for slot in range(BUDGET):
    p = _chi_square_pvalue(tokens[:, slot], exact)
    assert p > 1e-8, (slot, p)
    assert _chi_square_pvalue(tokens[:, slot], hotter) < 1e-8, slot


def test_rounds_against_the_one_shot_group():
  """One run checked five ways (one test, so that the run is made once
  whatever the xdist split): where each problem stops, what the drawn slots
  hold, which problems each round drew, the compilations, and the
  exactness of every slot (see each check's docstring)."""
  run = _run()
  _check_stops_at_the_first_accepted_slot_of_the_one_shot_group(run)
  _check_drawn_slots_hold_the_one_shot_groups_samples(run)
  _check_stopped_problems_draw_no_further_rounds(run)
  _check_compilations_are_bounded_by_the_buckets(run)
  _check_every_slot_of_the_one_shot_group_is_an_exact_draw(run)


def test_one_round_budget_progress_and_exhausted_budget():
  """budget == round_size is one round; a verifier that never accepts draws
  the whole budget and reports -1."""
  prompts, lengths = _prompts(3)
  key = jax.random.key(2)
  never = RecordingVerifier(lambda tokens, lengths: np.zeros(lengths.shape, bool))
  out = decode.sample_until_accepted(
      key, MODEL, prompts, lengths, rounds=decode.Rounds(never, round_size=4, budget=8),
      max_new_tokens=NEW, sampling="sobol", eos_id=EOS,
  )
  np.testing.assert_array_equal(out.samples_drawn, 8)
  np.testing.assert_array_equal(out.first_accepted, -1)
  assert out.drawn.all() and not out.accepted.any() and len(never.calls) == 2
  np.testing.assert_array_equal(out.tokens_spent, out.lengths.sum(1))
  spent = out

  always = RecordingVerifier(lambda tokens, lengths: np.ones(lengths.shape, bool))
  out = decode.sample_until_accepted(
      key, MODEL, prompts, lengths, rounds=decode.Rounds(always, round_size=4, budget=8),
      max_new_tokens=NEW, sampling="sobol", eos_id=EOS,
  )
  np.testing.assert_array_equal(out.samples_drawn, 4)
  np.testing.assert_array_equal(out.first_accepted, 0)
  assert len(always.calls) == 1
  np.testing.assert_array_equal(out.tokens[:, :4], spent.tokens[:, :4])  # the same first round.

  wrong = RecordingVerifier(lambda tokens, lengths: np.ones(len(lengths), bool))
  with pytest.raises(ValueError, match=r"Rounds.verify must return bool\[3, 4\].*got bool\[3\]"):
    decode.sample_until_accepted(
        key, MODEL, prompts, lengths, rounds=decode.Rounds(wrong, round_size=4, budget=8),
        max_new_tokens=NEW, sampling="sobol", eos_id=EOS,
    )


def _accept_all(tokens, lengths):
  return np.ones(lengths.shape, bool)


@pytest.mark.parametrize(
    "rounds, match",
    [
        (dict(round_size=4, budget=2), r"budget=2 is a budget smaller than a round \(round_size=4\)"),
        (dict(round_size=3, budget=8), r"budget=8 must be a multiple of round_size=3"),
        (dict(round_size=0, budget=8), r"Rounds.round_size must be an int >= 1"),
        (dict(round_size=2, budget=8.0), r"Rounds.budget must be an int >= 1"),
        (dict(round_size=2, budget=8, progress=3), r"Rounds.progress must be None or callable"),
        (dict(verify="yes", round_size=2, budget=8), r"Rounds.verify must be callable"),
    ],
)
def test_bad_rounds(rounds, match):
  with pytest.raises(ValueError, match=match):
    decode.Rounds(**(dict(verify=_accept_all) | rounds))


EXTENSIBLE = r"\['antithetic', 'antithetic_token', 'iid', 'lattice_extensible', 'sobol', 'sobol_code', 'sobol_lms'\]"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sampling="lattice"), rf"sampler 'lattice' is not extensible.*use one of {EXTENSIBLE}"),
        (dict(sampling="stratified"), rf"sampler 'stratified' is not extensible.*use one of {EXTENSIBLE}"),
        (dict(sampling="sobol", rounds=decode.Rounds(_accept_all, 4, 12)),
         r"budget=12 must be a power of two for sampler 'sobol'"),
        (dict(rounds=decode.Rounds(_accept_all, 2, 6)), r"budget=6 must be a power of two for sampler 'lattice_extensible'"),
        (dict(rounds=(2, 8)), r"rounds must be a qmotto.decode.Rounds"),
        (dict(max_new_tokens=0), r"max_new_tokens must be an int >= 1"),
        (dict(eos_id=8), r"eos_id must be None or an int in \[0, vocab_size=8\)"),
        (dict(group_ids=np.arange(2)), r"group_ids must be int\[3\]"),
    ],
)
def test_bad_input(kwargs, match):
  prompts, lengths = _prompts(3)
  kwargs = dict(rounds=decode.Rounds(_accept_all, 2, 8), max_new_tokens=NEW, sampling=SAMPLER) | kwargs
  with pytest.raises(ValueError, match=match):
    decode.sample_until_accepted(jax.random.key(0), MODEL, prompts, lengths, **kwargs)


def test_exported():
  assert qmotto.sample_until_accepted is decode.sample_until_accepted
  assert qmotto.Rounds is decode.Rounds and qmotto.GroupSlice is decode.GroupSlice
