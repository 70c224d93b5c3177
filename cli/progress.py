"""Progress on a terminal (rich), plain lines otherwise: every long-running command uses this."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

err_console = Console(stderr=True)


def say(message: str) -> None:
    err_console.print(message, highlight=False)


def write_or_print(text: str, out: Path | None) -> None:
    """A generated file's text to ``out``, or to stdout when no file is named."""
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"wrote {out}", err=True)


def _silent(done: int, total: int | None = None) -> None:
    pass


@contextmanager
def bar(description: str, total: int | None = None) -> Iterator[Callable[[int, int | None], None]]:
    """Yields update(done, total); a live bar on a terminal, silent otherwise."""
    if not sys.stderr.isatty():
        yield _silent
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)

        def update(done: int, new_total: int | None = None) -> None:
            progress.update(task, completed=done, total=new_total if new_total is not None else total)

        yield update
