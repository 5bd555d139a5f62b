"""Language models in Flax: a Llama-family decoder with an explicit KV cache.

Checkpoint loaders live in `qmotto.models.loading` (imported on demand, not here).
"""

from qmotto.models.llama import DTYPES
from qmotto.models.llama import GroupCache
from qmotto.models.llama import KVCache
from qmotto.models.llama import Llama
from qmotto.models.llama import LlamaConfig
from qmotto.models.llama import Model
from qmotto.models.llama import forward_logits
from qmotto.models.llama import init_cache
from qmotto.models.llama import init_group_cache
from qmotto.models.llama import init_model
from qmotto.models.llama import init_params
from qmotto.models.llama import param_shapes

__all__ = [
    "DTYPES",
    "GroupCache",
    "KVCache",
    "Llama",
    "LlamaConfig",
    "Model",
    "forward_logits",
    "init_cache",
    "init_group_cache",
    "init_model",
    "init_params",
    "param_shapes",
]
