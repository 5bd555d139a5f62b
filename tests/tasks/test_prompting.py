"""qmotto.tasks.prompting: prompt arrays, completion text, vocabulary checks."""

import jax
import numpy as np
import pytest

from qmotto.tasks import prompting
from qmotto import tasks
from qmotto.models import LlamaConfig
from qmotto.models import init_model
from qmotto.models.loading import CharTokenizer

TASK = tasks.get_task("countdown")


def _model(vocab):
  return init_model(
      LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_layers=1, num_heads=2,
                  num_kv_heads=1, max_seq_len=64),
      jax.random.key(0),
  )


def test_encode_prompts_right_padded():
  tok = CharTokenizer(TASK.compact_charset())
  problems = TASK.problems("test", 5)
  prompts, lengths = prompting.encode_prompts(tok, TASK, problems, "compact", pad_id=0)
  assert prompts.dtype == np.int32 and prompts.shape == (5, lengths.max())
  for row, n, p in zip(prompts, lengths, problems):
    assert tok.decode(row[:n]) == "<bos>" + TASK.compact_prompt(p)
    assert (row[n:] == 0).all()
  wide, _ = prompting.encode_prompts(tok, TASK, problems, "compact", length=40, pad_id=0)
  assert wide.shape == (5, 40) and (wide[:, : prompts.shape[1]] == prompts).all()
  with pytest.raises(ValueError, match="more than length=3"):
    prompting.encode_prompts(tok, TASK, problems, "compact", length=3, pad_id=0)
  with pytest.raises(ValueError, match="style must be one of"):
    prompting.encode_prompts(tok, TASK, problems, "plain", pad_id=0)
  with pytest.raises(ValueError, match="needs a tokenizer with a chat template"):
    prompting.encode_prompts(tok, TASK, problems, "chat", pad_id=0)


def test_decode_completions_cuts_at_length_and_drops_eos():
  tok = CharTokenizer("0123456789+")
  tokens = np.array([[[tok.token_to_id("1"), tok.token_to_id("+"), tok.eos_id, 0],
                      [tok.token_to_id("7"), 0, 0, 0]]])  # [P=1, k=2, N=4]
  lengths = np.array([[3, 1]])
  assert prompting.decode_completions(tok, tokens, lengths) == [["1+", "7"]]


def test_check_vocabulary():
  tok = CharTokenizer(TASK.compact_charset())
  prompting.check_vocabulary(_model(tok.vocab_size), tok, TASK, "compact")
  with pytest.raises(ValueError, match="lacks"):
    prompting.check_vocabulary(_model(20), CharTokenizer("0123456789"), TASK, "compact")
  with pytest.raises(ValueError, match="do not belong together"):
    prompting.check_vocabulary(_model(5), tok, TASK, "compact")
  with pytest.raises(ValueError, match="has no tokenizer"):
    prompting.check_vocabulary(_model(5), None, TASK, "compact")
