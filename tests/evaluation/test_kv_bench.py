"""``rcstat bench kv``: the data format, press names, intervals and the command's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rcstat import cli
from rcstat.errors import RCStatError, RCStatWarning
from rcstat.evaluation.intervals import wilson
from rcstat.evaluation.kv.samples import load_samples
from rcstat.presses import parse_presses
from tests.helpers import Words

FILLER = " ".join(f"On day {i} the weather stayed mild and the market opened on time." for i in range(12))


def write_samples(path) -> None:
    rows = [
        {
            "context": f"The vault's code word is PELICAN. {FILLER}",
            "question": "What is the vault's code word?",
            "answers": ["PELICAN"],
        },
        {
            "context": f"{FILLER} Maria keeps her spare key under the blue flowerpot.",
            "question": "Where does Maria keep her spare key?",
            "answers": ["flowerpot", "flower pot"],
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_wilson_interval() -> None:
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0


def test_press_names_and_samples(tmp_path) -> None:
    assert parse_presses(["rcstat", " snapkv", "none"]) == ["rcstat", "snapkv", "none"]
    with pytest.raises(RCStatError, match="unknown press h2o"):
        parse_presses(["rcstat", "h2o"])
    path = tmp_path / "d.jsonl"
    good, bad = (
        '{"context": "c", "question": "q", "answers": "a"}',
        '{"context": "c", "question": "q", "answers": []}',
    )
    path.write_text(f"{good}\n{bad}\n")
    with pytest.raises(RCStatError, match=r"d.jsonl:2: `answers`: value should have at least 1 item"):
        load_samples(path, strict=True)
    with pytest.warns(RCStatWarning, match="record 2 skipped"):
        samples, skipped = load_samples(path)
    assert len(samples) == 1 and [(s.record, s.reason[:10]) for s in skipped] == [(2, "`answers`:")]
    path.write_text('{"context": "c", "question": "q", "answers": "a"}\n')
    assert load_samples(path)[0][0].answers == ("a",)


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "kv", "--data", "x.jsonl", "--compression-ratio", "1.5"],
        ["bench", "kv", "--data", "x.jsonl", "--compression-ratio", "half"],
        ["bench", "kv"],
    ],
)
def test_bad_options_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2


def test_missing_data_is_one_line(tmp_path, capsys) -> None:
    assert cli.main(["bench", "kv", "--data", str(tmp_path / "none.jsonl")]) == 2
    assert capsys.readouterr().err.strip().endswith("no such file")


@pytest.mark.realmodel
def test_bench_kv_json_on_the_default_model(tmp_path, capsys) -> None:
    data = tmp_path / "kv.jsonl"
    write_samples(data)
    argv = ["bench", "kv", "--data", str(data), "--max-new-tokens", "12", "--format", "json"]
    assert cli.main([*argv, "--press", "rcstat", "--compression-ratio", "0.75"]) == 0
    single = json.loads(capsys.readouterr().out)  # one shape for one result or many
    (row,) = single["results"]
    assert row["n"] == 2 and 0 <= row["accuracy"] <= 1 and row["press"] == "rcstat"
    assert {"model", "data", "commit", "command"} <= set(single)
    assert cli.main([*argv, "--press", "rcstat,snapkv,none", "--compression-ratio", "0.5,0.75"]) == 0
    many = json.loads(capsys.readouterr().out)
    cells = {(r["press"], r["compression_ratio"]) for r in many["results"]}
    assert cells == {("rcstat", 0.5), ("rcstat", 0.75), ("snapkv", 0.5), ("snapkv", 0.75), ("none", 0.0)}
    full = next(r for r in many["results"] if r["press"] == "none")
    assert full["agreement_with_full_cache"] == 1.0
    assert {"model", "data", "commit", "command"} <= set(many)
    assert all(
        {"press", "compression_ratio", "accuracy", "n", "ci95", "by_task"} <= set(r) for r in many["results"]
    )


def test_needle_samples_place_the_needle_at_depth() -> None:
    from rcstat.evaluation.kv.tasks import needle_samples

    text = ". ".join(f"Sentence number {i} is here" for i in range(200)) + "."
    samples = needle_samples(Words(), [text], lengths=[100, 300], depths=[0.0, 0.5, 1.0], per_cell=2, seed=3)
    assert len(samples) == 12
    for sample in samples:
        number = sample.answers[0]
        assert f"is {number}." in sample.context and number.isdigit()
        assert "special magic number" in sample.question
    first = samples[0].context  # depth 0: the needle opens the haystack
    assert first.startswith("The special magic number")
    assert samples[5].context.endswith(f"is {samples[5].answers[0]}.")  # depth 1 of length 100
    again = needle_samples(Words(), [text], lengths=[100, 300], depths=[0.0, 0.5, 1.0], per_cell=2, seed=3)
    assert again == samples


@pytest.mark.realmodel
def test_bench_kv_needle_task(capsys) -> None:
    assert cli.main(["data", "fetch"]) == 0  # the explicit step: the haystack, once
    assert Path(capsys.readouterr().out.strip()).is_dir()
    argv = ["bench", "kv", "--task", "needle", "--lengths", "256", "--depths", "0.5", "--per-task", "1"]
    assert cli.main([*argv, "--press", "rcstat", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["results"][0]["n"] == 1 and result["data"].startswith("needle (per task 1")
    ratio = ["--compression-ratio", "0.9"]
    assert cli.main([*argv, "--press", "none,streaming_llm", *ratio, "--format", "json"]) == 0
    kept = {r["press"]: r["evidence_kept"] for r in json.loads(capsys.readouterr().out)["results"]}
    assert kept["none"] == {"global": 1.0}  # the full cache shows every needle token
    assert kept["streaming_llm"] == {"global": 0.0}  # a needle mid-context is not among sinks and recent


def test_built_in_tasks_without_the_haystack_say_how_to_fetch_it(tmp_path, monkeypatch) -> None:
    from rcstat.cli.common import describe, flags
    from rcstat.evaluation.kv.tasks import builtin_samples

    monkeypatch.setenv("RCSTAT_HOME", str(tmp_path))  # nothing fetched here
    with pytest.raises(RCStatError, match=r"fetch it once with rcstat\.evaluation\.kv\.haystack") as info:
        builtin_samples(Words(), ["needle"], 1, [100])
    assert describe(info.value, flags(cli.build_parser())).endswith(
        "; fetch it once with `rcstat data fetch`"
    )


@pytest.mark.realmodel
def test_context_longer_than_the_model_allows_is_refused_before_any_work(tmp_path, capsys) -> None:
    """With --strict (without it, the sample is skipped and reported: tests/cli/test_too_long.py)."""
    data = tmp_path / "long.jsonl"
    rows = [
        {"context": "short context here.", "question": "q?", "answers": ["a"]},
        {"context": "word " * 9000, "question": "q?", "answers": ["a"]},
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    argv = ["bench", "kv", "--data", str(data), "--press", "rcstat", "--format", "json", "--strict"]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert f"{data}:2: needs " in captured.err and "the model allows 8192" in captured.err
    assert captured.out == ""


def test_scores_any_and_all_and_their_intervals() -> None:
    from rcstat.evaluation.intervals import interval
    from rcstat.evaluation.kv.samples import Sample

    any_of = Sample("c", "q", ("Paris", "paris, france"))
    assert any_of.score("It is PARIS.") == 1.0 and any_of.score("Lyon") == 0.0
    all_of = Sample("c", "q", ("111", "222", "333"), match="all")
    assert all_of.score("111 and 333") == pytest.approx(2 / 3)
    assert interval([1.0, 0.0, 1.0, 1.0]) == wilson(3, 4)
    low, high = interval([0.5, 1.0, 0.0, 2 / 3])
    assert 0 <= low < 0.5417 < high <= 1


def test_optional_fields_of_the_data_format(tmp_path) -> None:
    path = tmp_path / "d.jsonl"
    row = {"context": "c", "question": "q", "answers": ["a", "b"], "match": "all", "answer_prefix": "A:"}
    path.write_text(json.dumps({**row, "max_new_tokens": 5, "task": "mine"}) + "\n")
    sample = load_samples(path)[0][0]
    assert (sample.match, sample.answer_prefix, sample.max_new_tokens, sample.task) == (
        "all",
        "A:",
        5,
        "mine",
    )
    path.write_text(json.dumps({**row, "match": "most"}) + "\n")
    with pytest.raises(RCStatError, match="`match`: input should be 'any' or 'all'"):
        load_samples(path, strict=True)


LETTERS = "abcdefghij"
HAYSTACK = [
    ". ".join(
        f"Sentence {LETTERS[i % 10]}{LETTERS[i // 10 % 10]}{LETTERS[i // 100]}ing talks of gardens"
        for i in range(400)
    )
    + "."
]


@pytest.mark.parametrize("task", ["multikey", "multivalue", "vartrack", "cwe"])
def test_synthetic_tasks_hide_their_answers_and_are_deterministic(task: str) -> None:
    from rcstat.evaluation.kv.tasks import SYNTHETIC

    make = SYNTHETIC[task]
    samples = make(Words(), HAYSTACK, 200, 3, seed=4)
    assert samples == make(Words(), HAYSTACK, 200, 3, seed=4) != make(Words(), HAYSTACK, 200, 3, seed=5)
    for sample in samples:
        assert sample.task == task and sample.answer_prefix and sample.max_new_tokens
        assert all(answer in sample.context for answer in sample.answers)
        assert 150 <= len(sample.context.split()) <= 400
    if task == "cwe":  # the asked words are the most frequent ones
        words = [line.split(". ", 1)[1] for line in samples[0].context.splitlines()[1:]]
        top = sorted(set(words), key=words.count, reverse=True)[:3]
        assert set(top) == set(samples[0].answers)
    if task == "vartrack":  # a chain from the value through every name
        value = samples[0].question.split("value ")[1].split()[0]
        assert f"VAR {samples[0].answers[0]} = {value}." in samples[0].context


def test_quotesum_qa_samples_take_the_cited_short_answers(tmp_path) -> None:
    from rcstat.cli.common import describe, flags
    from rcstat.evaluation.kv.tasks import builtin_samples, quotesum_qa_samples

    row = {"question": "Who?", "covered_short_answers": "[ 1 Ada Lovelace ] [ 2 Charles Babbage ]"}
    row |= {f"title{i}": f"T{i}" for i in range(1, 9)} | {f"source{i}": "" for i in range(1, 9)}
    row |= {"source1": "Ada wrote the first program.", "source2": "Babbage designed the engine."}
    path = tmp_path / "qs.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    (sample,) = quotesum_qa_samples(path)  # one sample per question
    assert sample.answers == ("Ada Lovelace", "Charles Babbage") and sample.match == "any"
    assert "Document [2] (Title: T2) Babbage designed" in sample.context
    with pytest.raises(RCStatError, match="task qa needs QuoteSum data") as info:
        builtin_samples(Words(), ["qa"], 1, [100])
    assert describe(info.value, flags(cli.build_parser())).endswith("(--qa-data)")  # the CLI names its flag
    with pytest.raises(RCStatError, match="holds 1 usable questions"):
        builtin_samples(Words(), ["qa"], 2, [100], qa_data=path)
    with pytest.raises(RCStatError, match="unknown task ruler"):
        builtin_samples(Words(), ["ruler"], 1, [100])


def test_report_writes_json_markdown_and_plot(tmp_path) -> None:
    from rcstat.render.kv_report import write_report

    def row(press: str, ratio: float, accuracy: float, threshold: float | None = None) -> dict:
        return {
            "press": press,
            "mode": "ratio" if threshold is None else "threshold",
            "threshold": threshold,
            "compression_ratio": ratio,
            "accuracy": accuracy,
            "ci95": [accuracy / 2, 1.0],
            "n": 4,
            "by_task": {"needle": {"accuracy": accuracy, "ci95": [0, 1], "n": 4}},
            "agreement_with_full_cache": 1.0,
            "realised_ratio": ratio,
            "held_bytes_fraction": 1 - ratio,
            "compression_seconds_mean": 0.1,
            "compression_peak_extra_mib": 3.0,
            "compression_time_vs_snapkv": 1.0,
            "press_repr": f"{press}({ratio})",
        }

    rows = [row("rcstat", 0.5, 0.75), row("snapkv", 0.5, 0.5), row("none", 0.0, 1.0)]
    rows += [row("rcstat", 0.62, 0.6, threshold=1.5), {**row("oracle", 0.5, 0.9), "by_task": {}}]
    rows[0]["evidence_kept"] = {"global": 0.8, "sliding": 0.25}
    meta = {"model": "m", "data": "d", "commit": "abc", "query_aware": True, "command": "rcstat bench kv"}
    paths = write_report(tmp_path, meta, rows)
    assert [p.name for p in paths] == ["results.json", "results.md", "results.png"]
    text = (tmp_path / "results.md").read_text()
    assert "| rcstat | **0.750 [0.38, 1.00]** |" in text and "| full cache | 1.000" in text
    assert "| oracle (n = 4) | 0.900 [0.45, 1.00] |" in text  # an oracle is never the best press
    assert "| rcstat | 1.5 | 0.620 | 0.600 [0.30, 1.00] | 4 |" in text  # τ, realised ratio, score
    assert "| oracle | – |" in text  # the oracle ran on no needle sample here
    assert "## Evidence kept (global / sliding layers)" in text and "| rcstat | 0.80 / 0.25 |" in text
    assert "| snapkv | – |" in text  # no evidence recorded for that cell
    (tmp_path / "piped").mkdir()
    piped = write_report(tmp_path / "piped", meta, [{**rows[0], "press": "rc|keydiff"}, rows[2]])
    assert "| rc\\|keydiff | **0.750 [0.38, 1.00]** |" in piped[1].read_text()  # one cell, not two
    assert json.loads((tmp_path / "results.json").read_text())["results"][0]["press"] == "rcstat"
    assert not list(tmp_path.glob(".*"))  # no temporary files left


@pytest.mark.realmodel
def test_a_run_resumes_from_its_log_and_refuses_another_configuration(tmp_path, capsys) -> None:
    data = tmp_path / "kv.jsonl"
    write_samples(data)
    out = tmp_path / "run"
    argv = [
        "bench",
        "kv",
        "--data",
        str(data),
        "--press",
        "rcstat,none",
        "--output",
        str(out),
        "--format",
        "json",
    ]
    assert cli.main([*argv, "--limit", "1"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert cli.main(argv) == 0  # resumes: sample 1 from the log, sample 2 new
    second = json.loads(capsys.readouterr().out)
    assert [r["n"] for r in first["results"]] == [1, 1] and [r["n"] for r in second["results"]] == [2, 2]
    assert len((out / "log.jsonl").read_text().splitlines()) == 3  # header and two samples
    assert {p.name for p in out.iterdir()} == {"log.jsonl", "results.json", "results.md", "results.png"}
    assert cli.main([*argv[:5], "snapkv", *argv[6:]]) == 2
    assert "written by a run with other presses" in capsys.readouterr().err


def test_cost_in_prefills_adds_the_prefill_to_a_replayed_press_only() -> None:
    from rcstat.evaluation.kv.bench import Config
    from rcstat.evaluation.kv.summary import summarise

    config = Config.create(["none", "snapkv", "kvzip"], [0.5], query_aware=True, max_new_tokens=4)

    def cell(seconds: float) -> dict:
        return {"seconds": seconds, "extra_bytes": 0, "kept_fraction": 0.5, "held_bytes": 1, "score": 1.0}

    records = [
        {
            "task": "needle",
            "full_bytes": 2,
            "prefill_seconds": p,
            "results": {
                "none@0": {**cell(0.0), "agrees": True},
                "snapkv@0.5": {**cell(s), "agrees": True},
                "kvzip@0.5": {**cell(z), "agrees": True},
            },
        }
        for p, s, z in ((2.0, 0.2, 5.0), (4.0, 0.2, 12.0))
    ]
    rows = {r["press"]: r for r in summarise(config, records)}
    assert rows["none"]["cost_in_prefills"] == pytest.approx(1.0)
    assert rows["snapkv"]["cost_in_prefills"] == pytest.approx((1.1 + 1.05) / 2)
    assert rows["kvzip"]["cost_in_prefills"] == pytest.approx((2.5 + 3.0) / 2)


def test_frontier_keeps_the_cells_no_cheaper_cell_beats_and_plots_them(tmp_path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "frontier", Path(__file__).parents[2] / "benchmarks/kv/frontier.py"
    )
    frontier = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(frontier)

    def row(press: str, cost: float, accuracy: float, ratio: float = 0.75) -> dict:
        return {
            "press": press,
            "mode": "ratio",
            "compression_ratio": ratio,
            "accuracy": accuracy,
            "ci95": [accuracy / 2, 1.0],
            "n": 4,
            "cost_in_prefills": cost,
        }

    rows = [
        row("snapkv", 1.02, 0.4),
        row("tova", 1.01, 0.2),
        row("rcstat", 1.03, 0.8),
        row("rcstat-layer", 1.03, 0.1),
        row("kvzip", 3.0, 0.7),
        row("oracle", 1.0, 1.0),
        row("none", 1.0, 0.9, ratio=0.0),
    ]
    got = [(r["press"], r["on_frontier"]) for r in frontier.frontier(rows, 0.75)]
    assert got == [("tova", True), ("snapkv", True), ("rcstat", True), ("rcstat-layer", False)]
    for setting in ("query-aware", "query-agnostic"):
        (tmp_path / setting / "kvzip-subset").mkdir(parents=True)
        result = {"data": "d", "commit": "abc", "command": "rcstat bench kv", "results": rows}
        (tmp_path / setting / "results.json").write_text(json.dumps(result))
        (tmp_path / setting / "kvzip-subset" / "results.json").write_text(json.dumps(result))
    assert frontier.main([str(tmp_path)]) == 0
    text = (tmp_path / "frontier.md").read_text()
    assert "## query-agnostic, kvzip-subset run" in text and "| 0.75 | rcstat | 1.03 | 0.800" in text
    assert (tmp_path / "frontier.png").stat().st_size > 10_000


def test_a_factory_marked_live_runs_live_as_the_registrys_live_presses_do() -> None:
    from kvpress import KVzipPress

    from rcstat.evaluation.kv.bench import Config

    def make(ratio: float) -> KVzipPress:
        return KVzipPress(compression_ratio=ratio)

    make.live = True
    config = Config.create(
        {"none": None, "mine": make, "plain": lambda r: None, "kvzip": lambda r: None}, [0.5], True, 4
    )
    assert {c.key: c.live for c in config.cells} == {
        "none@0": False,
        "mine@0.5": True,
        "plain@0.5": False,
        "kvzip@0.5": True,
    }
