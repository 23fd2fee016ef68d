"""The ``referee`` command: a thin typer layer over the Python API.

Each command lives in its own module and registers itself on :data:`app` here.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import RefereeError

app = typer.Typer(name="referee", no_args_is_help=True, add_completion=False,
                  help="Judge LLM outputs without reference answers and turn the judgments into decisions.")
err_console = Console(stderr=True)

from . import _audit, _combine, _export, _generate, _models, _optimize, _principles, _rank, _rate, _report, _revise, _select, _simulate  # noqa: E402,F401  (commands register on import)


def main() -> None:
    """Entry point: RefereeError -> one red line on stderr and its exit code (2)."""
    try:
        app(standalone_mode=False)
    except RefereeError as e:
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: verdicts so far are stored; run the same command to resume.")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:  # click usage errors arrive here in non-standalone mode
        import click
        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(130)
        raise
