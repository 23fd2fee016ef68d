"""Generate stage: candidates from models (llama.cpp in process, OpenAI-compatible servers), resumable.

:func:`generate` writes a candidates file that ``rank``, ``select`` and ``export`` read as it is;
:class:`SystemSpec` says what a system is (model, system prompt, sampling, samples per prompt).
"""

from ._chat import StoredChat, data_block
from ._run import GenerateResult, GeneratorModel, beside_output, generate, store_path_for
from ._spec import SystemSpec, load_systems, parse_system

__all__ = ["GenerateResult", "GeneratorModel", "beside_output", "StoredChat", "SystemSpec", "data_block", "generate", "load_systems", "parse_system", "store_path_for"]
