"""Decoding whole sequences with coupled groups: the loops around `qmotto.sampling`'s step.

    tokens = decode.sample_sequences(key, logits_fn, num_samples=16, length=32, sampler="lattice")
    tokens = decode.sample_sequences_batched(key, logits_fn, num_groups=G, num_samples=16,
                                             length=32, sampling=SamplingOptions.create("sobol"))
    out = decode.generate(key, model, prompts, prompt_lengths, num_samples=16,
                          max_new_tokens=64, sampling="lattice", eos_id=tokenizer.eos_id)
    out = sharding.GroupSharding(sharding.make_mesh()).generate(key, model, prompts, ...)
    part = decode.generate(key, model, prompts, prompt_lengths, max_new_tokens=64,
                           num_samples=decode.GroupSlice(offset=8, size=4, group_size=32))
    out = decode.sample_until_accepted(key, model, prompts, prompt_lengths, max_new_tokens=64,
                                       rounds=decode.Rounds(verify, round_size=4, budget=32),
                                       sampling="lattice_extensible")

Modules:
  loop       the model-agnostic loop over `logits_fn(tokens, t)` (a fake model can test it);
             GroupSlice, slots [offset, offset + size) of each group, for every entry point
  generate   prefill once per prompt, then k coupled samples with a KV cache
  rounds     sampling in rounds until a verifier accepts (extensible samplers)
  sharding   groups over "data", models over "model" (shard_map, NamedSharding, multi-host)
  memory     the per-device bytes of a generate call, planned before it runs
  checks     argument checks shared by the three
"""

from qmotto.decode import checks
from qmotto.decode import memory
from qmotto.decode import rounds
from qmotto.decode import sharding
from qmotto.decode.memory import MemoryPlan
from qmotto.decode.memory import plan_memory
from qmotto.decode.memory import suggest_mesh
from qmotto.decode.generate import GenerateOutput
from qmotto.decode.generate import generate
from qmotto.decode.loop import DecodeState
from qmotto.decode.loop import GroupSlice
from qmotto.decode.loop import LogitsFn
from qmotto.decode.loop import sample_sequences
from qmotto.decode.loop import sample_sequences_batched
from qmotto.decode.rounds import Rounds
from qmotto.decode.rounds import RoundsOutput
from qmotto.decode.rounds import sample_until_accepted

__all__ = [
    "DecodeState",
    "GenerateOutput",
    "GroupSlice",
    "LogitsFn",
    "MemoryPlan",
    "Rounds",
    "RoundsOutput",
    "checks",
    "generate",
    "memory",
    "plan_memory",
    "rounds",
    "sample_sequences",
    "sample_sequences_batched",
    "sample_until_accepted",
    "sharding",
    "suggest_mesh",
]
