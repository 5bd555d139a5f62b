"""What `import qmotto` promises: the names users and notebooks rely on, and where they live."""

import inspect

import qmotto

PROMISED = (
    "sample_sequences", "sample_sequences_batched", "generate", "load_model", "forward_logits", "SAMPLERS",
    "get_sampler", "qmc", "metrics", "sharding", "Sampler", "SamplingOptions", "LogitTransform",
    "GenerateOutput", "Model", "LlamaConfig",
)


def test_top_level_exports():
  for name in PROMISED:
    assert name in qmotto.__all__ and hasattr(qmotto, name), name
  assert sorted(qmotto.__all__) == sorted(set(qmotto.__all__))
  assert all(hasattr(qmotto, name) for name in qmotto.__all__)


def test_sharding_is_the_decode_module():
  assert qmotto.sharding is qmotto.decode.sharding
  assert qmotto.sharding.GroupSharding.generate.__doc__
  assert qmotto.generate is qmotto.decode.generate


def test_subpackages_declare_their_exports():
  import qmotto.evals
  import qmotto.rl
  import qmotto.tasks
  import qmotto.train
  import qmotto.utils

  for package in (qmotto.decode, qmotto.sampling, qmotto.metrics, qmotto.qmc, qmotto.models, qmotto.tasks,
                  qmotto.evals, qmotto.train, qmotto.rl, qmotto.utils):
    assert package.__doc__, package.__name__
    assert package.__all__ and all(hasattr(package, name) for name in package.__all__), package.__name__


def test_public_functions_have_docstrings():
  missing = []
  for package in (qmotto.decode, qmotto.sampling, qmotto.metrics, qmotto.qmc):
    for name in package.__all__:
      obj = getattr(package, name)
      if (inspect.isfunction(obj) or inspect.isclass(obj)) and not inspect.getdoc(obj):
        missing.append(f"{package.__name__}.{name}")
  assert not missing, missing


def test_importing_rl_does_not_load_the_sft_trainer():
  import subprocess
  import sys

  code = "import sys, qmotto.rl.grpo; print('qmotto.train.sft' in sys.modules)"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
  assert out.stdout.strip() == "False", out.stderr[-2000:]
