"""Simulated judges grounded in real verdicts, for planning an evaluation before paying for it.

The numeric core (:class:`SimulatedJudge`, the latent builders, :func:`run_plan`) works on
arrays; :func:`load_baseline_verdicts` is the only part that reads a file.
"""

from ._alpaca import BaselineVerdicts, load_baseline_verdicts
from ._judge import SimulatedJudge
from ._latent import latent_from_baseline, synthetic_panel
from ._run import agreement, evaluate_plan, fit_completed, fit_strengths, reference_strengths, run_plan

__all__ = ["BaselineVerdicts", "SimulatedJudge", "agreement", "evaluate_plan", "fit_completed", "fit_strengths",
           "latent_from_baseline", "load_baseline_verdicts", "reference_strengths", "run_plan", "synthetic_panel"]
