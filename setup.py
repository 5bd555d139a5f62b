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
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3"],
    },
)
