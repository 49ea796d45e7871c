"""Statistics of the result tables: mean ± sample std (ddof=1) and tests of an ordering.

Every claimed ordering in a table comes with a p-value: Welch's t-test for two independent
groups of seeds, the paired t-test when the runs are paired by seed (same data subset, same
seed for both models). p-values are two-sided; the direction is read from the means.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np


def mean_std(values: Sequence[float]) -> tuple[float, float]:
  """Mean and sample standard deviation (ddof=1; nan for a single value)."""
  values = np.asarray(values, np.float64)
  if len(values) == 0:
    return float("nan"), float("nan")
  std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
  return float(values.mean()), std


def fmt(values: Sequence[float], digits: int = 2) -> str:
  """``mean ± std (n=k)``; a single value is printed alone, with n=1."""
  mean, std = mean_std(values)
  if len(values) < 2:
    return f"{mean:.{digits}f} (n=1)"
  return f"{mean:.{digits}f} ± {std:.{digits}f} (n={len(values)})"


def welch(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
  """Two-sided p-value of Welch's t-test (unequal variances); None with fewer than 2 per group."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if len(a) < 2 or len(b) < 2:
    return None
  if a.std(ddof=1) == 0 and b.std(ddof=1) == 0:
    return 0.0 if a.mean() != b.mean() else 1.0
  return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def paired(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
  """Two-sided p-value of the paired t-test of ``a[i] - b[i]``; None with fewer than 2 pairs."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if len(a) != len(b):
    raise ValueError(f"paired test needs equal lengths, got {len(a)} and {len(b)}.")
  if len(a) < 2:
    return None
  diff = a - b
  if diff.std(ddof=1) == 0:
    return 0.0 if diff.mean() != 0 else 1.0
  return float(stats.ttest_rel(a, b).pvalue)


def paired_by_seed(a: Sequence[float], seeds_a: Sequence[int], b: Sequence[float],
                   seeds_b: Sequence[int]) -> Optional[dict]:
  """``a`` vs ``b`` on the seeds both have: ``{n, diff (mean of a - b), p (paired t-test)}``,
  or None when they share no seed."""
  common = sorted(set(seeds_a) & set(seeds_b))
  if not common:
    return None
  a = [a[list(seeds_a).index(s)] for s in common]
  b = [b[list(seeds_b).index(s)] for s in common]
  return {"n": len(common), "diff": float(np.mean(np.subtract(a, b))), "p": paired(a, b)}


def fmt_p(p: Optional[float]) -> str:
  if p is None:
    return "n/a"
  return f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def interim(verdict_text: str, done: int, planned: int) -> str:
  """A verdict reached before every planned seed is in, marked as such (the seed count is
  fixed in advance; an early 'yes' is not the table's answer)."""
  return verdict_text if done >= planned else f"interim, {done} of {planned} seeds: {verdict_text}"


def verdict(diff: float, p: Optional[float], alpha: float = 0.05) -> str:
  """'yes' / 'no' for a claimed ``diff > 0``: held only if the mean difference is positive
  and significant at ``alpha``; a significant negative difference is 'no (reversed)'."""
  if p is None:
    return "untested (n<2)"
  if p < alpha:
    return "yes" if diff > 0 else "no (reversed)"
  return "not significant"


def seeds_for_power(std: float, gap: float, alpha: float = 0.05, power: float = 0.8) -> int:
  """Seeds per arm for a two-sided two-sample test to detect ``gap`` with the given power.

  The normal approximation n = 2 (z_{1-alpha/2} + z_{power})^2 std^2 / gap^2, rounded up,
  plus one seed per arm for the t distribution's heavier tails at small n.
  """
  from scipy import stats  # pylint: disable=g-import-not-at-top
  if gap <= 0 or not math.isfinite(std):
    raise ValueError("seeds_for_power needs a positive gap and a finite std.")
  z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
  return int(math.ceil(2 * (z * std / gap) ** 2)) + 1
