"""Audit stage: how far to trust a judge, with bootstrap intervals on every number.

Pure numpy over per-item arrays (P(a better), human labels, lengths). :func:`audit_judge` computes
the whole report; the single metrics (:func:`agreement`, :func:`cohen_kappa`,
:func:`position_consistency`, :func:`longer_preference`, :func:`family_preference`,
:func:`reliability`, :func:`ece`) and :func:`bootstrap_interval` are public too.
"""

from ._io import align_labels, read_labels
from ._metrics import (AuditReport, accuracy, Metric, agreement, audit_judge, bootstrap_interval, cohen_kappa, decisions, ece,
                       family_preference, longer_preference, position_consistency, reliability)

__all__ = ["align_labels", "read_labels", "AuditReport", "Metric", "accuracy", "agreement", "audit_judge", "bootstrap_interval", "cohen_kappa", "decisions",
           "ece", "family_preference", "longer_preference", "position_consistency", "reliability"]
