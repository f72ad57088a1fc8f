"""The ``ridgeline`` command line: the parser (:mod:`ridgeline.core.cli.parser`), what each
command does (:mod:`ridgeline.core.cli.commands`) and the quickstart's pipeline."""

from ridgeline.core.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
