"""NumPy references for the sampling tests (Hugging Face semantics)."""

import numpy as np


def transformed_probs(logits, temperature=1.0, top_k=None, top_p=None, min_p=None):
  """Exact next-token probabilities after temperature, top-k, top-p, min-p."""
  x = np.asarray(logits, dtype=np.float64) / temperature
  if top_k is not None and top_k < x.shape[-1]:
    kth = np.sort(x, axis=-1)[..., -top_k][..., None]
    x = np.where(x < kth, -np.inf, x)
  p = np.exp(x - x.max(axis=-1, keepdims=True))
  p /= p.sum(axis=-1, keepdims=True)
  if top_p is not None and top_p < 1.0:
    order = np.argsort(-p, axis=-1, kind="stable")
    sorted_p = np.take_along_axis(p, order, -1)
    mass_before = np.cumsum(sorted_p, -1) - sorted_p
    keep_sorted = mass_before < top_p
    keep = np.zeros_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, -1)
    p = np.where(keep, p, 0.0)
    p /= p.sum(axis=-1, keepdims=True)
  if min_p is not None and min_p > 0:
    p = np.where(p < min_p * p.max(axis=-1, keepdims=True), 0.0, p)
    p /= p.sum(axis=-1, keepdims=True)
  return p
