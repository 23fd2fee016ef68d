"""Backends run a judge's model: llama.cpp in-process (more to come behind the same protocol)."""

from ._llamacpp import LlamaCppBackend
from ._models import DEFAULT_JUDGE_MODEL, PACKAGED_MODELS, PackagedModel, file_sha256, installed_models, resolve_model
from ._protocol import ChoiceBackend, ChoiceProbs
from ._protocol import Generation
from ._openai import OpenAIBackend, ServerResponseError, ServerUnreachableError, off_loop, parse_openai_spec
from ._llamagen import GenerateBackend, LlamaGenerator, as_generator
from ._replay import ReplayJudge
from ._server import LocalServer, free_port

__all__ = ["DEFAULT_JUDGE_MODEL", "PACKAGED_MODELS", "ChoiceBackend", "ChoiceProbs", "LlamaCppBackend",
           "PackagedModel", "file_sha256", "installed_models", "resolve_model",
           "GenerateBackend", "Generation", "LlamaGenerator", "LocalServer", "OpenAIBackend", "ReplayJudge", "ServerResponseError",
           "ServerUnreachableError", "as_generator", "free_port", "off_loop", "parse_openai_spec"]
