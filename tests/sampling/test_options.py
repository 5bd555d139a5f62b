"""SamplingOptions: one frozen, hashable object for the sampler and the logit transform."""

import dataclasses

import pytest

import qmotto
from qmotto import sampling


def test_create_builds_the_same_object_as_the_constructor():
  a = qmotto.SamplingOptions.create("sobol", temperature=0.7, top_k=5, top_p=0.9, min_p=0.1)
  b = qmotto.SamplingOptions(qmotto.get_sampler("sobol"), qmotto.LogitTransform(0.7, 5, 0.9, 0.1))
  assert a == b and hash(a) == hash(b)
  assert a.sampler.name == "sobol" and a.transform.top_p == 0.9 and a.check_logits


def test_defaults_and_names():
  assert qmotto.SamplingOptions() == qmotto.SamplingOptions("lattice") == sampling.as_options("lattice")
  assert qmotto.SamplingOptions("iid").sampler == qmotto.Sampler("iid", "token")
  assert qmotto.SamplingOptions.create(temperature=0.0).greedy
  options = qmotto.SamplingOptions.create("stratified")
  assert sampling.as_options(options) is options
  assert sampling.as_options(qmotto.get_sampler("antithetic")) == qmotto.SamplingOptions("antithetic")


def test_frozen_and_distinct_in_a_jit_cache_key():
  options = qmotto.SamplingOptions.create("lattice", top_p=0.9)
  with pytest.raises(dataclasses.FrozenInstanceError):
    options.check_logits = False
  variants = {options, qmotto.SamplingOptions.create("lattice", top_p=0.8),
              qmotto.SamplingOptions.create("lattice", top_p=0.9, check_logits=False), options}
  assert len(variants) == 3


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: qmotto.SamplingOptions("halton"), "sampler: unknown name 'halton'"),
        (lambda: qmotto.SamplingOptions(3), "sampler must be a name"),
        (lambda: qmotto.SamplingOptions("lattice", dict(temperature=1.0)), "transform must be a qmotto.LogitTransform"),
        (lambda: qmotto.SamplingOptions("lattice", check_logits="yes"), "check_logits must be True or False"),
        (lambda: qmotto.SamplingOptions.create("lattice", temperature=-1.0), "temperature must be"),
        (lambda: qmotto.SamplingOptions.create("lattice", top_p=0.0), "top_p must be"),
        (lambda: sampling.as_options(None), "sampling must be a qmotto.SamplingOptions"),
        (lambda: sampling.as_options(qmotto.LogitTransform(), name="options"), "options must be"),
    ],
)
def test_bad_options(build, match):
  with pytest.raises(ValueError, match=match):
    build()


@pytest.mark.parametrize("name", sorted(qmotto.SAMPLERS))
def test_every_sampler_names_a_group_structure_metrics_knows(name):
  assert qmotto.get_sampler(name).group_structure in qmotto.metrics.GROUP_STRUCTURES


def test_group_structures():
  structure = lambda name: qmotto.get_sampler(name).group_structure  # noqa: E731
  assert structure("iid") == "independent"
  assert structure("lattice") == "strided" and structure("lattice_token") == "whole"
  assert structure("sobol") == structure("sobol_code") == structure("sobol_lms") == "dyadic"
  assert structure("antithetic") == structure("antithetic_token") == "paired"
  assert structure("stratified") == structure("stratified_token") == "whole"
