"""The "still running" line: shown on a terminal after the delay, never in a pipe."""

from __future__ import annotations

import io
import time

from cleanroom.commands.waiting import running


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_request_shows_that_it_runs_and_clears_the_line() -> None:
    screen = _Terminal()
    with running("working", after=0.05, every=0.05, stream=screen):
        time.sleep(0.3)
    text = screen.getvalue()
    assert "working ... " in text and text.endswith("\r\033[K")


def test_a_short_request_and_a_pipe_show_nothing() -> None:
    screen, pipe = _Terminal(), io.StringIO()
    with running("working", after=5, stream=screen):
        pass
    with running("working", after=0, every=0.01, stream=pipe):
        time.sleep(0.05)
    assert screen.getvalue() == "" and pipe.getvalue() == ""
