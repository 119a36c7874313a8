"""Options that were accepted silently or refused only after the model loaded (issue 30) are refused
when the command line is parsed, in one line with exit code 2 (no model is needed: none loads)."""

from __future__ import annotations

import pytest

from tests.cli.test_errors import fail
from tests.helpers import write_jsonl

AT2 = ["heads", "at2", "--dataset", "quotesum", "--data", "d.jsonl", "--output", "w.json"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*AT2, "--ridge", "0"], "argument --ridge: expected a number in (0, ∞), got '0'"),
        ([*AT2, "--ridge", "inf"], "argument --ridge: expected a number in (0, ∞), got 'inf'"),
        ([*AT2, "--ablations", "1"], "argument --ablations: expected an integer in [2, ∞), got '1'"),
        (["cite", "--context", "c.txt", "--query", "q", "--margin", "-1"], "expected a number in [0, ∞)"),
        (
            ["bench", "citations", "--dataset", "quotesum", "--data", "d.jsonl", "--margin", "0,-0.5"],
            "expected a number in [0, ∞), got '-0.5'",
        ),
    ],
)
def test_out_of_domain_options_are_refused_at_parse_time(argv, message, capsys) -> None:
    line = fail(argv, capsys)
    assert message in line and line.endswith("--help)")


def test_threads_without_workers_are_refused(tmp_path, capsys) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{"id": 1, "query": "q", "context": "a"}])
    argv = ["attribute", "--data", data, "--output", str(tmp_path / "o.jsonl"), "--threads", "2"]
    line = fail([*argv, "--model", str(tmp_path / "no-model")], capsys)
    assert (
        line == "rcstat: error: threads are set per Ray worker: give --workers or --ray-address (--threads)"
    )
    assert not (tmp_path / "o.jsonl").exists()
