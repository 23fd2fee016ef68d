"""Judge stage: judges ask a backend for verdicts."""

from ._pairwise import CAREFUL_TEMPLATE, DEFAULT_TEMPLATE, GUARDED_TEMPLATE, TRUNCATION_MARKER, Answer, PairwiseLogprobJudge, PairwiseTemplate, defang
from ._truncate import QUESTION_TRUNCATION_MARKER, REFERENCE_TRUNCATION_MARKER
from ._run import JudgeProgress, judge_comparisons, make_judge
from ._common import ScoredAnswer
from ._custom import CustomJudge
from ._generate import GeneratePairwiseJudge, parse_pairwise_verdict
from ._listwise import ListwiseJudge, parse_permutation
from ._modes import judge_by_mode, rank_lists, score_candidates
from ._relevance import RelevanceJudge, check_prompt_independence
from ._fidelity import measured_fidelity
from ._cost import CostLimitReached, CostMeter, apply_prices, backend_kind, estimate_call, load_prices
from ._make import judge_kind, read_config_file
from ._run import ordered_requests
from ._concurrent import judge_many
from ._pointwise import DEFAULT_TAXONOMY, Diagnosis, RubricJudge, YesProbabilityJudge, parse_rubric

__all__ = ["judge_many", "CostLimitReached", "CostMeter", "apply_prices", "backend_kind", "estimate_call", "judge_kind", "load_prices", "read_config_file",
           "ordered_requests", "CAREFUL_TEMPLATE", "DEFAULT_TEMPLATE", "GUARDED_TEMPLATE", "TRUNCATION_MARKER", "QUESTION_TRUNCATION_MARKER",
           "REFERENCE_TRUNCATION_MARKER", "Answer", "JudgeProgress", "PairwiseLogprobJudge",
           "PairwiseTemplate", "defang", "judge_comparisons", "make_judge",
           "DEFAULT_TAXONOMY", "CustomJudge", "RelevanceJudge", "check_prompt_independence", "measured_fidelity", "Diagnosis", "GeneratePairwiseJudge", "ListwiseJudge", "RubricJudge",
           "ScoredAnswer", "YesProbabilityJudge", "judge_by_mode",
           "parse_pairwise_verdict", "parse_permutation", "parse_rubric", "rank_lists",
           "score_candidates"]
