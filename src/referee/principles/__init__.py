"""Principles stage: a constitution compressed from pairwise preferences (Inverse Constitutional AI).

:func:`learn_principles` proposes, merges, votes, selects and tests principles; the constitution
it writes is a judge template (``referee rank --template constitution.jinja``) that decides as the
annotators did. :func:`load_preferences` reads preferences from JSONL or a run folder.
"""

from ._cluster import Cluster, merge_principles
from ._data import Preference, load_preferences, load_principles, preferences_from_run, split
from ._run import PrinciplesResult, constitution_template, learn_principles
from ._select import Selection, predict, select_greedy, wilson

__all__ = ["Cluster", "Preference", "PrinciplesResult", "Selection", "constitution_template", "learn_principles",
           "load_preferences", "load_principles", "merge_principles", "predict", "preferences_from_run",
           "select_greedy", "split", "wilson"]
