"""``rcstat bench decoding``: its metrics against brute-force references, its tasks, and the command's
output, resume and errors on a tiny model."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rcstat import cli
from rcstat.evaluation.decoding.metrics import agreement, continuation_nll, lcs_length, rouge_l
from rcstat.evaluation.decoding.tasks import copy_samples
from tests.cli.test_errors import fail
from tests.helpers import Words, tiny_model, write_jsonl


def lcs_reference(a, b) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 5), max_size=40), st.lists(st.integers(0, 5), max_size=40))
def test_bit_parallel_lcs_equals_the_dynamic_programme(a, b) -> None:
    assert lcs_length(a, b) == lcs_reference(a, b)


def test_rouge_l_and_agreement() -> None:
    assert rouge_l([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0 and rouge_l([], []) == 1.0 and rouge_l([1], [2]) == 0.0
    assert rouge_l([1, 9, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.75)  # LCS 3 of 4 and 4
    assert agreement([1, 2, 7, 4], [1, 2, 3, 4]) == 0.5 and agreement([1, 2], [1, 2, 3, 4]) == 0.5
    assert agreement([1, 2, 3, 4, 5], [1, 2, 3, 4]) == 1.0


def test_continuation_nll_equals_one_full_forward() -> None:
    model = tiny_model("llama-gqa")
    prompt = torch.randint(3, 128, (12,), generator=torch.Generator().manual_seed(0))
    continuations = [[5, 9, 11], [7], [], [4, 4, 4, 4, 4]]
    got = continuation_nll(model, prompt, continuations)
    for tokens, value in zip(continuations, got, strict=True):
        if not tokens:
            assert math.isnan(value)
            continue
        ids = torch.cat([prompt, torch.tensor(tokens)])[None]
        with torch.no_grad():
            logp = model(ids).logits[0, len(prompt) - 1 : -1].log_softmax(-1)
        want = -logp.gather(-1, torch.tensor(tokens)[:, None]).mean()
        assert value == pytest.approx(float(want), abs=1e-5)


def test_copy_samples_are_deterministic_lists_whose_lines_are_the_answers() -> None:
    first, again = copy_samples(Words(), 60, 2, seed=3), copy_samples(Words(), 60, 2, seed=3)
    assert first == again and first[0] != first[1]
    for sample in first:
        lines = sample.context.split("\n")
        assert list(sample.answers) == lines and len(set(lines)) == len(lines) and sample.match == "all"
        assert sample.score("\n".join(lines[: len(lines) // 2])) == pytest.approx(
            (len(lines) // 2) / len(lines)
        )


FACTS = "The Rhine rises in the Swiss Alps. Marie Curie won two Nobel Prizes. Honey never spoils. "


@pytest.mark.realmodel
def test_bench_decoding_writes_resumes_and_reports(tiny_checkpoint, tmp_path, capsys) -> None:
    rows = [
        {"context": FACTS * 6, "question": "Repeat it.", "answers": ["Honey"]},
        {"context": FACTS * 5, "question": "Say it again."},
    ]
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    out = tmp_path / "run"
    argv = [
        "bench",
        "decoding",
        "--data",
        data,
        "--press",
        "rcstat,knorm",
        "--budget",
        "16,24",
        "--interval",
        "4",
        "--max-new-tokens",
        "12",
        "--model",
        tiny_checkpoint,
        "--output",
        str(out),
        "--format",
        "json",
    ]
    assert cli.main([*argv, "--limit", "1"]) == 0
    capsys.readouterr()
    assert cli.main([*argv, "--timing-tokens", "6"]) == 0  # resumes: sample 1 from the log
    result = json.loads(capsys.readouterr().out)
    assert len((out / "log.jsonl").read_text().splitlines()) == 3
    assert {p.name for p in out.iterdir()} == {
        "log.jsonl",
        "results.json",
        "results.md",
        "quality.png",
        "memory.png",
    }
    cells = [(r["press"], r["budget"]) for r in result["results"]]
    assert cells == [
        ("none", None),
        ("rcstat", "16 tokens"),
        ("rcstat", "24 tokens"),
        ("knorm", "16 tokens"),
        ("knorm", "24 tokens"),
    ]
    full = result["results"][0]
    assert full["agreement"] == 1.0 and full["rouge_l"] == 1.0 and full["nll_minus_full"] == 0.0
    assert full["task_accuracy"] is not None and result["results"][0]["n"] == 2
    for row in result["results"][1:]:
        budget = int(row["budget"].split()[0])
        assert row["cache_tokens_peak"] <= budget and row["held_peak_fraction"] < 1
    assert [t["config"] for t in result["timing"]][:2] == ["none (transformers DynamicCache)", "none"]
    assert set(result["memory_first_sample"]) == {"none", "rcstat@16", "rcstat@24", "knorm@16", "knorm@24"}


@pytest.mark.realmodel
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget", "5000"], "a budget of 5000 is not below it"),
        (["--budget", "8", "--interval", "8"], "leaves no room for 8 steps"),
        (["--press", "pyramidkv"], "cannot compress while generating"),
        (["--press", "nope"], "unknown press nope"),
    ],
)
def test_bench_decoding_refuses_bad_input_in_one_line(
    extra, message, tiny_checkpoint, tmp_path, capsys
) -> None:
    data = write_jsonl(tmp_path / "rows.jsonl", [{"context": FACTS * 6, "question": "Repeat it."}])
    argv = ["bench", "decoding", "--data", data, "--model", tiny_checkpoint, "--max-new-tokens", "12", *extra]
    assert message in fail(argv, capsys, alone=False)
