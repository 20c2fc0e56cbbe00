"""What the command line says: progress and results on standard output, a refusal as one
line on standard error with a non-zero exit status, never a traceback.

Exit status 1: what was asked for does not exist, was refused or failed. Exit status 2: the
command line itself is wrong (click's usage errors, a missing confirmation, a bad file).
"""

import sys
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()


def fail(message: str, code: int = 1) -> NoReturn:
    """Refuse: one line on standard error, then exit with ``code``."""
    typer.echo(f"exchange: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


def this_command() -> str:
    """How the user can run this command again from here (``.venv/bin/exchange``)."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "exchange" and argv0.exists():
        try:
            return str(argv0.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(argv0)
    return "exchange"
