"""``rcstat attribute`` and ``rcstat compress`` on a tiny random Llama with the embedded tokenizer.

The tokenizer (and its chat template) comes from the prepared default model, so these tests are
marked ``realmodel``; the model itself is tiny (3 layers), so each command runs in about a second.
"""

from __future__ import annotations

import html
import io
import json
import sys

import pytest
import torch

from rcstat import cli
from rcstat.options import DEFAULT_CITE_OVERLAP
from tests.helpers import QUOTESUM_ROW as ONE_QUOTESUM_ROW

pytestmark = pytest.mark.realmodel

CHUNKS = ["The Rhine rises in the Swiss Alps.", "Marie Curie won two Nobel Prizes.", "Honey never spoils."]


def write_chunks(tmp_path) -> str:
    path = tmp_path / "chunks.jsonl"
    path.write_text("".join(json.dumps({"text": c}) + "\n" for c in CHUNKS))
    return str(path)


def attribute_argv(tmp_path, checkpoint: str) -> list[str]:
    return ["attribute", "--sources", write_chunks(tmp_path), "--query", "Who won?", "--model", checkpoint]


def test_attribute_json_sorted_by_score_and_written_whole(tiny_checkpoint, tmp_path, capsys) -> None:
    argv = attribute_argv(tmp_path, tiny_checkpoint)
    argv += [
        "--response",
        "Marie Curie won.",
        "--span-text",
        "Curie",
        "--granularity",
        "chunk",
        "--format",
        "json",
    ]
    assert cli.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["response"] == "Marie Curie won." and out["target"]["text"].strip() == "Curie"
    scores = [s["score"] for s in out["sources"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3
    assert {s["text"] for s in out["sources"]} == set(CHUNKS)
    target = tmp_path / "out.json"
    assert cli.main([*argv, "--output", str(target)]) == 0
    assert json.loads(target.read_text()) == out


def test_bfloat16_on_request_ranks_as_float32_does(tiny_checkpoint, tmp_path, capsys) -> None:
    from rcstat.models.loading import ModelSource

    model, _ = ModelSource(tiny_checkpoint, "cpu", "bfloat16").load()
    assert model.dtype == torch.bfloat16 and ModelSource.of(model).dtype == "bfloat16"
    argv = [*attribute_argv(tmp_path, tiny_checkpoint), "--response", "Marie Curie won.", "--format", "json"]
    ranks = []
    for dtype in ("float32", "bfloat16"):
        assert cli.main([*argv, "--dtype", dtype, "--device", "cpu"]) == 0
        ranks.append([s["source"] for s in json.loads(capsys.readouterr().out)["sources"]])
    assert ranks[0] == ranks[1]


def test_attribute_generates_a_response_from_a_plain_context(tiny_checkpoint, tmp_path, capsys) -> None:
    context = tmp_path / "context.txt"
    context.write_text(" ".join(CHUNKS))
    argv = ["attribute", "--context", str(context), "--query", "Who won?", "--model", tiny_checkpoint]
    assert cli.main([*argv, "--format", "json", "--top-k", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (
        out["response"] and [s["text"] for s in sorted(out["sources"], key=lambda s: s["source"])] == CHUNKS
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--span", "0:999"], "outside the response"),
        (["--span-text", "Einstein"], "is not in the response"),
        (["--span", "three:four"], None),  # argparse: exit 2 with usage
    ],
)
def test_attribute_bad_spans_fail_in_one_line_and_write_nothing(
    tiny_checkpoint, tmp_path, capsys, extra, message
):
    target = tmp_path / "out.json"
    argv = ["attribute", "--sources", write_chunks(tmp_path), "--query", "q", "--response", "Curie won."]
    argv += ["--model", tiny_checkpoint, "--output", str(target), *extra]
    if message is None:
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
    else:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("rcstat: error:") and message in err[-1]
    assert not target.exists() and not list(tmp_path.glob(".out.json*"))


def test_compress_reports_ratio_bytes_and_phases(tiny_checkpoint, tmp_path, capsys) -> None:
    context = tmp_path / "context.txt"
    context.write_text(" ".join(CHUNKS * 8))
    base = ["compress", "--context", str(context), "--query", "Who won?", "--model", tiny_checkpoint]
    assert cli.main([*base, "--press", "snapkv", "--compression-ratio", "0.5", "--format", "json"]) == 0
    uniform = json.loads(capsys.readouterr().out)
    assert uniform["realised_ratio"] == pytest.approx(0.5, abs=0.02)
    assert uniform["kv_bytes_held"] == pytest.approx(uniform["kv_bytes_full"] / 2, rel=0.05)
    assert len(uniform["realised_ratio_per_layer"]) == 3 and set(uniform["seconds"]) == {
        "prefill",
        "compress",
        "decode",
    }
    assert cli.main([*base, "--threshold", "0", "--cache", "masked", "--format", "json"]) == 0
    masked = json.loads(capsys.readouterr().out)
    assert masked["kv_bytes_held"] == masked["kv_bytes_full"]  # masked per head, not freed
    assert cli.main([*base, "--threshold", "0", "--format", "json"]) == 0  # the ragged cache frees them
    ragged = json.loads(capsys.readouterr().out)
    assert ragged["cache"] == "ragged" and ragged["answer"] == masked["answer"]
    assert ragged["realised_ratio"] == pytest.approx(masked["realised_ratio"])
    kept = 1 - ragged["realised_ratio"]
    assert ragged["kv_bytes_held"] / ragged["kv_bytes_full"] == pytest.approx(kept, abs=0.05)
    assert cli.main([*base, "--press", "snapkv", "--threshold", "0.01", "--format", "json"]) == 0
    thresholded = json.loads(capsys.readouterr().out)  # any scorer is thresholded the same way
    assert (
        thresholded["press"].startswith("ThresholdPress(press=SnapKVPress(")
        and thresholded["realised_ratio"] > 0
    )
    assert cli.main([*base, "--press", "pyramidkv", "--threshold", "0"]) == 2
    assert "press pyramidkv has no score to threshold" in capsys.readouterr().err
    assert cli.main([*base, "--press", "h2o"]) == 2
    assert "unknown press h2o" in capsys.readouterr().err
    context.write_text("word " * 600)
    assert cli.main(base) == 2
    assert "the model allows 512" in capsys.readouterr().err


def write_verigran(tmp_path) -> str:
    summary = "The Rhine starts[ 1  in the Swiss Alps. ] Curie won[ 2  two Nobel Prizes. ]"
    rows = [
        {
            "question": "Facts?",
            "summary": summary,
            "chunk": "The Rhine starts in the Swiss Alps.",
            "passages": CHUNKS,
        },
        {
            "question": "Facts?",
            "summary": summary,
            "chunk": "Curie won two Nobel Prizes.",
            "passages": CHUNKS,
        },
    ]
    path = tmp_path / "vg.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_calibrate_then_bench_attribution_with_the_profile(tiny_checkpoint, tmp_path, capsys) -> None:
    data, profile = write_verigran(tmp_path), tmp_path / "heads.json"
    common = ["--dataset", "verigran", "--data", data, "--model", tiny_checkpoint]
    heatmap = tmp_path / "heads.png"
    argv = ["heads", "calibrate", *common, "--output", str(profile), "--plot", str(heatmap), "--top-k", "2"]
    assert cli.main(argv) == 0
    saved = json.loads(profile.read_text())
    assert saved["examples"] == 1 and len(saved["head_rc"]) == 3 and len(saved["head_rc"][0]) == 4
    assert heatmap.read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["heads", "plot", str(profile), "--output", str(tmp_path / "again.png")]) == 0
    figure = tmp_path / "xy.png"
    argv = ["heads", "histogram", *common, "--example", "0", "--head", "2:1", "--output", str(figure)]
    assert cli.main(argv) == 0 and figure.read_bytes()[:4] == b"\x89PNG"
    assert "layer 2 head 1" in capsys.readouterr().out
    assert cli.main([*argv[:-2], "--head", "7:0", "--output", str(figure)]) == 2
    assert "no head 7:0" in capsys.readouterr().err
    capsys.readouterr()
    assert cli.main(["bench", "attribution", *common, "--method", "rcstat", "--format", "json"]) == 0
    (single,) = json.loads(capsys.readouterr().out)["results"]  # one shape for one method or many
    assert single["n"] == 2 and 0 <= single["accuracy"] <= 1 and single["seconds_per_example"] > 0
    methods = (
        "rcstat,rcstat-calibrated,attention,attention-query-max,attention-all,least-rc,hidden-state,random"
    )
    argv = ["bench", "attribution", *common, "--method", methods, "--profile", str(profile), "--top-k", "3"]
    assert cli.main([*argv, "--faithfulness", "2", "--format", "json"]) == 0
    many = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in many["results"]] == methods.split(",")
    assert all(r["n"] == 2 and r["logprob_drop@1_n"] == 2 for r in many["results"])


def test_bench_attribution_contextcite_in_the_same_run(tiny_checkpoint, tmp_path, capsys) -> None:
    pytest.importorskip("context_cite")
    data = write_verigran(tmp_path)
    argv = ["bench", "attribution", "--dataset", "verigran", "--data", data, "--model", tiny_checkpoint]
    argv += ["--method", "rcstat,contextcite", "--ablations", "4", "--pool", "max", "--format", "json"]
    assert cli.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in out["results"]] == ["rcstat", "contextcite"]
    assert all(r["n"] == 2 and r["seconds_per_example"] > 0 for r in out["results"])
    assert "pool='max'" in out["scoring"] and out["skip"] == 0
    assert cli.main([*argv[:-2], "--skip", "1", "--format", "json"]) == 2  # one example: none left
    assert "no example left after skipping 1" in capsys.readouterr().err


def test_contextcite_sees_the_prompt_and_response_of_the_other_methods(tiny_checkpoint) -> None:
    pytest.importorskip("context_cite")
    import numpy as np

    from rcstat.attribution.features import build_task
    from rcstat.evaluation.attribution.contextcite import contextcite_citer, contextcite_scores
    from rcstat.models import load_model

    model, tokenizer = load_model(tiny_checkpoint)
    response = "Curie won two Nobel Prizes."
    citer = contextcite_citer(model, tokenizer, CHUNKS, "Who won?", response, ablations=4)
    assert citer.response == response and citer.num_sources == 3
    for mask in ([True, True, True], [True, False, True]):
        kept = [c for c, keep in zip(CHUNKS, mask, strict=True) if keep]
        task = build_task(model, tokenizer, kept, "Who won?", response)
        prompt = citer._get_prompt_ids(np.array(mask))
        assert task.input_ids[0].tolist() == prompt + citer._response_ids
    scores = contextcite_scores(citer, 0, len(response))
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_attribute_html_is_one_self_contained_page(tiny_checkpoint, tmp_path) -> None:
    page = tmp_path / "report.html"
    argv = attribute_argv(tmp_path, tiny_checkpoint)
    argv += [
        "--response",
        "Curie won. The Rhine rises in the Alps.",
        "--format",
        "html",
        "--output",
        str(page),
    ]
    assert cli.main(argv) == 0
    text = page.read_text()
    assert "http://" not in text and "https://" not in text and "<link" not in text  # no network, no CDN
    data = json.loads(text.split('<script id="data" type="application/json">')[1].split("</script>")[0])
    assert set(data["scores"]) == {"token", "sentence", "chunk"}
    assert len(data["scores"]["chunk"]) == 2 and all(len(s) == 3 for s in data["scores"]["chunk"])
    assert text.count('class="sent"') == 2 and '<ul class="static">' in text  # readable without JavaScript


def test_compress_html_and_stdin(tiny_checkpoint, tmp_path, capsys, monkeypatch) -> None:
    text = " ".join(CHUNKS * 8)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    page = tmp_path / "compression.html"
    argv = [
        "compress",
        "--context",
        "-",
        "--query",
        "Who won?",
        "--model",
        tiny_checkpoint,
        "--press",
        "snapkv",
    ]
    assert cli.main([*argv, "--format", "html", "--output", str(page)]) == 0
    shown = page.read_text()
    assert (
        "http://" not in shown and "https://" not in shown and "<link" not in shown and "<script" not in shown
    )
    assert shown.count('<rect class="bar"') == 3  # one bar per layer, inline SVG
    assert 'id="ratio">0.50' in shown and "KV bytes before" in shown and "decode" in shown
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert cli.main([*argv, "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert f'id="answer">{html.escape(record["answer"])}<' in shown  # the same answer, escaped


def test_compress_shows_its_phases_on_a_terminal(tiny_checkpoint, tmp_path, capsys, monkeypatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    context = tmp_path / "context.txt"
    context.write_text(" ".join(CHUNKS * 4))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    argv = ["compress", "--context", str(context), "--query", "Who won?", "--model", tiny_checkpoint]
    assert cli.main([*argv, "--max-new-tokens", "4"]) == 0
    bar = terminal.getvalue()
    assert all(phase in bar for phase in ("loading", "prefill and compress", "decode")) and "3/3" in bar
    out = capsys.readouterr().out
    assert out.startswith("answer: ") and "\r" not in out  # results on stdout, the bar on stderr only


def test_attribute_from_stdin_with_a_calibrated_profile(
    tiny_checkpoint, tmp_path, capsys, monkeypatch
) -> None:
    data, profile = write_verigran(tmp_path), tmp_path / "heads.json"
    argv = ["heads", "calibrate", "--dataset", "verigran", "--data", data, "--model", tiny_checkpoint]
    assert cli.main([*argv, "--output", str(profile)]) == 0
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(" ".join(CHUNKS).encode())))
    argv = ["attribute", "--context", "-", "--query", "Who won?", "--response", "Curie won."]
    argv += ["--model", tiny_checkpoint, "--profile", str(profile), "--top-k", "2", "--format", "json"]
    assert cli.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(s["text"] for s in out["sources"]) == sorted(CHUNKS)


def test_attribute_context_over_the_model_length(tiny_checkpoint, tmp_path, capsys) -> None:
    context, page = tmp_path / "long.txt", tmp_path / "report.html"
    context.write_text("The Rhine rises in the Swiss Alps. " * 120)
    argv = ["attribute", "--context", str(context), "--query", "Where?", "--response", "In the Alps."]
    assert cli.main([*argv, "--model", tiny_checkpoint, "--format", "html", "--output", str(page)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("rcstat: error:")
    assert "the model allows 512" in err and not page.exists()


def test_a_press_refusing_a_short_context_is_one_line(tiny_checkpoint, tmp_path, capsys) -> None:
    """kvpress checks its presses' preconditions with assert (SnapKV: a context longer than its window)."""
    context = tmp_path / "context.txt"
    context.write_text("Curie won two Nobel Prizes.")
    argv = ["compress", "--context", str(context), "--query", "Who won?", "--model", tiny_checkpoint]
    for cache in ("ragged", "masked"):
        assert cli.main([*argv, "--press", "snapkv", "--cache", cache]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("rcstat: error: SnapKVPress refused the context: Query length"), err


def test_generate_reports_the_cache_at_every_step(tiny_checkpoint, tmp_path, capsys) -> None:
    context = tmp_path / "context.txt"
    context.write_text(" ".join(CHUNKS * 6))
    base = ["generate", "--context", str(context), "--query", "Repeat it.", "--model", tiny_checkpoint]
    base += ["--max-new-tokens", "20"]
    assert cli.main([*base, "--budget", "24", "--interval", "4", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record) >= {"text", "press", "budget", "interval", "seconds_per_token", "steps", "model"}
    assert record["press"] == "rcstat" and record["budget"] == "24 tokens" and record["interval"] == 4
    steps = record["steps"]
    assert [s["step"] for s in steps] == list(range(len(steps))) and len(steps) == record["generated_tokens"]
    assert set(steps[0]) == {"step", "cache_tokens", "full_bytes", "held_bytes"}
    assert all(s["cache_tokens"] <= 24 and s["held_bytes"] < s["full_bytes"] for s in steps)
    assert cli.main([*base, "--press", "none", "--format", "json"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["budget"] is None and full["steps"][-1]["cache_tokens"] > 24
    page = tmp_path / "generation.html"
    assert (
        cli.main(
            [
                *base,
                "--press",
                "knorm",
                "--compression-ratio",
                "0.5",
                "--format",
                "html",
                "--output",
                str(page),
            ]
        )
        == 0
    )
    shown = page.read_text()
    assert shown.count("<polyline") == 2 and "<script" not in shown and "KnormPress" in shown
    assert cli.main([*base, "--budget", "24"]) == 0
    assert "press: rcstat   budget: 24 tokens" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget", "5000"], "a budget of 5000 tokens is not below the prompt's"),
        (["--budget", "8", "--interval", "0"], "--interval: expected a positive integer"),
        (["--budget", "8", "--interval", "8"], "leaves no room for 8 steps"),
        (["--budget", "8", "--press", "nope"], "unknown press nope"),
        (["--budget", "8", "--press", "pyramidkv"], "cannot compress while generating"),
        (["--press", "rcstat"], "give one budget"),
    ],
)
def test_generate_refuses_bad_input_in_one_line(extra, message, tiny_checkpoint, tmp_path, capsys) -> None:
    from tests.cli.test_errors import fail

    context = tmp_path / "context.txt"
    context.write_text(" ".join(CHUNKS * 6))
    argv = [
        "generate",
        "--context",
        str(context),
        "--query",
        "Repeat it.",
        "--model",
        tiny_checkpoint,
        *extra,
    ]
    assert message in fail(argv, capsys, alone=False)


def test_cite_text_json_and_html(tiny_checkpoint, tmp_path, capsys) -> None:
    argv = [*attribute_argv(tmp_path, tiny_checkpoint)[1:], "--response", "Curie won. The Rhine rises."]
    argv += ["--min-support", "-1000"]  # a random model's support gates nothing out
    assert cli.main(["cite", *argv, "--format", "json", "--margin", "0"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record) == {
        "model",
        "response",
        "margin",
        "min_support",
        "min_logprob",
        "min_overlap",
        "sentences",
        "sources",
    }
    assert record["min_logprob"] is None and all(
        isinstance(s["low_logprob"], float) for s in record["sentences"]
    )
    assert record["min_overlap"] == DEFAULT_CITE_OVERLAP and all(
        s["overlap"] == 1.0 for s in record["sentences"]
    )
    assert [s["text"] for s in record["sentences"]] == ["Curie won.", "The Rhine rises."]
    assert all(s["citations"] for s in record["sentences"]) and len(record["sources"]) == 3
    assert all(isinstance(s["support"], float) for s in record["sentences"])
    assert [s["source"] for s in record["sources"]] == [1, 2, 3]  # the [n] printed is the n in JSON
    first = record["sentences"][0]["citations"][0]
    assert cli.main(["cite", *argv, "--format", "json", "--margin", "0", "--min-logprob", "0"]) == 0
    strict = json.loads(capsys.readouterr().out)  # no token is certain: every sentence is gated out
    assert strict["min_logprob"] == 0 and not any(s["citations"] for s in strict["sentences"])
    assert cli.main(["cite", *argv, "--margin", "0"]) == 0
    text = capsys.readouterr().out
    assert (
        text.startswith(f"Curie won. [{first['source']}]")
        and "\n[1] The Rhine rises in the Swiss Alps." in text
    )
    assert cli.main(["cite", *argv, "--margin", "0", "--scores"]) == 0
    assert f"[{first['source']}: {first['score']:.2f}]" in capsys.readouterr().out
    page = tmp_path / "cited.html"
    assert cli.main(["cite", *argv, "--margin", "0", "--format", "html", "--output", str(page)]) == 0
    shown = page.read_text()
    assert 'href="#source-' in shown and 'id="source-3"' in shown and "<script" not in shown


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--response", " "], "the response is empty"),
        (["--margin", "nan"], "--margin"),
    ],
)
def test_cite_refuses_bad_input_in_one_line(extra, message, tiny_checkpoint, tmp_path, capsys) -> None:
    from tests.cli.test_errors import fail

    argv = ["cite", *attribute_argv(tmp_path, tiny_checkpoint)[1:], *extra]
    assert message in fail(argv, capsys, alone=False)


def test_cite_refuses_no_sources_and_a_long_context(tiny_checkpoint, tmp_path, capsys) -> None:
    from tests.cli.test_errors import fail

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    argv = ["cite", "--sources", str(empty), "--query", "q", "--model", tiny_checkpoint]
    assert "the file is empty" in fail(argv, capsys)
    long = tmp_path / "long.txt"
    long.write_text("word " * 700)
    argv = ["cite", "--context", str(long), "--query", "q", "--response", "x", "--model", tiny_checkpoint]
    assert "the model allows 512" in fail(argv, capsys, alone=False)


# one QuoteSum row: two annotated sentences, each from its own passage, and a third passage
QUOTESUM_ROW = {**ONE_QUOTESUM_ROW, "title3": "C", "source3": "Cy."}


def test_bench_citations_sweeps_margins(tiny_checkpoint, tmp_path, capsys) -> None:
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps(QUOTESUM_ROW) + "\n")
    out = tmp_path / "c.json"
    argv = ["bench", "citations", "--dataset", "quotesum", "--data", str(data), "--model", tiny_checkpoint]
    assert cli.main([*argv, "--margin", "0,1e6", "--output", str(out), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [r["margin"] for r in rows] == [0, 1e6]
    assert rows[0]["gold"] == 2 and rows[0]["citations"] >= 2 and rows[1]["citations"] == 0
    assert 0 <= rows[0]["precision"] <= 1 and rows[0]["f1"] >= 0
    assert json.loads(out.read_text())["records"][0]["counts"]["0.0"][3] == 2


def test_heads_at2_trains_weights_that_bench_attribution_uses(tiny_checkpoint, tmp_path, capsys) -> None:
    from tests.cli.test_errors import fail

    data = tmp_path / "q.jsonl"
    data.write_text((json.dumps(QUOTESUM_ROW) + "\n") * 2)
    weights = tmp_path / "w.json"
    base = ["--dataset", "quotesum", "--data", str(data), "--model", tiny_checkpoint]
    assert cli.main(["heads", "at2", *base, "--ablations", "3", "--output", str(weights)]) == 0
    saved = json.loads(weights.read_text())
    assert saved["method"] == "at2" and len(saved["weights"]) == 3 and len(saved["weights"][0]) == 4
    capsys.readouterr()
    bench = ["bench", "attribution", *base, "--method", "at2,rcstat", "--format", "json"]
    assert cli.main([*bench, "--head-weights", str(weights)]) == 0
    rows = {r["method"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert rows["at2"]["n"] == 4 and 0 <= rows["at2"]["accuracy"] <= 1
    assert "method at2 needs head weights" in fail(bench, capsys, alone=False)


def test_bench_attribution_at_a_context_length_records_depth_and_cost(tiny_checkpoint, tmp_path) -> None:
    rows = [
        {
            "question": f"Who {i}?",
            "summary": f"[ 1 Ada{i} wrote it. ]",
            "title1": "A",
            "source1": f"Ada{i} wrote it.",
            "title2": "B",
            "source2": f"Bo{i} read it twice and then once more.",
        }
        for i in range(4)
    ]
    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "long.json"
    argv = ["bench", "attribution", "--dataset", "quotesum", "--data", str(data), "--model", tiny_checkpoint]
    assert cli.main([*argv, "--context-tokens", "40", "--method", "rcstat,random", "--output", str(out)]) == 0
    run = json.loads(out.read_text())
    assert run["context_tokens"] == 40 and run["context_tokens_mean"] >= 40
    assert [r["depth"] for r in run["records"]] == [0.0, 0.25, 0.5, 0.75]
    assert all(r["chunks"] > 2 for r in run["records"])
    assert run["forward_seconds_mean"] > 0 and run["pass_seconds_mean"] > 0
    assert set(run["results"][0]["by_depth"]) == {"0.0", "0.25", "0.5", "0.75"}
    assert cli.main([*argv, "--no-forward-cost", "--method", "random", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["forward_seconds_mean"] is None
