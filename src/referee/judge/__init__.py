"""Judge stage: judges ask a backend for verdicts."""

from ._pairwise import DEFAULT_TEMPLATE, TRUNCATION_MARKER, Answer, PairwiseLogprobJudge, PairwiseTemplate
from ._run import JudgeProgress, judge_comparisons, make_judge

__all__ = ["DEFAULT_TEMPLATE", "TRUNCATION_MARKER", "Answer", "JudgeProgress", "PairwiseLogprobJudge",
           "PairwiseTemplate", "judge_comparisons", "make_judge"]
