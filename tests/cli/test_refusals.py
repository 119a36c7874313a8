"""Options that were accepted silently or refused only after the model loaded (issue 30) are refused
when the command line is parsed, in one line with exit code 2 (no model is needed: none loads)."""

from __future__ import annotations

import pytest

from rcstat import cli
from tests.cli.test_errors import fail
from tests.helpers import write_jsonl

AT2 = ["heads", "at2", "--dataset", "quotesum", "--data", "d.jsonl", "--output", "w.json"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*AT2, "--ridge", "0"], "argument --ridge: expected a number in (0, ∞), got '0'"),
        ([*AT2, "--ridge", "inf"], "argument --ridge: expected a number in (0, ∞), got 'inf'"),
        ([*AT2, "--ablations", "1"], "argument --ablations: expected an integer in [2, ∞), got '1'"),
        (
            ["bench", "attribution", "--dataset", "quotesum", "--data", "d.jsonl", "--ablations", "1"],
            "argument --ablations: expected an integer in [2, ∞), got '1'",
        ),
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


def test_one_ablation_is_refused_by_the_library_too() -> None:
    from rcstat.errors import RCStatError
    from rcstat.evaluation.attribution.run import AttributionBench

    with pytest.raises(RCStatError, match=r"ablations must be in \[2, ∞\), got 1"):
        AttributionBench("quotesum", "d.jsonl", ablations=1)


def test_threads_without_workers_are_refused(tmp_path, capsys) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{"id": 1, "query": "q", "context": "a"}])
    argv = ["attribute", "--data", data, "--output", str(tmp_path / "o.jsonl"), "--threads", "2"]
    line = fail([*argv, "--model", str(tmp_path / "no-model")], capsys)
    assert (
        line == "rcstat: error: threads are set per Ray worker: give --workers or --ray-address (--threads)"
    )
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("budget", [["--compression-ratio", "0.5"], ["--threshold", "1"]])
def test_a_budget_with_press_none_is_refused_before_the_model_loads(tmp_path, capsys, monkeypatch, budget):
    import rcstat.models.loading as loading

    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("the model loaded"))
    context = tmp_path / "c.txt"
    context.write_text("Some text.")
    argv = ["compress", "--context", str(context), "--query", "Q?", "--press", "none", *budget]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--press none keeps the full cache" in err[0] and budget[0] in err[0]
