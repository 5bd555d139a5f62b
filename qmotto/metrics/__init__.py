"""Estimators for pass@k under independent and coupled sampling (NumPy only).

Start with `pass_at_k(correct, sampler=qmotto.get_sampler(name), k=...)`: it
picks an unbiased estimator for the sampler (Chen et al. for i.i.d. samples
only; replication or valid sub-groups for coupled samplers) and raises where
none exists. Then `bootstrap_ci` for intervals over problems,
`bootstrap_union_bound` for the ceiling of any marginal-preserving sampler
mean_i min(1, k p_i) from counts of samples (the plain plug-in `union_bound`
is biased low when p_i is estimated), and `samples_saved` /
`bootstrap_samples_saved` for the headline metric.

This package imports neither JAX nor the rest of qmotto: a sampler reaches
it as data, its group structure (`Sampler.group_structure`, one of
GROUP_STRUCTURES; see `subgroups`).
"""

from qmotto.metrics.bootstrap import ConfidenceInterval
from qmotto.metrics.bootstrap import bootstrap_ci
from qmotto.metrics.passk import UnionBoundInterval
from qmotto.metrics.passk import bootstrap_union_bound
from qmotto.metrics.passk import chen_pass_at_k
from qmotto.metrics.passk import iid_pass_at_k_from_p
from qmotto.metrics.passk import pass_at_k
from qmotto.metrics.passk import pass_at_k_replicated
from qmotto.metrics.passk import pass_at_k_subgroups
from qmotto.metrics.passk import union_bound
from qmotto.metrics.passk import union_bound_corrected_per_problem
from qmotto.metrics.passk import union_bound_per_problem
from qmotto.metrics.saved import SavingsInterval
from qmotto.metrics.saved import bootstrap_samples_saved
from qmotto.metrics.saved import samples_saved
from qmotto.metrics.subgroups import GROUP_STRUCTURES
from qmotto.metrics.subgroups import MAX_IID_SUBGROUPS
from qmotto.metrics.subgroups import GroupStructure
from qmotto.metrics.subgroups import allowed_subgroup_sizes
from qmotto.metrics.subgroups import valid_subgroups

__all__ = [
    "GROUP_STRUCTURES",
    "MAX_IID_SUBGROUPS",
    "ConfidenceInterval",
    "GroupStructure",
    "SavingsInterval",
    "UnionBoundInterval",
    "allowed_subgroup_sizes",
    "bootstrap_ci",
    "bootstrap_samples_saved",
    "bootstrap_union_bound",
    "chen_pass_at_k",
    "iid_pass_at_k_from_p",
    "pass_at_k",
    "pass_at_k_replicated",
    "pass_at_k_subgroups",
    "samples_saved",
    "union_bound",
    "union_bound_corrected_per_problem",
    "union_bound_per_problem",
    "valid_subgroups",
]
