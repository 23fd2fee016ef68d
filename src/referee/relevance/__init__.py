"""Prompt independence: systems whose outputs do not depend on the prompt are found and flagged.

A constant or generic output ("Thank you for the excellent question! Here is a thorough answer
...") can win pairwise verdicts without answering anything (AlpacaEval's NullModel). Two checks,
both per system: how many words of its outputs are specific to each prompt, beyond its own
boilerplate and the quoted prompt (:func:`text_profile`), and how much better its outputs answer their own prompts
than other prompts, as a judge sees it (:func:`relevance_gap`). :func:`decide` turns them into a
flag with reasons. Pure functions; the judge that scores relevance lives in
:mod:`referee.judge` (:func:`referee.judge.check_prompt_independence`).
"""

from ._stats import IndependenceFinding, RelevanceGap, TextProfile, decide, relevance_gap, strip_quotes, text_profile

__all__ = ["IndependenceFinding", "RelevanceGap", "TextProfile", "decide", "relevance_gap", "strip_quotes",
           "text_profile"]
