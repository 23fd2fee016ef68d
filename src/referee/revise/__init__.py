"""Revise stage: critique (the earliest critical error) -> revision -> the judge keeps only what it prefers.

:func:`revise` runs the rounds over a candidates file and writes the originals plus ``NAME+revised``
for ``rank``; :func:`parse_critique` validates a critic's structured reply.
"""

from ._critique import CRITIC_SYSTEM, CRITIQUE_SCHEMA, ERROR_TYPES, REVISER_SYSTEM, Critique, critic_messages, parse_critique, reviser_messages
from ._run import FEEDBACK, SUFFIX, ReviseResult, examples_feedback, revise, store_paths

__all__ = ["CRITIC_SYSTEM", "CRITIQUE_SCHEMA", "ERROR_TYPES", "FEEDBACK", "REVISER_SYSTEM", "SUFFIX", "Critique",
           "ReviseResult", "critic_messages", "examples_feedback", "parse_critique", "reviser_messages", "revise",
           "store_paths"]
