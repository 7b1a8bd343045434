"""Colour for the text formats (`full`, `concise`): ANSI styles on a terminal, none in a file or
a pipe, none with NO_COLOR set (no-color.org), and forced with FORCE_COLOR (as rich, ruff and
most command-line tools read them; NO_COLOR wins when both are set)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

SEVERITY_STYLES = {"error": "1;31", "warning": "1;33", "info": "1;36"}


@dataclass(frozen=True)
class Palette:
    """Styles, or plain text when not `enabled` (the default: renderers stay plain for callers
    that do not ask)."""

    enabled: bool = False

    def paint(self, text: str, sgr: str) -> str:
        return f"\x1b[{sgr}m{text}\x1b[0m" if self.enabled and text else text

    def path(self, text: str) -> str:
        return self.paint(text, "1")

    def code(self, text: str) -> str:
        return self.paint(text, "1")

    def severity(self, text: str, severity: str) -> str:
        return self.paint(text, SEVERITY_STYLES.get(severity, "1"))

    def dim(self, text: str) -> str:
        return self.paint(text, "2")


PLAIN = Palette()


def colour_wanted(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    if env.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        return False


def palette_for(stream: TextIO, environ: Mapping[str, str] | None = None) -> Palette:
    return Palette(colour_wanted(stream, environ))
