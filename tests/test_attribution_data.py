"""VeriGran and QuoteSum parsing, and the attribution commands' errors (no model needed)."""

from __future__ import annotations

import json
import sys

import pytest

from rcstat import cli
from rcstat.attribution import HeadProfile
from rcstat.attribution.data import load_examples, strip_annotations
from rcstat.errors import RCStatError


def test_annotations_are_stripped_with_their_spans() -> None:
    plain, spans = strip_annotations("was filmed[ 24  at **Oheka Castle**. ] Then [ 2 Denitrification ] won.")
    assert plain == "was filmed at **Oheka Castle**. Then Denitrification won."
    assert [(plain[a:b], n) for a, b, n in spans] == [("at **Oheka Castle**.", 24), ("Denitrification", 2)]


def write(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_verigran_rows_of_one_response_share_an_example(tmp_path) -> None:
    summary = "Water boils at 100 C[ 2  at sea level. ] It freezes[ 1  at 0 C. ]"
    rows = [
        {
            "question": "q",
            "summary": summary,
            "chunk": "Water boils at 100 C at sea level.",
            "passages": ["A", "B"],
        },
        {"question": "q", "summary": summary, "chunk": "It freezes at 0 C.", "passages": ["A", "B"]},
    ]
    path = tmp_path / "vg.jsonl"
    write(path, rows)
    (example,) = load_examples("verigran", path)
    assert example.response == "Water boils at 100 C at sea level. It freezes at 0 C."
    assert [(example.response[t.start : t.end], set(t.gold)) for t in example.targets] == [
        ("Water boils at 100 C at sea level.", {1}),
        ("It freezes at 0 C.", {0}),
    ]
    write(path, [{**rows[0], "chunk": "not there"}])
    with pytest.raises(RCStatError, match="record 1: its `chunk` is not in the plain summary"):
        load_examples("verigran", path)


def test_quotesum_sources_are_renumbered_without_empty_ones(tmp_path) -> None:
    row = {"question": "q", "summary": "[ 3 Ada ] and [ 1 Bob ] met."}
    row |= {f"source{n}": "" for n in range(1, 9)} | {f"title{n}": f"T{n}" for n in range(1, 9)}
    row |= {"source1": "Bob text", "source3": "Ada text"}
    path = tmp_path / "qs.jsonl"
    write(path, [row])
    (example,) = load_examples("quotesum", path)
    assert example.chunks == ("(Title: T1) Bob text", "(Title: T3) Ada text")
    assert [(example.response[t.start : t.end], set(t.gold)) for t in example.targets] == [
        ("Ada", {1}),
        ("Bob", {0}),
    ]
    write(path, [{**row, "summary": "no annotation"}])
    with pytest.raises(RCStatError, match="no attributable example in quotesum format"):
        load_examples("quotesum", path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "attribution", "--dataset", "verigran", "--data", "missing.jsonl"], "no such file"),
        (
            ["heads", "calibrate", "--dataset", "quotesum", "--data", "missing.jsonl", "--output", "p.json"],
            "no such",
        ),
    ],
)
def test_attribution_commands_fail_in_one_line(argv, message, capsys) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rcstat: error:") and message in err and "Traceback" not in err


def test_unknown_methods_and_missing_profiles_are_refused(tmp_path) -> None:
    from rcstat.attribution.bench import run_attribution_bench

    with pytest.raises(RCStatError, match="unknown method magic"):
        run_attribution_bench(None, None, [], ["rcstat", "magic"])
    with pytest.raises(RCStatError, match="needs a head profile"):
        run_attribution_bench(None, None, [], ["rcstat-calibrated"])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(RCStatError, match="not a head profile"):
        HeadProfile.load(tmp_path / "bad.json")


def test_contextcite_without_its_extra_is_a_clear_error(monkeypatch) -> None:
    from rcstat.attribution.contextcite import require_contextcite

    monkeypatch.setitem(sys.modules, "context_cite", None)
    with pytest.raises(RCStatError, match=r"pip install 'rcstat\[contextcite\]'"):
        require_contextcite()
