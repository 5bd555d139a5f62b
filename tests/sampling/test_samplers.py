"""Tests of qmotto.sampling.samplers: the order field, the extensible lattice, `extensible`, group structures."""

import jax
import numpy as np
import pytest

import qmotto
from qmotto import metrics
from qmotto.sampling import samplers

EXTENSIBLE = {"iid", "antithetic", "antithetic_token", "sobol", "sobol_lms", "sobol_code", "lattice_extensible"}


def _words(sampler, n, m):
  s = 1 if sampler.mode == "code" else 3
  return np.asarray(sampler.words(jax.random.key(4), n, s, np.arange(m, dtype=np.uint32)))


@pytest.mark.parametrize("name", sorted(qmotto.SAMPLERS))
def test_extensible_means_the_first_slots_do_not_depend_on_the_group_size(name):
  """`extensible` is what the words do: the first 4 slots of a group of 16
  are exactly the group of 4 for an extensible sampler, and not otherwise."""
  sampler = qmotto.SAMPLERS[name]
  same = np.array_equal(_words(sampler, 16, 4), _words(sampler, 4, 4))
  assert sampler.extensible == same == (name in EXTENSIBLE), (name, sampler.extensible, same)


def test_lattice_extensible():
  sampler = qmotto.get_sampler("lattice_extensible")
  assert (sampler.points, sampler.mode, sampler.order) == ("lattice", "code", "radical_inverse")
  assert sampler.name == "lattice_extensible" and sampler.group_structure == "dyadic"
  assert qmotto.SAMPLERS["lattice"].order == "natural" and qmotto.SAMPLERS["lattice"] != sampler
  assert sampler.check_group_size(64) == 64
  with pytest.raises(ValueError, match=r"num_samples=12: sampler 'lattice_extensible' needs a power of two"):
    sampler.check_group_size(12)
  with pytest.raises(ValueError, match=r"budget=6: sampler 'lattice_extensible' needs a power of two"):
    sampler.check_group_size(6, "budget")
  # The same evenly spaced points as the natural-order lattice of 16, in radical-inverse order.
  words = _words(sampler, 16, 16)[:, 0].astype(np.int64)
  np.testing.assert_array_equal(np.sort((words - words[0]) % 2**32), np.arange(16) * 2**28)


def test_metrics_sub_groups_of_the_extensible_lattice_are_shifted_lattices():
  """metrics reads the "dyadic" structure: its sub-groups of m are the
  aligned blocks, and each block's points are an evenly spaced m-point set
  (no metrics change was needed)."""
  sampler = qmotto.get_sampler("lattice_extensible")
  words = _words(sampler, 16, 16)[:, 0].astype(np.int64)
  for m in metrics.allowed_subgroup_sizes(sampler, 16):
    blocks = metrics.valid_subgroups(sampler, 16, m)
    np.testing.assert_array_equal(blocks, np.arange(16).reshape(16 // m, m))
    for block in blocks:
      gaps = np.diff(np.append(np.sort(words[block]), np.sort(words[block])[0] + 2**32))
      np.testing.assert_array_equal(gaps, 2**32 // m)
  assert metrics.allowed_subgroup_sizes(sampler, 16) == [1, 2, 4, 8, 16]
  correct = np.array([[[1, 0, 0, 0, 0, 0, 0, 0]]], bool)
  np.testing.assert_array_equal(metrics.pass_at_k(correct, sampler=sampler, k=2), [0.25])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(points="sobol", mode="code", order="radical_inverse"),
         r"order='radical_inverse' is the extensible 1-D lattice: it needs points='lattice' and mode='code', "
         r"got points='sobol', mode='code'"),
        (dict(points="lattice", mode="token", order="radical_inverse"), r"got points='lattice', mode='token'"),
        (dict(order="bit_reversed"), r"Sampler.order: unknown order 'bit_reversed'; allowed: \('natural', 'radical_inverse'\)"),
    ],
)
def test_bad_order(kwargs, match):
  with pytest.raises(ValueError, match=match):
    samplers.Sampler(**kwargs)


def test_names_and_hashing():
  assert samplers.Sampler("lattice", "code", order="radical_inverse") == qmotto.SAMPLERS["lattice_extensible"]
  assert len({hash(s) for s in qmotto.SAMPLERS.values()}) == len(qmotto.SAMPLERS)
  assert samplers.ORDERS == ("natural", "radical_inverse")
