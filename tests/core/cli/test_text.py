"""Docstrings as plain text for the terminal: markup removed, prose re-wrapped, formulas kept."""

from __future__ import annotations

from ridgeline.core.cli.text import plain_text, reflow, shorten


def test_plain_text_removes_restructured_text_markup():
    text = plain_text("""Use ``split`` with :func:`~ridgeline.core.numerics.t_grid`, :mod:`ridgeline.core`,
        :class:`the store <ridgeline.core.results.store.ResultsStore>`, `x` and **bold**. Layout::""")
    assert text == ("Use split with t_grid, ridgeline.core,\nthe store, x and bold. Layout:")


def test_reflow_wraps_prose_and_bullets_and_keeps_formulas():
    text = ("A long sentence that goes on and on and on past the width.\n\n"
            "    B = max_t [ L(theta_t) - chord ]   (kept as written, however long it is)\n\n"
            "* first item, long enough to be wrapped onto a second line here:\n"
            "  formula = kept on its own line\n"
            "* second")
    out = reflow(text, 40, "  ")
    lines = out.splitlines()
    assert lines[0] == "  A long sentence that goes on and on"
    assert all(len(line) <= 40 for line in lines if "max_t" not in line)
    assert "      B = max_t [ L(theta_t) - chord ]   (kept as written, however long it is)" in lines
    assert lines[5:7] == ["  * first item, long enough to be", "    wrapped onto a second line here:"]
    assert "    formula = kept on its own line" in lines  # the break after a colon stays
    assert lines[-1] == "  * second"


def test_shorten_cuts_between_words():
    assert shorten("one two three", 20) == "one two three"
    assert shorten("one two three four", 12) == "one two…"
    assert shorten("abcdefghijkl", 6) == "abcde…"
