"""Ask the terminal once, safely, what it can draw, before Textual owns it.

textual-image queries the terminal when it is imported (cell size in pixels, sixel and Kitty
graphics support). Two kinds of terminal break that query: a pty that reports 0 rows or columns
(textual-image divides by them), and one that does not answer the escape sequences at all
(textual-image then logs a warning with a ``TimeoutError`` traceback). Here the cell size is
measured first with those cases handled, and textual-image's logger keeps its warnings to
itself; the player then draws with half blocks where nothing better answers.
"""

from __future__ import annotations

import logging


def prepare() -> None:
    """Fill textual-image's cell-size cache without failing; call before importing its widgets."""
    logging.getLogger("textual_image").setLevel(logging.ERROR)  # "assuming VT340 sizes" is no error
    from textual_image import _terminal

    if hasattr(_terminal.get_cell_size, "_result"):
        return
    try:
        _terminal.get_cell_size()
    except (ZeroDivisionError, OSError, _terminal.TerminalError):  # 0 rows or columns, or no terminal
        _terminal.get_cell_size._result = _terminal.CellSize(10, 20)  # type: ignore[attr-defined]  # textual-image's default


prepare()

from textual_image.widget import Image  # noqa: E402  (after prepare(): importing it asks the terminal)

__all__ = ["Image", "prepare"]
