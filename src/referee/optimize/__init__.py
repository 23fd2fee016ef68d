"""Optimize stage: a system's instruction (and demos) optimized by DSPy's own optimizers, with a
referee judge as the metric, and measured on prompts the optimizer never saw.

:func:`optimize` runs it; :class:`SystemAdapter` and :class:`StoreEngine` are how DSPy sees the
system and reaches the model (through referee's generation store).
"""

from ._dspy import Seen, StoreEngine, SystemAdapter, make_lm, system_messages, system_signature
from ._metric import JudgeMetric
from ._run import OPTIMIZERS, OptimizeResult, optimize, served_model, split_prompts, trials_table

__all__ = ["OPTIMIZERS", "JudgeMetric", "OptimizeResult", "Seen", "StoreEngine", "SystemAdapter", "make_lm",
           "optimize", "served_model", "split_prompts", "system_messages", "system_signature", "trials_table"]
