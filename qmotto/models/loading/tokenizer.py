"""A small tokenizer wrapper over the `tokenizers` package, with chat templates.

`Tokenizer` is built either from a Hugging Face directory (`tokenizer.json`,
`tokenizer_config.json`) or from the metadata of a GGUF file (a GPT-2 style
byte-level BPE: `tokenizer.ggml.tokens`, `.merges`, `.token_type`, `.pre`).

Chat templates are Jinja templates (as in Hugging Face and GGUF files) and are
rendered with `jinja2`'s sandbox, as `transformers` does.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

from qmotto.models.loading._common import require

# llama.cpp's token types (gguf.TokenType).
_TOKEN_NORMAL, _TOKEN_UNKNOWN, _TOKEN_CONTROL, _TOKEN_USER_DEFINED, _TOKEN_UNUSED, _TOKEN_BYTE = range(1, 7)

# GPT-2's split (also what tokenizers' ByteLevel(use_regex=True) applies).
_GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# `tokenizer.ggml.pre` values (llama.cpp's names) -> pre-tokenizer family.
# "gpt2": the GPT-2 regex; "digits+gpt2": every digit split off first (llama.cpp
# runs "\p{N}" before the GPT-2 regex for these; SmolLM's Hugging Face tokenizer
# is Digits(individual_digits=True) + ByteLevel); "llama3" and "qwen2": their
# own split regexes before a regex-free byte-level mapping.
GGUF_PRE_TOKENIZERS = {
    "default": "gpt2",
    "gpt2": "gpt2",
    "gpt-2": "gpt2",
    "mpt": "gpt2",
    "olmo": "gpt2",
    "jais": "gpt2",
    "smollm": "digits+gpt2",
    "starcoder": "digits+gpt2",
    "refact": "digits+gpt2",
    "command-r": "digits+gpt2",
    "codeshell": "digits+gpt2",
    "exaone": "digits+gpt2",
    "minerva-7b": "digits+gpt2",
    "llama-bpe": "llama3",
    "llama3": "llama3",
    "qwen2": "qwen2",
}


def _render_template(template: str, messages, **context) -> str:
  jinja2 = require("jinja2", "jinja2", "Rendering a chat template")
  from jinja2 import sandbox  # pylint: disable=g-import-not-at-top

  def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)

  def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

  def strftime_now(fmt):
    import datetime  # pylint: disable=g-import-not-at-top

    return datetime.datetime.now().strftime(fmt)

  # The same environment as transformers' apply_chat_template.
  env = sandbox.ImmutableSandboxedEnvironment(
      trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
  )
  env.filters["tojson"] = tojson
  env.globals["raise_exception"] = raise_exception
  env.globals["strftime_now"] = strftime_now
  try:
    compiled = env.from_string(template)
    return compiled.render(messages=messages, **context)
  except jinja2.exceptions.TemplateError as e:
    raise ValueError(f"chat template failed: {e}") from e


class Tokenizer:
  """Text <-> token ids for one model, plus its chat template.

  Attributes:
    bos_id, eos_id, pad_id: special token ids (None if the model has none).
    add_bos: whether `encode` prepends bos_id by default (the model's convention).
    chat_template: the Jinja chat template, or None.
    stop_ids: ids that end a generation (eos, and the end-of-turn token if distinct).
  """

  def __init__(
      self,
      tokenizer,
      *,
      bos_id: int | None = None,
      eos_id: int | None = None,
      pad_id: int | None = None,
      add_bos: bool = False,
      chat_template: str | None = None,
      extra_stop_ids: Sequence[int] = (),
  ):
    self._tok = tokenizer
    self.bos_id = bos_id
    self.eos_id = eos_id
    self.pad_id = pad_id if pad_id is not None else eos_id
    self.add_bos = bool(add_bos) and bos_id is not None
    self.chat_template = chat_template
    stops = [i for i in (eos_id, *extra_stop_ids) if i is not None]
    self.stop_ids = tuple(dict.fromkeys(stops))

  @property
  def backend(self):
    """The underlying `tokenizers.Tokenizer`."""
    return self._tok

  @property
  def vocab_size(self) -> int:
    return self._tok.get_vocab_size(with_added_tokens=True)

  @property
  def bos_token(self) -> str | None:
    return None if self.bos_id is None else self._tok.id_to_token(self.bos_id)

  @property
  def eos_token(self) -> str | None:
    return None if self.eos_id is None else self._tok.id_to_token(self.eos_id)

  def encode(self, text: str, *, add_bos: bool | None = None) -> list[int]:
    """Token ids of `text`; special tokens written in the text map to their ids."""
    if not isinstance(text, str):
      raise ValueError(f"encode expects a str, got {type(text).__name__}.")
    ids = self._tok.encode(text, add_special_tokens=False).ids
    if self.add_bos if add_bos is None else add_bos:
      if self.bos_id is None:
        raise ValueError("add_bos=True, but this tokenizer has no bos token.")
      ids = [self.bos_id] + ids
    return ids

  def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
    ids = [int(i) for i in ids]
    for i in ids:
      if not 0 <= i < self.vocab_size:
        raise ValueError(f"token id {i} is outside the vocabulary [0, {self.vocab_size}).")
    return self._tok.decode(ids, skip_special_tokens=skip_special_tokens)

  def token_to_id(self, token: str) -> int | None:
    return self._tok.token_to_id(token)

  def id_to_token(self, token_id: int) -> str | None:
    return self._tok.id_to_token(int(token_id))

  def apply_chat_template(
      self,
      messages: Sequence[Mapping[str, Any]],
      add_generation_prompt: bool = True,
      **template_kwargs,
  ) -> str:
    """The chat prompt as text. messages: [{"role": ..., "content": ...}, ...]."""
    if self.chat_template is None:
      raise ValueError("this tokenizer has no chat template.")
    if isinstance(messages, Mapping) or not isinstance(messages, Sequence):
      raise ValueError("messages must be a list of {'role': ..., 'content': ...} dicts.")
    for i, m in enumerate(messages):
      if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
        raise ValueError(f"messages[{i}] must be a dict with str 'role' and 'content', got {m!r}.")
    context = {"bos_token": self.bos_token or "", "eos_token": self.eos_token or ""}
    context.update(template_kwargs)
    return _render_template(
        self.chat_template, [dict(m) for m in messages], add_generation_prompt=add_generation_prompt, **context
    )

  def encode_chat(self, messages, add_generation_prompt: bool = True, **template_kwargs) -> list[int]:
    """Token ids of the rendered chat prompt (the template writes any bos itself)."""
    text = self.apply_chat_template(messages, add_generation_prompt, **template_kwargs)
    return self.encode(text, add_bos=False)

  def __repr__(self) -> str:
    return (
        f"Tokenizer(vocab_size={self.vocab_size}, bos_id={self.bos_id}, eos_id={self.eos_id}, "
        f"pad_id={self.pad_id}, add_bos={self.add_bos}, chat_template={self.chat_template is not None})"
    )

  # --------------------------------------------------------------------------
  # Constructors.

  @classmethod
  def from_hf_directory(cls, path: str | os.PathLike, model_config: Mapping[str, Any] | None = None):
    """From `tokenizer.json` (+ `tokenizer_config.json`, `chat_template.jinja`); None if absent."""
    path = os.fspath(path)
    tok_file = os.path.join(path, "tokenizer.json")
    if not os.path.isfile(tok_file):
      return None
    tokenizers = require("tokenizers", "tokenizers", "Loading tokenizer.json")
    try:
      tok = tokenizers.Tokenizer.from_file(tok_file)
    except Exception as e:  # tokenizers raises a bare Exception on bad JSON.
      raise ValueError(f"{tok_file}: not a valid tokenizers file: {e}") from e

    tok_config: dict = {}
    config_file = os.path.join(path, "tokenizer_config.json")
    if os.path.isfile(config_file):
      try:
        with open(config_file, encoding="utf-8") as f:
          tok_config = json.load(f)
      except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{config_file}: malformed JSON: {e}") from e
      if not isinstance(tok_config, dict):
        raise ValueError(f"{config_file}: expected a JSON object.")
    model_config = model_config or {}

    def special_id(key: str, config_key: str) -> int | None:
      token = tok_config.get(key)
      if isinstance(token, dict):
        token = token.get("content")
      if isinstance(token, str):
        token_id = tok.token_to_id(token)
        if token_id is None:
          raise ValueError(f"{config_file}: {key} {token!r} is not in the vocabulary of tokenizer.json.")
        return token_id
      value = model_config.get(config_key)
      if isinstance(value, list):
        value = value[0] if value else None
      return value if isinstance(value, int) else None

    bos_id = special_id("bos_token", "bos_token_id")
    eos_id = special_id("eos_token", "eos_token_id")
    pad_id = special_id("pad_token", "pad_token_id")
    extra_stops = model_config.get("eos_token_id")
    extra_stops = [i for i in (extra_stops if isinstance(extra_stops, list) else [extra_stops]) if isinstance(i, int)]

    # Whether the model's convention prepends bos: what the post-processor does.
    probe_plain = tok.encode("a", add_special_tokens=False).ids
    probe_special = tok.encode("a", add_special_tokens=True).ids
    add_bos = bos_id is not None and probe_special == [bos_id] + probe_plain
    if isinstance(tok_config.get("add_bos_token"), bool) and bos_id is not None:
      add_bos = tok_config["add_bos_token"]

    chat_template = tok_config.get("chat_template")
    if isinstance(chat_template, list):  # [{"name": ..., "template": ...}, ...]
      named = {t.get("name"): t.get("template") for t in chat_template if isinstance(t, dict)}
      chat_template = named.get("default")
    jinja_file = os.path.join(path, "chat_template.jinja")
    if chat_template is None and os.path.isfile(jinja_file):
      with open(jinja_file, encoding="utf-8") as f:
        chat_template = f.read()
    if chat_template is not None and not isinstance(chat_template, str):
      raise ValueError(f"{config_file}: chat_template must be a string.")
    return cls(
        tok,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
        add_bos=add_bos,
        chat_template=chat_template,
        extra_stop_ids=extra_stops,
    )

  @classmethod
  def from_gguf_metadata(cls, metadata: Mapping[str, Any], source: str = "GGUF file"):
    """From GGUF tokenizer metadata (a dict of key -> decoded value).

    Supports `tokenizer.ggml.model == "gpt2"` (byte-level BPE) with the
    pre-tokenizers in GGUF_PRE_TOKENIZERS.
    """
    tokenizers = require("tokenizers", "tokenizers", "Building a GGUF tokenizer")
    from tokenizers import decoders, models, pre_tokenizers  # pylint: disable=g-import-not-at-top

    kind = metadata.get("tokenizer.ggml.model")
    if kind is None:
      raise ValueError(f"{source}: no tokenizer metadata (tokenizer.ggml.model is missing).")
    if kind != "gpt2":
      raise ValueError(
          f"{source}: tokenizer.ggml.model={kind!r} is not supported; only 'gpt2' (byte-level BPE) is."
      )
    pre = metadata.get("tokenizer.ggml.pre", "default")
    family = GGUF_PRE_TOKENIZERS.get(pre)
    if family is None:
      raise ValueError(
          f"{source}: tokenizer.ggml.pre={pre!r} is not supported; supported: {sorted(GGUF_PRE_TOKENIZERS)}."
      )
    tokens = metadata.get("tokenizer.ggml.tokens")
    merges = metadata.get("tokenizer.ggml.merges")
    if not tokens or merges is None:
      raise ValueError(f"{source}: tokenizer.ggml.tokens or tokenizer.ggml.merges is missing.")
    token_types = metadata.get("tokenizer.ggml.token_type") or [_TOKEN_NORMAL] * len(tokens)
    if len(token_types) != len(tokens):
      raise ValueError(
          f"{source}: tokenizer.ggml.token_type has {len(token_types)} entries for {len(tokens)} tokens."
      )
    vocab = {}
    for i, t in enumerate(tokens):
      vocab.setdefault(t, i)
    if len(vocab) != len(tokens):
      raise ValueError(f"{source}: tokenizer.ggml.tokens has duplicate entries.")
    merge_pairs = []
    for m in merges:
      parts = m.split(" ")
      if len(parts) != 2:
        raise ValueError(f"{source}: malformed merge {m!r} in tokenizer.ggml.merges.")
      merge_pairs.append((parts[0], parts[1]))

    tok = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=merge_pairs, fuse_unk=False, byte_fallback=False))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if family == "gpt2":
      tok.pre_tokenizer = byte_level
    elif family == "digits+gpt2":
      tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    else:
      regex = _LLAMA3_SPLIT if family == "llama3" else _QWEN2_SPLIT
      tok.pre_tokenizer = pre_tokenizers.Sequence([
          pre_tokenizers.Split(tokenizers.Regex(regex), behavior="isolated", invert=False),
          pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
      ])
    tok.decoder = decoders.ByteLevel()
    added = []
    for t, kind_id in zip(tokens, token_types):
      if kind_id in (_TOKEN_CONTROL, _TOKEN_USER_DEFINED):
        added.append(tokenizers.AddedToken(t, special=kind_id == _TOKEN_CONTROL, normalized=False))
    if added:
      tok.add_special_tokens(added)

    def get_id(key):
      value = metadata.get(key)
      if value is None:
        return None
      value = int(value)
      if not 0 <= value < len(tokens):
        raise ValueError(f"{source}: {key}={value} is outside the vocabulary of {len(tokens)} tokens.")
      return value

    bos_id = get_id("tokenizer.ggml.bos_token_id")
    eos_id = get_id("tokenizer.ggml.eos_token_id")
    eot_id = get_id("tokenizer.ggml.eot_token_id")
    return cls(
        tok,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=get_id("tokenizer.ggml.padding_token_id"),
        add_bos=bool(metadata.get("tokenizer.ggml.add_bos_token", False)),
        chat_template=metadata.get("tokenizer.chat_template"),
        extra_stop_ids=[eot_id] if eot_id is not None else [],
    )
