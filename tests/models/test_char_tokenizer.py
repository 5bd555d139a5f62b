"""CharTokenizer: ids, round trips, errors, serialization."""

import pytest

from qmotto.models.loading import CharTokenizer


def test_ids_and_roundtrip():
  tok = CharTokenizer("ab=")
  assert tok.vocab_size == 6 and (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
  assert tok.encode("ab=a") == [1, 3, 4, 5, 3]
  assert tok.encode("ba", add_bos=False) == [4, 3]
  assert tok.decode([1, 3, 4, 2, 0]) == "<bos>ab<eos><pad>"
  assert tok.decode([1, 3, 4, 2, 0], skip_special_tokens=True) == "ab"
  assert tok.token_to_id("=") == 5 and tok.token_to_id("<eos>") == 2 and tok.token_to_id("z") is None
  assert tok.id_to_token(4) == "b" and tok.id_to_token(0) == "<pad>" and tok.id_to_token(6) is None
  assert tok.stop_ids == (2,)
  assert CharTokenizer.from_dict(tok.to_dict()) == tok and hash(CharTokenizer("ab=")) == hash(tok)


def test_errors():
  tok = CharTokenizer("ab")
  with pytest.raises(ValueError, match="outside this tokenizer's alphabet: 'cz'"):
    tok.encode("zac")
  assert tok.missing("abcz") == "cz"
  with pytest.raises(ValueError, match=r"outside the vocabulary \[0, 5\)"):
    tok.decode([5])
  with pytest.raises(ValueError, match="distinct"):
    CharTokenizer("aba")
  with pytest.raises(ValueError, match="non-empty"):
    CharTokenizer("")
  with pytest.raises(ValueError, match="not a char tokenizer spec"):
    CharTokenizer.from_dict({"kind": "bpe"})
