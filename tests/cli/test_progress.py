"""Progress off a terminal: a plain line per sample with a count and an ETA; a bar on a terminal."""

from __future__ import annotations

import io
import re
import sys

from rcstat.cli.progress import duration, phases, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_line_per_sample_with_count_and_eta_off_a_terminal(monkeypatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    update = progress(4, "samples", every=0)
    for done in range(1, 5):
        update(done, 4)
    lines = stream.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == [f"{k}/4 samples" for k in range(1, 5)]
    assert all(re.search(r", ETA \d+ s\)$", line) for line in lines[:-1]), lines
    assert "ETA" not in lines[-1] and "\r" not in stream.getvalue()


def test_a_bar_on_a_terminal(monkeypatch) -> None:
    stream = Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    update = progress(2, "samples")
    update(1, 2)
    update(2, 2)
    assert "\r" in stream.getvalue() and "2/2" in stream.getvalue()


def test_phases_are_counted_off_a_terminal(monkeypatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    with phases(2) as phase:
        phase("loading")
        phase("generating")
    assert stream.getvalue().splitlines() == ["[1/2] loading…", "[2/2] generating…"]


def test_durations_read_as_time() -> None:
    assert [duration(s) for s in (4.4, 65, 3725)] == ["4 s", "1 min 05 s", "1 h 02 min"]
