"""Estimators for pass@k and test-time scaling under independent and coupled sampling (NumPy only).

Start with `pass_at_k(correct, sampler=qmotto.get_sampler(name), k=...)`: it
picks an unbiased estimator for the sampler (Chen et al. for i.i.d. samples
only; replication or valid sub-groups for coupled samplers) and raises where
none exists. Then `bootstrap_ci` for intervals over problems,
`bootstrap_union_bound` for the ceiling of any marginal-preserving sampler
mean_i min(1, k p_i) from counts of samples (the plain plug-in `union_bound`
is biased low when p_i is estimated), and `samples_saved` /
`bootstrap_samples_saved` for the headline metric.

Test-time-scaling strategies (`strategies`: `majority_vote`, `weighted_vote`
and `best_of_n` over one group, answers as ids from `encode_answers`) have
unbiased estimators of their accuracy at k samples in `tts`:
`strategy_at_k(name, answer_ids=..., correct=..., scores=..., sampler=..., k=...)`
gives maj@k, weighted@k or bon@k per problem, the estimator chosen for the
sampler as in `pass_at_k`; the curves go to `bootstrap_ci` and
`samples_saved` like pass@k curves.

Sampling until verified (`first_success`): rounds of b samples until a
verifier accepts one, within a budget N. `first_success(accepted, correct,
sampler=..., round_size=b, lengths=...)` gives per problem the expected
samples drawn, the solve rate and the expected tokens: exact over all
orderings of the pooled samples for i.i.d., the mean over groups read in
slot order for an extensible coupled sampler (`is_extensible`).
`imperfect_verifier` makes a verifier with false-positive rate q, and
`bootstrap_cost_saved` the samples (or tokens) saved against i.i.d.

This package imports neither JAX nor the rest of qmotto: a sampler reaches
it as data, its group structure (`Sampler.group_structure`, one of
GROUP_STRUCTURES; see `subgroups`).
"""

from qmotto.metrics.bootstrap import ConfidenceInterval
from qmotto.metrics.bootstrap import bootstrap_ci
from qmotto.metrics.first_success import EXTENSIBLE_STRUCTURES
from qmotto.metrics.first_success import FirstSuccess
from qmotto.metrics.first_success import bootstrap_cost_saved
from qmotto.metrics.first_success import first_success
from qmotto.metrics.first_success import first_success_in_order
from qmotto.metrics.first_success import iid_first_success
from qmotto.metrics.first_success import imperfect_verifier
from qmotto.metrics.first_success import is_extensible
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
from qmotto.metrics.strategies import NO_ANSWER
from qmotto.metrics.strategies import STRATEGIES
from qmotto.metrics.strategies import Strategy
from qmotto.metrics.strategies import best_of_n
from qmotto.metrics.strategies import encode_answers
from qmotto.metrics.strategies import get_strategy
from qmotto.metrics.strategies import majority_vote
from qmotto.metrics.strategies import mean_token_logprob
from qmotto.metrics.strategies import tie_priorities
from qmotto.metrics.strategies import weighted_vote
from qmotto.metrics.subgroups import GROUP_STRUCTURES
from qmotto.metrics.subgroups import MAX_IID_SUBGROUPS
from qmotto.metrics.subgroups import GroupStructure
from qmotto.metrics.subgroups import allowed_subgroup_sizes
from qmotto.metrics.subgroups import valid_subgroups
from qmotto.metrics.tts import NUM_SUBSETS
from qmotto.metrics.tts import best_of_n_at_k
from qmotto.metrics.tts import majority_at_infinity
from qmotto.metrics.tts import majority_at_k
from qmotto.metrics.tts import strategy_at_k
from qmotto.metrics.tts import weighted_vote_at_k

__all__ = [
    "EXTENSIBLE_STRUCTURES",
    "GROUP_STRUCTURES",
    "MAX_IID_SUBGROUPS",
    "NO_ANSWER",
    "NUM_SUBSETS",
    "STRATEGIES",
    "ConfidenceInterval",
    "FirstSuccess",
    "GroupStructure",
    "SavingsInterval",
    "Strategy",
    "UnionBoundInterval",
    "allowed_subgroup_sizes",
    "best_of_n",
    "best_of_n_at_k",
    "bootstrap_ci",
    "bootstrap_cost_saved",
    "bootstrap_samples_saved",
    "bootstrap_union_bound",
    "chen_pass_at_k",
    "encode_answers",
    "first_success",
    "first_success_in_order",
    "get_strategy",
    "iid_first_success",
    "iid_pass_at_k_from_p",
    "imperfect_verifier",
    "is_extensible",
    "majority_at_infinity",
    "majority_at_k",
    "majority_vote",
    "mean_token_logprob",
    "pass_at_k",
    "pass_at_k_replicated",
    "pass_at_k_subgroups",
    "samples_saved",
    "strategy_at_k",
    "tie_priorities",
    "union_bound",
    "union_bound_corrected_per_problem",
    "union_bound_per_problem",
    "valid_subgroups",
    "weighted_vote",
    "weighted_vote_at_k",
]
