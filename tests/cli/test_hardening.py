"""Every input and output path, as an adversary tries it: one schema per file format, outputs checked
before work, numeric options in their domains, files and signals, and warnings where rcstat changes
what was asked. Each class of failure has a test; a hypothesis test generates malformed rows of every
format and out-of-domain values of every numeric option (no model needed: input fails first)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rcstat import cli
from rcstat.errors import RCStatError, RCStatWarning
from tests.cli.test_errors import fail
from tests.helpers import tiny_model, write_jsonl

KV = {"context": "The code word is PELICAN.", "question": "What is the code word?", "answers": ["PELICAN"]}
VERIGRAN = {
    "question": "Facts?",
    "summary": "The Rhine starts[ 1  in the Alps. ]",
    "chunk": "The Rhine starts in the Alps.",
    "passages": ["The Rhine rises in the Alps."],
}
QUOTESUM = {"question": "Who?", "summary": "[ 1 Ada ] wrote it.", "title1": "T", "source1": "Ada wrote it."}
FUZZ = int(os.environ.get("RCSTAT_FUZZ_EXAMPLES", "60"))  # bounded in `make test`; raise it to search longer


def no_model(tmp_path: Path) -> list[str]:
    return ["--model", str(tmp_path / "no-model")]


# ---- fields of input files are typed ------------------------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "row", "field", "value", "message"),
    [
        ("verigran", VERIGRAN, "summary", 5, "`summary`: input should be a valid string, got 5"),
        ("verigran", VERIGRAN, "chunk", None, "`chunk`: input should be a valid string, got None"),
        ("verigran", VERIGRAN, "question", ["q"], "`question`: input should be a valid string"),
        ("quotesum", QUOTESUM, "source1", 7, "`source1`: input should be a valid string, got 7"),
        ("quotesum", QUOTESUM, "summary", None, "`summary`: input should be a valid string, got None"),
    ],
)
def test_typed_fields_of_the_attribution_data(dataset, row, field, value, message, tmp_path, capsys) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{**row, field: value}])
    argv = ["bench", "attribution", "--dataset", dataset, "--data", data, *no_model(tmp_path)]
    assert fail([*argv, "--strict"], capsys).startswith(f"rcstat: error: {data}:1: {message}")
    code, err = run(argv)  # without --strict: a warning, then nothing is left
    warning, error = err.strip().splitlines()
    assert code == 2 and warning.startswith(f"rcstat: warning: {data}: record 1 skipped: {message}")
    assert error.startswith(f"rcstat: error: {data}: no attributable example in {dataset} format (1 records")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("context", None, "`context`: input should be a valid string, got None"),
        ("context", "", "`context`: must not be empty, got ''"),
        ("question", 12, "`question`: input should be a valid string, got 12"),
        ("answers", [""], "`answers.0`: must not be empty"),
        ("max_new_tokens", 0, "`max_new_tokens`: input should be greater than or equal to 1, got 0"),
    ],
)
def test_typed_fields_of_kv_samples(field, value, message, tmp_path, capsys) -> None:
    data = write_jsonl(tmp_path / "kv.jsonl", [{**KV, field: value}])
    argv = ["bench", "kv", "--data", data, *no_model(tmp_path), "--strict"]
    assert fail(argv, capsys).startswith(f"rcstat: error: {data}:1: {message}")


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"head_rc": [[1.0, 2.0], [3.0]]}, "`head_rc` must be a full layers × heads table"),
        ({"head_rc": [["a", 1.0]]}, "`head_rc.0.0`: input should be a valid number"),
        ({"head_rc": [[float("nan")]]}, "`head_rc.0.0`: must be a finite number"),
        ({"examples": "3"}, "`examples`: input should be a valid integer"),
        ({"estimator": "median"}, "unknown estimator 'median'"),
    ],
)
def test_head_profiles_are_checked_when_read(profile, message, tmp_path, capsys) -> None:
    from rcstat.attribution.profile import HeadProfile

    good = {"model": "m", "estimator": "min_y", "head_rc": [[0.5, 1.0]], "examples": 3}
    path = tmp_path / "heads.json"
    path.write_text(json.dumps({**good, **profile}, allow_nan=True))
    with pytest.raises(RCStatError, match=message):
        HeadProfile.load(path)


def test_a_head_profile_of_another_model_is_refused() -> None:
    from rcstat.attribution.attributor import Attributor
    from rcstat.attribution.profile import HeadProfile

    model = tiny_model("llama-gqa")  # 3 layers × 4 heads
    with pytest.raises(RCStatError, match="the head profile is 2 layers × 2 heads; tiny has 3 × 4"):
        HeadProfile("tiny", "min_y", [[1.0, 2.0], [3.0, 4.0]], 1).check(model, "tiny")
    with pytest.raises(RCStatError, match="calibrated on other, not tiny"):
        HeadProfile("other", "min_y", [[1.0] * 4] * 3, 1).check(model, "tiny")
    with pytest.raises(RCStatError, match="the head profile is 2 layers"):
        Attributor(model, None, profile=HeadProfile("x", "min_y", [[1.0, 2.0], [3.0, 4.0]], 1))


# ---- outputs are checked before any work --------------------------------------------------------


def test_outputs_that_cannot_be_written_fail_before_work(tmp_path, capsys) -> None:
    data = write_jsonl(tmp_path / "kv.jsonl", [KV])
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    kv = ["bench", "kv", "--data", data, *no_model(tmp_path), "--output"]
    assert fail([*kv, str(plain)], capsys).endswith(
        "not a directory, expected a directory for the outputs (--output)"
    )
    assert "its parent directory" in fail([*kv, str(plain / "sub")], capsys)
    profile = tmp_path / "heads.json"
    profile.write_text(json.dumps({"model": "m", "estimator": "min_y", "head_rc": [[1.0]], "examples": 1}))
    line = fail(["heads", "plot", str(profile), "--output", str(tmp_path)], capsys)
    assert line.endswith("is a directory, expected a file name (--output)")
    assert not list(tmp_path.glob(".*tmp*"))
    vg = write_jsonl(tmp_path / "vg.jsonl", [VERIGRAN])
    calibrate = ["heads", "calibrate", "--dataset", "verigran", "--data", vg, *no_model(tmp_path)]
    assert "is a directory" in fail([*calibrate, "--output", str(tmp_path)], capsys)  # before the model
    line = fail(
        [*calibrate, "--output", str(tmp_path / "h.json"), "--plot", str(tmp_path / "no" / "h.png")], capsys
    )
    assert line.endswith("does not exist (--plot)")


def test_a_special_file_is_never_replaced(tmp_path, capsys) -> None:
    from rcstat.io import write_atomic

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(RCStatError, match="not a regular file; refusing to replace it"):
        write_atomic(fifo, b"x")
    context = tmp_path / "c.txt"
    context.write_text("Curie won.")
    argv = [
        "attribute",
        "--context",
        str(context),
        "--query",
        "Who?",
        *no_model(tmp_path),
        "--output",
        str(fifo),
    ]
    assert fail(argv, capsys).endswith("not a regular file; refusing to replace it (--output)")
    assert fifo.exists() and not fifo.is_file()


# ---- numbers have domains -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["compress", "--context", "c.txt", "--query", "q", "--threshold", "nan"],
        ["compress", "--context", "c.txt", "--query", "q", "--threshold", "inf"],
        ["compress", "--context", "c.txt", "--query", "q", "--threshold", "-inf"],
        ["bench", "kv", "--task", "needle", "--lengths", "0"],
        ["bench", "kv", "--task", "needle", "--lengths", "-500"],
        ["bench", "kv", "--task", "needle", "--lengths=,"],
        ["bench", "kv", "--task", "needle", "--depths", "1.5"],
        ["bench", "attribution", "--dataset", "quotesum", "--data", "d", "--skip", "-1"],
        ["bench", "attribution", "--dataset", "quotesum", "--data", "d", "--faithfulness", "-1"],
        ["heads", "histogram", "--dataset", "quotesum", "--data", "d", "--output", "o", "--head", "1:-2"],
    ],
)
def test_out_of_domain_numbers_are_usage_errors(argv, capsys) -> None:
    assert fail(argv, capsys).endswith("--help)")


# ---- files and signals --------------------------------------------------------------------------


def test_unreadable_files_and_directories_are_named(tmp_path, capsys, monkeypatch) -> None:
    argv = ["compress", "--query", "q", *no_model(tmp_path), "--context"]
    assert (
        fail([*argv, str(tmp_path)], capsys) == f"rcstat: error: {tmp_path}: is a directory, expected a file"
    )
    context = tmp_path / "c.txt"
    context.write_text("Curie won.")

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert (
        fail([*argv, str(context)], capsys) == f"rcstat: error: {context}: cannot read it (Permission denied)"
    )


def test_a_resume_log_cut_short_resumes_and_a_broken_one_is_refused(tmp_path) -> None:
    from rcstat.evaluation.kv.bench import Config
    from rcstat.evaluation.kv.samples import Sample
    from rcstat.evaluation.runlog import resume

    header = {"config": Config.create(["none"], [0.5], False, 8).record()}
    samples = [Sample("c", "q", ("a",)), Sample("d", "r", ("b",))]
    keys = [s.key for s in samples]
    log = tmp_path / "log.jsonl"
    assert resume(log, header, keys) == []
    record = {"index": 0, "key": samples[0].key, "results": {}}
    first = log.read_text()
    log.write_text(first + json.dumps(record) + "\n" + '{"index": 1, "key": "cut')
    assert resume(log, header, keys) == [record]
    assert log.read_text() == first + json.dumps(record) + "\n"  # the cut line is gone
    log.write_text(first + "garbage\n" + json.dumps(record) + "\n")
    with pytest.raises(RCStatError, match=r"log\.jsonl:2: not a record of this benchmark's log"):
        resume(log, header, keys)


def test_a_logs_records_are_read_back_without_its_header(tmp_path) -> None:
    from rcstat.evaluation.runlog import records

    log = tmp_path / "log.jsonl"
    record = {"index": 0, "key": "k", "results": {"none@0": {"score": 1.0}}}
    log.write_text(json.dumps({"config": {}}) + "\n" + json.dumps(record) + "\n\n")
    assert records(log) == [record]
    log.write_text(json.dumps(record) + "\ngarbage\n")
    with pytest.raises(RCStatError, match=r"log\.jsonl:2: malformed JSON"):
        records(log)


def test_ctrl_c_at_any_moment_is_one_line_and_130(monkeypatch, capsys) -> None:
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)  # while the parser (and imports) load
    assert cli.main(["demo"]) == 130
    assert capsys.readouterr().err == "rcstat: interrupted\n"


# ---- no silent surprises ------------------------------------------------------------------------


def test_an_empty_source_row_is_an_error_not_a_renumbering(tmp_path, capsys) -> None:
    sources = write_jsonl(
        tmp_path / "s.jsonl", [{"text": "A."}, {"text": "B."}, {"text": " "}, {"text": "D."}]
    )
    argv = ["attribute", "--sources", sources, "--query", "q", *no_model(tmp_path)]
    assert fail(argv, capsys) == f"rcstat: error: {sources}:3: `text`: must not be empty, got ' '"


@pytest.mark.parametrize("command", ["attribute", "compress"])
def test_an_empty_query_is_refused(command, tmp_path) -> None:
    from rcstat.attribution.features import build_task
    from rcstat.kv.compress import compress_and_answer

    with pytest.raises(RCStatError, match="the query is empty"):
        if command == "attribute":
            build_task(None, None, ["a"], "  ", "x")
        else:
            compress_and_answer(None, None, "context", " ", None)


def test_warnings_where_rcstat_changes_what_was_asked(recwarn) -> None:
    from rcstat.attribution.attributor import Attributor
    from rcstat.attribution.scoring import Scoring
    from tests.core.test_attribution import tiny_task

    model = tiny_model("llama-gqa")  # 12 heads
    with pytest.warns(RCStatWarning, match="top_k is 50 but the model has 12 heads"):
        Attributor(model, None, scoring=Scoring(top_k=50))
    from rcstat.attribution.attributor import attribution
    from rcstat.attribution.features import capture
    from rcstat.attribution.profile import select_heads

    task = tiny_task()
    task.response = "ab ab"
    features = capture(model, task, "min_y")
    result = attribution(task, features, select_heads(features.head_rc, 2))
    with pytest.warns(RCStatWarning, match="'ab' occurs 2 times in the response; the first is attributed"):
        assert result.find("ab") == (0, 2)


# ---- published data: flawed records are skipped and reported ------------------------------------


@pytest.mark.parametrize(
    ("summary", "chunk", "span", "recovered"),
    [
        ("Curie won. Then she left.", "Curie won.", (0, 10), False),
        ("He said “hi” twice.", 'He said "hi" twice.', (0, 19), True),  # curly vs straight quotes
        ("Curie  won\nthe prize.", "Curie won the prize.", (0, 21), True),  # runs of spaces
        ("Curie won.", '"Curie won."', (0, 10), True),  # quotes around the chunk
        ("ﬁne print.", "fine print.", (0, 10), True),  # Unicode compatibility forms (NFKC)
    ],
)
def test_a_chunk_is_found_as_is_or_after_a_safe_normalisation(summary, chunk, span, recovered) -> None:
    from rcstat.evaluation.attribution.data import locate

    assert locate(summary, chunk) == (*span, recovered)


@pytest.mark.parametrize(
    ("summary", "chunk", "why"),
    [("Curie won. Curie won.", "Curie won.", "more than once in"), ("Curie won.", "Bohr won.", "not in")],
)
def test_a_span_is_never_guessed(summary, chunk, why) -> None:
    from rcstat.evaluation.attribution.data import locate

    with pytest.raises(ValueError, match=f"its `chunk` is {why} the plain summary"):
        locate(summary, chunk)


def test_a_file_mixing_good_and_flawed_records_loads_the_good_ones(tmp_path) -> None:
    from rcstat.evaluation.attribution.data import load_examples

    flawed = [
        {**VERIGRAN, "chunk": '"The Rhine starts in the Alps."'},  # recovered: quotes the summary lacks
        {**VERIGRAN, "chunk": "Not in the summary."},
        {**VERIGRAN, "summary": 3},
    ]
    data = write_jsonl(tmp_path / "vg.jsonl", [VERIGRAN, *flawed])
    with pytest.warns(RCStatWarning) as warned:
        loaded = load_examples("verigran", data)
    assert [(s.record, s.reason.split(":")[0]) for s in loaded.skipped] == [
        (3, "its `chunk` is not in the plain summary"),
        (4, "`summary`"),
    ]
    assert len(warned) == 2 and loaded.recovered == 1 and len(loaded.examples[0].targets) == 2
    assert loaded.record()["skipped"][0] == {"record": 3, "reason": "its `chunk` is not in the plain summary"}
    with pytest.raises(RCStatError, match=r"vg\.jsonl:3: its `chunk` is not in the plain summary"):
        load_examples("verigran", data, strict=True)


def test_the_skipped_records_are_a_line_under_the_table() -> None:
    from rcstat.render.text import skipped_line

    assert skipped_line({"skipped": [], "recovered": 0}) == []
    assert skipped_line({"skipped": [{"record": 68, "reason": "r"}], "recovered": 2}) == [
        "skipped 1 record(s) of the data that could not be used: 68",
        "recovered 2 record(s) by normalising quotes, spaces or Unicode",
    ]


# ---- fuzzing: malformed rows of every format, out-of-domain numbers of every option -------------

FORMATS = {  # format -> (a valid row, its fields that must be there, the command that reads it)
    "kv": (KV, ("context", "question", "answers"), ["bench", "kv", "--strict", "--data"]),
    "verigran": (
        VERIGRAN,
        ("question", "summary", "chunk", "passages"),
        ["bench", "attribution", "--dataset", "verigran", "--strict", "--data"],
    ),
    "quotesum": (
        QUOTESUM,
        ("question", "summary"),
        ["heads", "calibrate", "--dataset", "quotesum", "--output", "{out}", "--strict", "--data"],
    ),
    "sources": (
        {"text": "A chunk."},
        ("text",),
        ["attribute", "--query", "q", "--output", "{out}", "--sources"],
    ),
}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
NOT_TEXT = JSON.filter(lambda v: not isinstance(v, str) or not v.strip())  # a blank string or no string
LIST_FIELDS = ("passages", "answers")  # lists of strings (answers: or one string)


@st.composite
def malformed(draw):
    name = draw(st.sampled_from(sorted(FORMATS)))
    row, required, argv = FORMATS[name]
    field = draw(st.sampled_from(required))
    broken = dict(row)
    if draw(st.booleans()):
        del broken[field]
    elif field in LIST_FIELDS and draw(st.booleans()):  # a list with one element that is not a string
        bad = draw(NOT_TEXT if field == "answers" else JSON.filter(lambda v: not isinstance(v, str)))
        broken[field] = [*row[field], bad]
    else:
        value = draw(NOT_TEXT)
        if field == "passages" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = None  # a list of strings is a valid list of passages
        broken[field] = value
    good = draw(st.integers(0, 3))
    return name, argv, [row] * good + [broken]


@settings(max_examples=FUZZ, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=malformed())
def test_fuzz_malformed_rows_of_every_format(case, tmp_path_factory) -> None:
    name, argv, rows = case
    tmp = tmp_path_factory.mktemp(name)
    data, out = write_jsonl(tmp / "in.jsonl", rows), tmp / "out.json"
    argv = [a.replace("{out}", str(out)) for a in argv]
    code, err = run([*argv, data, "--model", str(tmp / "no-model")])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("rcstat: error: "), err
    assert f"{data}:{len(rows)}" in lines[0] and "no-model" not in lines[0], err  # the bad line is named
    assert not out.exists() and [p.name for p in tmp.iterdir()] == ["in.jsonl"]


OPTIONS = {  # option -> (command line before it, its domain: a predicate on a good value)
    "--compression-ratio": (["compress", "--context", "c", "--query", "q"], lambda v: 0 <= v < 1),
    "--threshold": (["compress", "--context", "c", "--query", "q"], math.isfinite),
    "--max-new-tokens": (["compress", "--context", "c", "--query", "q"], lambda v: v >= 1 and v == int(v)),
    "--top-k": (["attribute", "--context", "c", "--query", "q"], lambda v: v >= 1 and v == int(v)),
    "--per-task": (["bench", "kv", "--task", "needle"], lambda v: v >= 1 and v == int(v)),
    "--lengths": (["bench", "kv", "--task", "needle"], lambda v: v >= 1 and v == int(v)),
    "--depths": (["bench", "kv", "--task", "needle"], lambda v: 0 <= v <= 1),
    "--skip": (
        ["bench", "attribution", "--dataset", "quotesum", "--data", "d"],
        lambda v: v >= 0 and v == int(v),
    ),
    "--faithfulness": (
        ["bench", "attribution", "--dataset", "quotesum", "--data", "d"],
        lambda v: v >= 0 and v == int(v),
    ),
    "--example": (
        ["heads", "histogram", "--dataset", "quotesum", "--data", "d", "--output", "o"],
        lambda v: v >= 0 and v == int(v),
    ),
}
VALUES = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "", ",", "1,", "half", "1e999", "0x10", "--", "1.5.2", " "]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**6), 10**6).map(str),
)


def is_good(text: str, good) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and good(value)


@settings(max_examples=FUZZ, deadline=None)
@given(option=st.sampled_from(sorted(OPTIONS)), value=VALUES)
def test_fuzz_numeric_options_outside_their_domain(option, value) -> None:
    before, good = OPTIONS[option]
    if is_good(value, good):
        return  # inside the domain: not this test's concern
    code, err = run([*before, f"{option}={value}"])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and ": error: " in lines[0] and "Traceback" not in err, err


def run(argv: list[str]) -> tuple[int, str]:
    """``cli.main`` with stderr captured (argparse's usage errors exit through SystemExit)."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(argv)
        except SystemExit as exit_info:
            code = exit_info.code
    return code, err.getvalue()
