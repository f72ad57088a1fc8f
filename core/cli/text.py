"""Text for the terminal: docstrings rendered as plain text, lines fitted to the terminal's width.

Docstrings are written in reStructuredText (````name````, ``:func:`name```); a user reading
``ridgeline list`` or ``ridgeline describe`` should see ``name``, not the markup.
"""

from __future__ import annotations

import inspect
import re
import shutil
import textwrap

DEFAULT_WIDTH = 100

_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`(?:([^`<]*?)\s*<[^`>]*>|~?([^`]*?))`")
_LITERAL = re.compile(r"``(.+?)``")
_DEFAULT_ROLE = re.compile(r"(?<![`\w])`([^`]+)`(?![`\w])")
_STRONG = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*")
_BULLET = re.compile(r"^([*-]|\d+\.)\s+")


def _role(match: re.Match[str]) -> str:
    if match.group(1) is not None:
        return match.group(1)
    target = match.group(2)
    written = match.group(0)
    # :func:`~a.b.c` shows only the last part, as Sphinx does
    return target.rsplit(".", 1)[-1] if "`~" in written else target


def plain_text(text: str) -> str:
    """``text`` (a docstring, maybe indented) without reStructuredText markup: roles give their
    target (``:func:`~a.b`` gives ``b``), literals and emphasis their content, ``::`` a colon."""
    text = inspect.cleandoc(text or "")
    text = _ROLE.sub(_role, text)
    text = _LITERAL.sub(r"\1", text)
    text = _DEFAULT_ROLE.sub(r"\1", text)
    text = _STRONG.sub(r"\1", text)
    text = re.sub(r"\s*::$", ":", text, flags=re.MULTILINE)
    return text


def terminal_width(fallback: int = DEFAULT_WIDTH) -> int:
    """The terminal's width in columns (``COLUMNS`` when set; ``fallback`` when not a terminal)."""
    return max(40, shutil.get_terminal_size((fallback, 24)).columns)


def shorten(text: str, width: int) -> str:
    """``text`` on one line of at most ``width`` characters, cut at a word boundary with an
    ellipsis when it is longer."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[: max(1, width - 1)]
    if " " in cut and not text[len(cut)].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"


def reflow(text: str, width: int, indent: str = "") -> str:
    """Plain text wrapped to ``width``: prose paragraphs and list items are re-wrapped (a line
    ending in a colon keeps its break); indented blocks (formulas, code) are kept as written."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip("\n")):
        lines = paragraph.split("\n")
        if lines[0].startswith((" ", "\t")):
            out.append("\n".join(indent + line for line in lines))
            continue
        items: list[list[str]] = []
        for line in lines:
            if _BULLET.match(line) or not items:
                items.append([line])
            elif line.startswith((" ", "\t")) and not _BULLET.match(items[-1][0]):
                items.append([line])  # an indented formula inside prose stays on its own line
            else:
                items[-1].append(line)
        wrapped = []
        for item in items:
            if item[0].startswith((" ", "\t")):
                wrapped.append(indent + item[0])
                continue
            bullet = _BULLET.match(item[0])
            hang = " " * (len(bullet.group(0)) if bullet else 0)
            # a line ending in ":" introduces what follows (often a formula): keep that break
            chunks: list[list[str]] = [[]]
            for part in item:
                chunks[-1].append(part.strip())
                if part.rstrip().endswith(":"):
                    chunks.append([])
            for i, chunk in enumerate(c for c in chunks if c):
                wrapped.append(textwrap.fill(" ".join(chunk), width,
                                             initial_indent=indent + (hang if i else ""),
                                             subsequent_indent=indent + hang,
                                             break_long_words=False, break_on_hyphens=False))
        out.append("\n".join(wrapped))
    return "\n\n".join(out)
