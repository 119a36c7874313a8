"""``rcstat bench kv``: the data format, press names, intervals and the command's output."""

from __future__ import annotations

import json

import pytest

from rcstat import cli
from rcstat.errors import RCStatError
from rcstat.kv.bench import load_samples, parse_presses, wilson

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
    with pytest.raises(RCStatError, match="record 2: `answers` must be a non-empty list"):
        load_samples(path)
    path.write_text('{"context": "c", "question": "q", "answers": "a"}\n')
    assert load_samples(path)[0].answers == ("a",)


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
    single = json.loads(capsys.readouterr().out)
    assert single["n"] == 2 and 0 <= single["accuracy"] <= 1 and single["press"] == "rcstat"
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
    class Words:  # a whitespace tokenizer: one token per word
        def __call__(self, text: str, add_special_tokens: bool = False):
            return type("Enc", (), {"input_ids": text.split()})()

    from rcstat.kv.tasks import needle_samples

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
    argv = ["bench", "kv", "--task", "needle", "--lengths", "256", "--depths", "0.5", "--per-task", "1"]
    assert cli.main([*argv, "--press", "rcstat", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 1 and result["data"].startswith("needle (per task 1")


@pytest.mark.realmodel
def test_context_longer_than_the_model_allows_is_refused_before_any_work(tmp_path, capsys) -> None:
    data = tmp_path / "long.jsonl"
    rows = [
        {"context": "short context here.", "question": "q?", "answers": ["a"]},
        {"context": "word " * 9000, "question": "q?", "answers": ["a"]},
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert cli.main(["bench", "kv", "--data", str(data), "--press", "rcstat", "--format", "json"]) == 2
    captured = capsys.readouterr()
    assert "sample 2 needs" in captured.err and "the model allows 8192" in captured.err
    assert captured.out == ""
