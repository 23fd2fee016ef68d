"""Backends run a judge's model: llama.cpp in-process (more to come behind the same protocol)."""

from ._llamacpp import LlamaCppBackend
from ._models import DEFAULT_JUDGE_MODEL, PACKAGED_MODELS, PackagedModel, file_sha256, installed_models, resolve_model
from ._protocol import ChoiceBackend, ChoiceProbs

__all__ = ["DEFAULT_JUDGE_MODEL", "PACKAGED_MODELS", "ChoiceBackend", "ChoiceProbs", "LlamaCppBackend",
           "PackagedModel", "file_sha256", "installed_models", "resolve_model"]
