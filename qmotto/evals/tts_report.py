"""Plain-text tables of a test-time-scaling result (what experiments/tts.py prints).

    print(tts_report.header_text(result))
    print(tts_report.rows_table(result["rows"], [4, 16, 64]))
    print(tts_report.first_success_table(result["rows"]))
    print(tts_report.breakdown_table(result["majority_breakdown"]))
"""

from __future__ import annotations

import textwrap

import numpy as np

from qmotto.evals import report
from qmotto.evals import run_config
from qmotto.evals import tts_config


def _percent(x) -> str:
  if x is None or np.isnan(x):
    return "n/a"
  if np.isinf(x):
    return "-inf" if x < 0 else "+inf"
  return f"{x:+.0%}"


def _saved(row: dict, prefix: str = "") -> str:
  if row["sampler"] == run_config.BASELINE:
    return "-"
  value = row.get(f"{prefix}saved_vs_iid")
  if value is None or np.isnan(value):
    return "n/a"
  return f"{_percent(value)} [{_percent(row[f'{prefix}saved_low'])}, {_percent(row[f'{prefix}saved_high'])}]"


def header_text(result: dict) -> str:
  """The lines above the tables: the run, the budget and rounds, and what each sampler drew."""
  lines = [
      f"{result['task']} / {result['model']} ({result['style']}): {result['num_problems']} problems, "
      f"budget N = {result['group_size']} in rounds of {result['round_size']}; {result['seconds']:.0f}s."
  ]
  drawn = report.drawn_text(result["rows"])
  if drawn:
    lines.append(f"drawn (problems x groups x group size): {drawn}.")
  return "\n".join(lines)


def rows_table(rows: list[dict], ks_shown: list[int] | None = None, *, notes: bool = True) -> str:
  """The metrics at k (pass@k, maj@k, weighted@k, bon@k): value, interval, samples saved vs i.i.d."""
  mine = [r for r in rows if r["metric"] != tts_config.FIRST_SUCCESS]
  level = report.level_text(mine or rows)
  header = f"{'sampler':<20} {'metric':<11} {'k':>4} {'value':>7} {level + ' CI':>17} {'saved vs iid':>24}"
  lines = [header, "-" * len(header)]
  for r in mine:
    if ks_shown is not None and r["k"] not in ks_shown:
      continue
    lines.append(f"{r['sampler']:<20} {r['metric']:<11} {r['k']:>4} {r['value']:>7.3f} "
                 f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] {_saved(r):>24}")
  if notes and mine:
    lines.append("")
    lines.append(textwrap.fill(
        f"Unbiased for each sampler (i.i.d.: pooled samples; coupled: valid sub-groups); {level} bootstrap "
        "intervals over problems. saved vs iid: 1 - k'/k, k' where the sampler reaches the i.i.d. value at k "
        "(interpolated in log k; n/a: never within the ks). weighted@k weighs each sample by exp(mean token "
        "log-probability); bon@k picks the highest mean token log-probability.", width=len(header)))
  return "\n".join(lines)


def first_success_table(rows: list[dict], *, notes: bool = True) -> str:
  """first_success per sampler and q: solve rate, expected samples and tokens, samples and tokens saved."""
  mine = [r for r in rows if r["metric"] == tts_config.FIRST_SUCCESS]
  if not mine:
    return ""
  level = report.level_text(mine)
  header = (f"{'sampler':<20} {'q':>5} {'solved':>6} {level + ' CI':>17} {'E[samples]':>10} {'CI':>15} "
            f"{'E[tokens]':>9} {'samples saved':>22} {'tokens saved':>22}")
  lines = [header, "-" * len(header)]
  for r in mine:
    samples_ci = f"[{r['samples_low']:.2f}, {r['samples_high']:.2f}]"
    lines.append(
        f"{r['sampler']:<20} {r['q']:>5.2f} {r['value']:>6.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] "
        f"{r['expected_samples']:>10.2f} {samples_ci:>15} "
        f"{r['expected_tokens']:>9.1f} {_saved(r):>22} {_saved(r, 'tokens_'):>22}")
  if notes:
    first = mine[0]
    lines.append("")
    lines.append(textwrap.fill(
        f"Sampling until verified: rounds of {first['round_size']} samples until the verifier accepts one, "
        f"within a budget of N = {first['k']}; the verifier accepts every correct sample and a wrong one with "
        "probability q. solved: the first accepted sample is correct; E[samples], E[tokens]: drawn before "
        "stopping. saved: 1 - E[samples] / E_iid[samples] (and tokens). i.i.d.: exact over all orderings of "
        "the pooled samples; coupled: one realization per group, read in slot order.", width=len(header)))
  return "\n".join(lines)


def breakdown_table(breakdown: list[dict]) -> str:
  """maj@k on problems whose most likely answer is right / wrong, per sampler, with the difference to i.i.d."""
  if not breakdown:
    return ""
  header = f"{'problems':<11} {'n':>4} {'sampler':<20} {'k':>4} {'maj@k':>6} {'95% CI':>16} {'minus iid':>24}"
  lines = [header, "-" * len(header)]
  for r in breakdown:
    if r["value"] is None:
      lines.append(f"{r['problems']:<11} {r['num_problems']:>4} {r['sampler']:<20} {r['k']:>4}  (no problems)")
      continue
    diff = "-" if r["diff_vs_iid"] is None else (
        f"{r['diff_vs_iid']:+.3f} [{r['diff_low']:+.3f}, {r['diff_high']:+.3f}]")
    lines.append(f"{r['problems']:<11} {r['num_problems']:>4} {r['sampler']:<20} {r['k']:>4} {r['value']:>6.3f} "
                 f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] {diff:>24}")
  lines.append("")
  lines.append(textwrap.fill(
      "mode_right / mode_wrong: problems whose plug-in maj@infinity (the plurality of all samples of all "
      "samplers) is right / wrong. A sharper vote helps on the first and hurts on the second.",
      width=len(header)))
  return "\n".join(lines)


def paths_text(paths: dict[str, str]) -> str:
  """The lines naming the files a run wrote: JSON, PNG (if plotted), samples and summary.json."""
  labels = {"json": "result (JSON)", "png": "plot (PNG)", "samples": "samples (NPZ)",
            "summary": "summary of the folder"}
  lines = ["Wrote:"]
  for key in ("json", "png", "samples", "summary"):
    if paths.get(key):
      lines.append(f"  {labels[key] + ':':<24}{paths[key]}")
  return "\n".join(lines)
