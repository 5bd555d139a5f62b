"""A character-level tokenizer for the small task models the project trains.

Ids 0, 1, 2 are <pad>, <bos>, <eos>; then one id per character, in the order
given. It has the same interface as `Tokenizer` (encode/decode, bos_id, eos_id,
pad_id, stop_ids, vocab_size), so decoding and the pass@k runner treat both
alike, and it serializes to a small dict that `save_checkpoint` stores as
checkpoint metadata.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

SPECIALS = ("<pad>", "<bos>", "<eos>")
KIND = "char"


class CharTokenizer:
  """Text <-> ids, one id per character of a fixed alphabet.

  Attributes:
    chars: the alphabet (distinct characters, in id order after the specials).
    pad_id, bos_id, eos_id: 0, 1, 2.
    add_bos: `encode` prepends bos_id by default (the models are trained so).
    stop_ids: (eos_id,).
    chat_template: None (task models take compact prompts, not chats).
  """

  pad_id = 0
  bos_id = 1
  eos_id = 2
  add_bos = True
  chat_template = None
  stop_ids = (2,)

  def __init__(self, chars: str):
    if not isinstance(chars, str) or not chars:
      raise ValueError(f"chars must be a non-empty str, got {chars!r}.")
    if len(set(chars)) != len(chars):
      duplicated = sorted({c for c in chars if chars.count(c) > 1})
      raise ValueError(f"chars must be distinct; repeated: {duplicated!r}.")
    self.chars = chars
    self._ids = {c: i + len(SPECIALS) for i, c in enumerate(chars)}

  @property
  def vocab_size(self) -> int:
    return len(SPECIALS) + len(self.chars)

  def missing(self, text: str) -> str:
    """The distinct characters of `text` outside the alphabet, sorted ('' if none)."""
    return "".join(sorted(set(text) - set(self.chars)))

  def encode(self, text: str, *, add_bos: bool | None = None) -> list[int]:
    if not isinstance(text, str):
      raise ValueError(f"encode expects a str, got {type(text).__name__}.")
    unknown = self.missing(text)
    if unknown:
      raise ValueError(
          f"text has characters outside this tokenizer's alphabet: {unknown!r} "
          f"(alphabet: {self.chars!r})."
      )
    ids = [self._ids[c] for c in text]
    return [self.bos_id] + ids if (self.add_bos if add_bos is None else add_bos) else ids

  def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
    out = []
    for i in ids:
      i = int(i)
      if not 0 <= i < self.vocab_size:
        raise ValueError(f"token id {i} is outside the vocabulary [0, {self.vocab_size}).")
      if i >= len(SPECIALS):
        out.append(self.chars[i - len(SPECIALS)])
      elif not skip_special_tokens:
        out.append(SPECIALS[i])
    return "".join(out)

  def token_to_id(self, token: str) -> int | None:
    if token in SPECIALS:
      return SPECIALS.index(token)
    return self._ids.get(token)

  def id_to_token(self, token_id: int) -> str | None:
    token_id = int(token_id)
    if 0 <= token_id < len(SPECIALS):
      return SPECIALS[token_id]
    if len(SPECIALS) <= token_id < self.vocab_size:
      return self.chars[token_id - len(SPECIALS)]
    return None

  def to_dict(self) -> dict[str, Any]:
    return {"kind": KIND, "chars": self.chars}

  @classmethod
  def from_dict(cls, spec: Mapping[str, Any]) -> "CharTokenizer":
    if not isinstance(spec, Mapping) or spec.get("kind") != KIND or not isinstance(spec.get("chars"), str):
      raise ValueError(f"not a char tokenizer spec (expected {{'kind': 'char', 'chars': str}}): {spec!r}.")
    return cls(spec["chars"])

  def __eq__(self, other) -> bool:
    return isinstance(other, CharTokenizer) and other.chars == self.chars

  def __hash__(self) -> int:
    return hash((KIND, self.chars))

  def __repr__(self) -> str:
    return f"CharTokenizer(vocab_size={self.vocab_size}, chars={self.chars!r})"
