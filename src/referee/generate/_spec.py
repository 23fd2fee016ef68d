"""What a generating system is: a model and how it is asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import InputError


class SystemSpec(BaseModel):
    """A system that generates candidates.

    ``model`` is a packaged model name, a GGUF path or ``openai:MODEL@URL``. ``system_prompt`` is
    the text itself, or ``@FILE`` for a file's contents. Sample ``k`` of ``n`` uses seed
    ``seed + k``.
    """

    model_config = ConfigDict(extra="forbid")
    name: str
    model: str
    system_prompt: str | None = None
    temperature: float = Field(default=0.0, ge=0.0, le=5.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int = Field(default=512, ge=1)
    stop: list[str] = Field(default_factory=list)
    seed: int = 0
    n: int = Field(default=1, ge=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v or "#" in v or v != v.strip():
            raise ValueError("a system name must be non-empty, without '#' or surrounding spaces")
        return v

    def resolved_system_prompt(self) -> str | None:
        """The system prompt's text (``@FILE`` read)."""
        if self.system_prompt is None or not self.system_prompt.startswith("@"):
            return self.system_prompt
        path = Path(self.system_prompt[1:])
        try:
            return path.read_text(encoding="utf-8")
        except OSError as e:
            raise InputError(f"cannot read the system prompt of {self.name}: {e.strerror}", path=path,
                             field="system_prompt") from None

    def sampling(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                "stop": list(self.stop)}

    def candidate_name(self, sample: int) -> str:
        """The candidates' system name: ``NAME`` for one sample, ``NAME#k`` (k from 0) for several."""
        return self.name if self.n == 1 else f"{self.name}#{sample}"


def parse_system(arg: str, defaults: dict[str, Any]) -> SystemSpec:
    """``NAME=SPEC`` from the command line, with the command's sampling options.

    Raises:
        InputError: not ``NAME=SPEC``, or an option out of range.
    """
    name, sep, model = arg.partition("=")
    if not sep or not name.strip() or not model.strip():
        raise InputError(f"--system {arg!r} is not NAME=SPEC (SPEC: a packaged model, a GGUF path or "
                         "openai:MODEL@URL)", field="--system")
    return _spec({**defaults, "name": name.strip(), "model": model.strip()}, "--system")


def load_systems(path: Path, defaults: dict[str, Any]) -> list[SystemSpec]:
    """Systems from a TOML (``[[system]]`` tables) or JSON (a list, or ``{"system": [...]}``) file;
    fields a system leaves out take the command's options.

    Raises:
        InputError: unreadable file, unknown field or value out of range, naming the system.
    """
    from ..judge import read_config_file

    doc = read_config_file(path, "the systems file", "--systems")
    rows = doc.get("system", doc.get("systems")) if isinstance(doc, dict) else doc
    if not isinstance(rows, list) or not rows:
        raise InputError("expected a list of systems ([[system]] tables in TOML)", path=path, field="system")
    out = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise InputError(f"system {i} is not a table", path=path, field="system")
        out.append(_spec({**defaults, **row}, f"system {row.get('name', i)}", path))
    return out


def _spec(fields: dict[str, Any], where: str, path: Path | None = None) -> SystemSpec:
    try:
        return SystemSpec(**fields)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "system"
        raise InputError(f"{where}: {loc}: {err['msg']}", path=path, field=loc) from None
