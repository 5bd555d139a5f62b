"""A tabular toy policy with an exact policy gradient: checks GRPO's estimator under coupling.

    python -m qmotto.rl.toy_policy                      # writes results/grpo/loo_bias.json
    python -m qmotto.rl.toy_policy --num_groups=65536 --output=/tmp/loo_bias.json

The policy is autoregressive over a vocabulary of V tokens for T steps: token
0 has logits `first[V]`, token t >= 1 has logits `next[t - 1, y_{t-1}]`
(a [T - 1, V, V] table). A fixed table gives the reward r(y) of each of the
V**T sequences, so J(theta) = sum_y pi(y) r(y) and its gradient are exact by
enumeration.

A group of G sequences is drawn with qmotto's samplers
(`qmotto.sample_sequences_batched` with a `logits_fn` built from the table),
and the group's policy-gradient estimate is

    g = (1/G) sum_i A_i grad log pi(y_i)

with advantages A from `qmotto.rl.advantages` (the same functions GRPO uses).
Averaging g over many independent groups estimates E[g]; `check_estimates`
compares it with a target (e.g. the exact gradient) component by component
in units of the standard error of the mean over groups. With a fixed baseline
E[g] = grad J for every exact sampler; with group baselines ("loo", "mean")
coupling can add a bias, which `bias_report` measures.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qmotto import decode
from qmotto.rl import advantages as advantages_lib


class TabularPolicy(NamedTuple):
  """Logit tables (a pytree; the parameters theta).

  Attributes:
    first: float32[V] logits of token 0.
    next: float32[T - 1, V, V] logits of token t given token t - 1.
  """

  first: jax.Array
  next: jax.Array

  @property
  def vocab(self) -> int:
    return int(self.first.shape[0])

  @property
  def length(self) -> int:
    return int(self.next.shape[0]) + 1


def default_problem() -> tuple[TabularPolicy, np.ndarray]:
  """The policy and reward table used by the tests and the report: V = 3, T = 2.

  Probabilities are moderate (no token below about 0.1) and rewards uneven, so
  the coupling changes which sequences share a group.
  """
  first = np.log(np.array([0.5, 0.3, 0.2], np.float32))
  nxt = np.log(np.array([[[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4]]], np.float32))
  reward = np.array([[1.0, 0.0, 0.3], [0.0, 0.8, 1.0], [0.5, 0.0, 0.0]], np.float32)  # r[y0, y1]
  return TabularPolicy(jnp.asarray(first), jnp.asarray(nxt)), reward


def all_sequences(vocab: int, length: int) -> np.ndarray:
  """int32[V**T, T]: every sequence, first token most significant."""
  grid = np.indices((vocab,) * length).reshape(length, -1).T
  return grid.astype(np.int32)


def sequence_logprob(theta: TabularPolicy, y: jax.Array) -> jax.Array:
  """log pi(y) of one sequence int[T]."""
  first, nxt = jnp.asarray(theta.first), jnp.asarray(theta.next)
  logp = jax.nn.log_softmax(first)[y[0]]
  if nxt.shape[0]:
    rows = nxt[jnp.arange(nxt.shape[0]), y[:-1]]  # [T - 1, V]
    logp = logp + jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(rows), y[1:, None], axis=1))
  return logp


def expected_reward(theta: TabularPolicy, reward: jax.Array) -> jax.Array:
  """J(theta) = sum_y pi(y) r(y), by enumeration (reward: float[V] * T table)."""
  seqs = all_sequences(theta.vocab, theta.length)
  logp = jax.vmap(functools.partial(sequence_logprob, theta))(jnp.asarray(seqs))
  return jnp.sum(jnp.exp(logp) * jnp.asarray(reward)[tuple(seqs.T)])


def flatten_batch(tree) -> jax.Array:
  """A batch of TabularPolicy-shaped gradients (leading axis B) as float32[B, D], D = V + (T-1) V^2."""
  return jnp.concatenate([x.reshape(x.shape[0], -1) for x in jax.tree.leaves(tree)], axis=-1)


def exact_gradient(theta: TabularPolicy, reward) -> np.ndarray:
  """float64[D]: grad J, flattened as (first, next)."""
  grad = jax.grad(expected_reward)(theta, jnp.asarray(reward))
  return np.concatenate([np.asarray(grad.first, np.float64).ravel(), np.asarray(grad.next, np.float64).ravel()])


def make_logits_fn(theta: TabularPolicy):
  """logits_fn(tokens int32[M, G, T], t) -> float32[M, G, V] for `sample_sequences_batched`.

  One function object per policy: the sampler's jit keys on it.
  """
  first = jnp.asarray(theta.first)
  nxt = jnp.asarray(theta.next)

  def logits_fn(tokens: jax.Array, t: jax.Array) -> jax.Array:
    prev = jax.lax.dynamic_index_in_dim(tokens, jnp.maximum(t - 1, 0), axis=2, keepdims=False)  # [M, G]
    table = jax.lax.dynamic_index_in_dim(nxt, jnp.clip(t - 1, 0, max(nxt.shape[0] - 1, 0)), axis=0,
                                         keepdims=False) if nxt.shape[0] else jnp.zeros((first.shape[0],) * 2)
    later = table[prev]  # [M, G, V]
    return jnp.where(t == 0, jnp.broadcast_to(first, later.shape), later)

  return logits_fn


@functools.partial(jax.jit, static_argnames=("kind",))
def _group_estimates(theta, samples, reward, baseline, *, kind):
  """[M, D] per-group estimates (1/G) sum_i A_i grad log pi(y_i)."""
  m, g, _ = samples.shape
  rewards = reward[tuple(jnp.moveaxis(samples, -1, 0))]  # [M, G]
  adv = advantages_lib.advantages(rewards, kind, baseline=baseline if kind == "fixed" else None)
  grads = jax.vmap(jax.grad(sequence_logprob), in_axes=(None, 0))(theta, samples.reshape(m * g, -1))
  flat = flatten_batch(grads).reshape(m, g, -1)  # [M, G, D]
  return jnp.einsum("mg,mgd->md", adv, flat) / g


def draw_groups(key, theta: TabularPolicy, *, sampler: str, group_size: int, num_groups: int,
                logits_fn=None) -> jax.Array:
  """int32[M, G, T]: M independent groups of G sequences from `sampler`."""
  return decode.sample_sequences_batched(
      key, logits_fn or make_logits_fn(theta), num_groups=num_groups, num_samples=group_size,
      length=theta.length, sampling=sampler,
  )


def group_estimates(samples, theta: TabularPolicy, reward, *, advantage: str, baseline: float | None = None
                    ) -> np.ndarray:
  """float64[M, D] the gradient estimate of each group of `samples` int[M, G, T]."""
  advantages_lib.check_kind(advantage)
  base = jnp.float32(0.0 if baseline is None else baseline)
  out = _group_estimates(theta, jnp.asarray(samples), jnp.asarray(reward, jnp.float32), base, kind=advantage)
  return np.asarray(out, np.float64)


class Check(NamedTuple):
  """How far the mean of per-group estimates is from a target, per component.

  Attributes:
    mean: float64[D] mean over groups.
    se: float64[D] standard error of that mean (sample std / sqrt(M)).
    bias: float64[D] mean - target.
    z: float64[D] bias / se (0 where se is 0 and the bias is 0).
    max_abs_z: the largest |z|.
  """

  mean: np.ndarray
  se: np.ndarray
  bias: np.ndarray
  z: np.ndarray
  max_abs_z: float


def check_estimates(estimates: np.ndarray, target: np.ndarray) -> Check:
  """Compares the mean of i.i.d. per-group estimates [M, D] with `target` [D]."""
  estimates = np.asarray(estimates, np.float64)
  m = estimates.shape[0]
  mean = estimates.mean(0)
  se = estimates.std(0, ddof=1) / np.sqrt(m)
  bias = mean - np.asarray(target, np.float64)
  with np.errstate(divide="ignore", invalid="ignore"):
    z = np.where(se > 0, bias / np.where(se > 0, se, 1.0), np.where(bias == 0, 0.0, np.inf))
  return Check(mean, se, bias, z, float(np.max(np.abs(z))))


def bias_report(
    *,
    samplers=("iid", "lattice", "stratified", "sobol"),
    group_sizes=(4, 8),
    advantages=("fixed", "loo", "mean"),
    num_groups: int = 1 << 15,
    seed: int = 0,
    fixed_baseline: float = 0.5,
) -> dict:
  """The measured bias of GRPO's gradient estimate per sampler, group size and advantage.

  Each row compares the mean estimate with the exact gradient, and for
  "mean" also with (G - 1)/G times it (the i.i.d. expectation of the
  mean-centred estimate: its only bias without coupling is that scale).

  Returns:
    {"problem": the policy and rewards, "exact_gradient", "num_groups",
    "rows": [{"sampler", "group_size", "advantage", "max_abs_z",
    "relative_bias" (|bias| / |grad J|), "scale" and "orthogonal" (the mean
    estimate as scale * grad J plus a part orthogonal to it, relative to
    |grad J|), "variance" (trace of the covariance of one group's
    estimate), "bias" [D], "se" [D], "z" [D],
    and for "mean": "max_abs_z_scaled", "relative_bias_scaled"}]}.
  """
  theta, reward = default_problem()
  exact = exact_gradient(theta, reward)
  logits_fn = make_logits_fn(theta)
  rows = []
  for g in group_sizes:
    for name in samplers:
      key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), g), _stream(name))
      samples = draw_groups(key, theta, sampler=name, group_size=g, num_groups=num_groups, logits_fn=logits_fn)
      for kind in advantages:
        est = group_estimates(samples, theta, reward, advantage=kind,
                              baseline=fixed_baseline if kind == "fixed" else None)
        check = check_estimates(est, exact)
        row = {
            "sampler": name, "group_size": g, "advantage": kind, "max_abs_z": check.max_abs_z,
            "relative_bias": float(np.linalg.norm(check.bias) / np.linalg.norm(exact)),
            **_decompose(check.mean, exact),
            "variance": float(np.sum(check.se ** 2) * num_groups),
            "bias": check.bias.tolist(), "se": check.se.tolist(), "z": check.z.tolist(),
        }
        if kind == "mean":
          scaled = check_estimates(est, exact * (g - 1) / g)
          row["max_abs_z_scaled"] = scaled.max_abs_z
          row["relative_bias_scaled"] = float(np.linalg.norm(scaled.bias) / np.linalg.norm(exact))
        rows.append(row)
  return {
      "problem": {
          "vocab": theta.vocab, "length": theta.length,
          "probs_first": np.asarray(jax.nn.softmax(theta.first)).tolist(),
          "probs_next": np.asarray(jax.nn.softmax(theta.next)).tolist(),
          "reward": np.asarray(reward).tolist(), "fixed_baseline": fixed_baseline,
      },
      "exact_gradient": exact.tolist(),
      "expected_reward": float(expected_reward(theta, jnp.asarray(reward))),
      "num_groups": num_groups,
      "seed": seed,
      "rows": rows,
  }


def _decompose(mean: np.ndarray, exact: np.ndarray) -> dict:
  """mean = scale * exact + rest: {"scale", "orthogonal" (|rest| / |exact|)}.

  A bias that is only a scale (scale != 1, orthogonal 0) changes the step size,
  not the direction of the expected update.
  """
  scale = float(mean @ exact / (exact @ exact))
  return {"scale": scale, "orthogonal": float(np.linalg.norm(mean - scale * exact) / np.linalg.norm(exact))}


def _stream(name: str) -> int:
  return int.from_bytes(name.encode()[:4].ljust(4, b"\0"), "little")


def format_report(report: dict) -> str:
  """A table: sampler, G, advantage, max |z| vs grad J, relative bias."""
  lines = [f"{'sampler':<11} {'G':>3} {'advantage':<9} {'max|z|':>8} {'|bias|/|grad|':>14} {'scale':>7} "
           f"{'orthogonal':>10} {'variance':>8}  (mean: also vs (G-1)/G grad)"]
  for r in report["rows"]:
    extra = ""
    if "max_abs_z_scaled" in r:
      extra = f"  scaled: max|z| {r['max_abs_z_scaled']:.2f}, {r['relative_bias_scaled']:.4f}"
    lines.append(f"{r['sampler']:<11} {r['group_size']:>3} {r['advantage']:<9} {r['max_abs_z']:>8.2f} "
                 f"{r['relative_bias']:>14.4f} {r['scale']:>7.3f} {r['orthogonal']:>10.4f} {r['variance']:>8.4f}{extra}")
  return "\n".join(lines)


def main(argv=None) -> None:
  """python -m qmotto.rl.toy_policy [--num_groups=N] [--seed=S] [--output=PATH]."""
  args = dict(num_groups=str(1 << 16), seed="0", output="results/grpo/loo_bias.json")
  for item in argv if argv is not None else sys.argv[1:]:
    key, _, value = item.lstrip("-").partition("=")
    if key not in args:
      raise ValueError(f"unknown argument {item!r}; allowed: {['--' + k for k in args]}.")
    args[key] = value
  start = time.perf_counter()
  report = bias_report(num_groups=int(args["num_groups"]), seed=int(args["seed"]))
  report["seconds"] = time.perf_counter() - start
  report["command"] = " ".join(["python -m qmotto.rl.toy_policy"] + list(argv if argv is not None else sys.argv[1:]))
  os.makedirs(os.path.dirname(os.path.abspath(args["output"])), exist_ok=True)
  with open(args["output"], "w") as f:
    json.dump(report, f, indent=1)
  print(format_report(report))
  print(f"Wrote {args['output']}")


if __name__ == "__main__":
  main()
