"""Verifiers that are not LLMs: reference metrics, programmatic checks, unit tests, perplexity.

Each is a pointwise judge (``score(question, response, reference)``) whose verdicts are stored
with ``mode="verifier"`` and turned into pairwise outcomes like any pointwise judge's
(:func:`referee.judge.score_candidates`, :func:`referee.judge.pointwise_outcomes`).
"""

from ._base import Verifier
from ._perplexity import Perplexity
from ._python import PublicExamples, PythonTests, candidate_program, example_tests, extract_code
from ._reference import Bleu, Chrf, ExactMatch, JsonSchemaCheck, LengthCheck, RegexMatch, normalize

VERIFIERS = {"bleu": Bleu, "chrf": Chrf, "exact": ExactMatch, "regex": RegexMatch, "length": LengthCheck,
             "json-schema": JsonSchemaCheck, "python-tests": PythonTests, "examples": PublicExamples,
             "perplexity": Perplexity}

__all__ = ["VERIFIERS", "Bleu", "Chrf", "ExactMatch", "JsonSchemaCheck", "LengthCheck", "Perplexity", "PublicExamples", "PythonTests",
           "RegexMatch", "Verifier", "candidate_program", "example_tests", "extract_code", "normalize"]
