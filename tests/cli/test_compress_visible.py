"""``rcstat compress`` shows what compression did (issue 29): the full cache's answer beside the
compressed one, which context tokens each layer kept, a warning when a ratio empties whole layers,
and the query-agnostic default named in the help and the output. A tiny random Llama with the
default model's tokenizer (marked ``realmodel`` for the tokenizer)."""

from __future__ import annotations

import html
import json

import pytest

from rcstat import cli
from tests.cli.test_commands import CHUNKS

pytestmark = pytest.mark.realmodel


@pytest.fixture
def base(tiny_checkpoint, tmp_path) -> list[str]:
    context = tmp_path / "context.txt"
    context.write_text(" ".join(CHUNKS * 8))
    argv = ["compress", "--context", str(context), "--query", "Who won?", "--model", tiny_checkpoint]
    return [*argv, "--max-new-tokens", "8"]


def run_json(argv: list[str], capsys) -> dict:
    assert cli.main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_full_caches_answer_on_request_equals_the_uncompressed_run(base, capsys) -> None:
    plain = run_json([*base, "--press", "snapkv"], capsys)
    assert plain["full_cache_answer"] is None and set(plain["seconds"]) == {"prefill", "compress", "decode"}
    none = run_json([*base, "--press", "none"], capsys)
    for cache in ("ragged", "masked"):
        both = run_json([*base, "--press", "snapkv", "--cache", cache, "--full-answer"], capsys)
        assert both["full_cache_answer"] == none["answer"] and both["answer"] == plain["answer"]
        assert "full cache" in both["seconds"]


def test_kept_tokens_per_layer_count_the_kv_heads_holding_each_token(base, capsys) -> None:
    for cache in ("ragged", "masked"):
        record = run_json([*base, "--press", "snapkv", "--cache", cache], capsys)
        kept = record["kept_tokens"]
        assert kept["kv_heads"] == 2 and len(kept["tokens"]) == record["context_tokens"]
        assert len(kept["heads_per_layer"]) == 3
        for counts, ratio in zip(kept["heads_per_layer"], record["realised_ratio_per_layer"], strict=True):
            assert len(counts) == record["context_tokens"] and set(counts) <= {0, 1, 2}
            assert sum(counts) / (2 * len(counts)) == pytest.approx(1 - ratio)
        if cache == "ragged":
            ragged = kept
    assert kept == ragged  # the masked cache's matched keys and the ragged cache's positions agree
    full = run_json([*base, "--press", "none"], capsys)["kept_tokens"]
    assert all(set(counts) == {2} for counts in full["heads_per_layer"])


def test_a_ratio_that_empties_layers_warns_once_and_says_so(base, capsys) -> None:
    """SnapKV keeps its 64-token window first: at 0.9 of ~150 tokens, nothing else in any layer."""
    assert cli.main([*base, "--press", "snapkv", "--compression-ratio", "0.9"]) == 0
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if "keep nothing but" in line]
    assert len(warnings) == 1 and "3 of 3 layers" in warnings[0] and "layers 0, 1, 2" in warnings[0]
    assert "note: 3 of 3 layers keep nothing but the press's sinks and window" in out
    record = run_json([*base, "--press", "snapkv", "--compression-ratio", "0.9"], capsys)
    assert record["emptied_layers"] == [0, 1, 2]
    milder = run_json([*base, "--press", "snapkv", "--compression-ratio", "0.25"], capsys)
    assert milder["emptied_layers"] == []


def test_the_query_agnostic_default_is_named_in_help_and_output(base, capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["compress", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "The default is query-agnostic" in shown and "the harder setting" in shown
    assert cli.main(base) == 0
    assert "note: query-agnostic: compressed before the question was seen" in capsys.readouterr().out
    assert cli.main([*base, "--query-aware"]) == 0
    assert "query-agnostic" not in capsys.readouterr().out
    assert run_json([*base, "--query-aware"], capsys)["query_aware"] is True


def test_the_html_page_shows_both_answers_strips_and_notes(base, tmp_path, capsys) -> None:
    page = tmp_path / "compression.html"
    argv = [*base, "--press", "snapkv", "--compression-ratio", "0.9"]
    assert cli.main([*argv, "--format", "html", "--output", str(page)]) == 0
    shown = page.read_text()
    record = run_json([*argv, "--full-answer"], capsys)
    assert f'id="full-answer">{html.escape(record["full_cache_answer"])}<' in shown  # on by default in HTML
    assert 'id="verdict"' in shown and "<script" not in shown
    assert shown.count('class="lane"') == 3 and shown.count('class="emptied"') == 3  # a strip per layer
    assert shown.count("<span") >= record["context_tokens"]  # the context, token by token
    assert "query-agnostic" in shown and "keep nothing but the press" in shown
    assert ">layer</text>" in shown and "share kept</text>" in shown and "context token</text>" in shown
    assert cli.main([*argv, "--no-full-answer", "--format", "html", "--output", str(page)]) == 0
    assert 'id="full-answer"' not in page.read_text()
