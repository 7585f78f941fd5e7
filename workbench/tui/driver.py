"""Keys read from the terminal: ESC followed by a key is ESC, then that key.

A terminal sends Escape as the byte ESC, and Alt+R as ESC followed by ``r``. Textual tells
them apart by time: ESC alone, then nothing for 100 ms, is Escape. Over SSH a slow link
(or a user who types fast) delivers ESC and the next key in one packet, and Textual reads
them as Alt+R (or, for ``?`` or ``1``, drops the ESC or reads another character): the
dialog the user meant to close stays open and their ``r`` is lost without a word.

The screen binds no Alt key, so here ESC followed by a printable character is always
read as Escape, then that character. CSI and SS3 sequences (``ESC [``, ``ESC O``: arrows,
function keys, mouse) are left to Textual.

This is the one place the screen uses a private part of Textual (``textual._xterm_parser``):
Textual offers no public hook for how keys are parsed. ``tests/test_tui_oncall.py`` drives it
in a real terminal, so a Textual upgrade that moves the parser fails there first.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual import events
from textual._xterm_parser import XTermParser
from textual.drivers import linux_driver
from textual.drivers.linux_driver import LinuxDriver

ESC = "\x1b"
INTRODUCERS = {"[", "O", ESC}
"""What follows ESC at the start of a longer sequence, never a key of its own."""


def is_key(char: str) -> bool:
    """A character that is a key of its own: printable, or Enter, Tab, Backspace."""
    return char.isprintable() or char in "\r\t\x7f"


class EscapeThenKeyParser(XTermParser):
    def _sequence_to_key_events(self, sequence: str, alt: bool = False) -> Iterable[events.Key]:
        if alt and len(sequence) == 1 and is_key(sequence):            # ESC and a key, read after a pause
            yield events.Key("escape", ESC)
            yield from super()._sequence_to_key_events(sequence)
        elif len(sequence) == 2 and sequence[0] == ESC and is_key(sequence[1]) \
                and sequence[1] not in INTRODUCERS:                      # ESC and a key, in one read
            yield events.Key("escape", ESC)
            yield from super()._sequence_to_key_events(sequence[1])
        else:
            yield from super()._sequence_to_key_events(sequence, alt)


class EscapeThenKeyDriver(LinuxDriver):
    """Textual's terminal driver, reading keys with the parser above."""

    def run_input_thread(self) -> None:
        linux_driver.XTermParser = EscapeThenKeyParser  # type: ignore[misc] # the one parser of this process
        super().run_input_thread()
