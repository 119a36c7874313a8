"""``rcstat generate`` (issue 29): the bytes held split into what they hold (so the full cache's
held bytes above the uncompressed figure are accounted for), tokens-so-far progress off a terminal,
and ``generate_text`` without a label. A tiny random Llama with the default model's tokenizer."""

from __future__ import annotations

import json
import re

import pytest

from rcstat import cli
from tests.cli.test_commands import CHUNKS

pytestmark = pytest.mark.realmodel


@pytest.fixture
def base(tiny_checkpoint, tmp_path) -> list[str]:
    context = tmp_path / "context.txt"
    context.write_text(" ".join(CHUNKS * 6))
    argv = ["generate", "--context", str(context), "--query", "Repeat it.", "--model", tiny_checkpoint]
    return [*argv, "--max-new-tokens", "20"]


def test_held_bytes_are_keys_and_values_positions_and_room(base, capsys) -> None:
    """The full cache holds the uncompressed cache's keys and values exactly, and more: a position
    per entry and room to grow (what made 10.19 MiB held of a 9.93 MiB cache)."""
    for press in (["--press", "none"], ["--budget", "24", "--interval", "4"]):
        assert cli.main([*base, *press, "--format", "json"]) == 0
        record = json.loads(capsys.readouterr().out)
        parts, last = record["held_bytes_last_step"], record["steps"][-1]
        assert sum(parts.values()) == last["held_bytes"] and min(parts.values()) >= 0
        assert parts["positions"] * 32 == parts["keys_and_values"]  # 4 bytes beside 2 × 16 float32s
        if press[1] == "none":
            assert parts["keys_and_values"] == last["full_bytes"] and parts["room_to_grow"] > 0
    assert cli.main([*base, "--press", "none"]) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"MiB held \([\d.]+ MiB keys and values, [\d.]+ MiB positions, [\d.]+ MiB room to grow\)", out
    )


def test_generate_says_how_many_tokens_so_far(base, capsys) -> None:
    assert cli.main([*base, "--budget", "24"]) == 0
    err = capsys.readouterr().err.splitlines()
    counted = [line for line in err if re.fullmatch(r"\d+/\d+ tokens \(.*tokens/s.*\)", line)]
    assert counted, err
    done, total = map(int, re.search(r"(\d+)/(\d+)", counted[-1]).groups())
    assert done == total and done <= 20


def test_generate_text_needs_no_label(tiny_checkpoint) -> None:
    from rcstat.kv.generate import generate_text
    from rcstat.kv.generation import Budget
    from rcstat.models.loading import ModelSource
    from rcstat.presses.registry import make_decoding

    model, tokenizer = ModelSource(tiny_checkpoint, "cpu", "float32").load()
    context = " ".join(CHUNKS * 6)
    calls: list[tuple[int, int]] = []
    full = generate_text(
        model, tokenizer, context, "Repeat it.", max_new_tokens=12, on_token=lambda *c: calls.append(c)
    )
    assert full.press == "none" and full.compression is None
    assert [done for done, _ in calls] == list(range(1, len(full.generated.tokens) + 1))
    assert calls[-1][0] == calls[-1][1]  # the last call closes the count, early stop or not
    knorm = generate_text(
        model, tokenizer, context, "Repeat it.", make_decoding("knorm", Budget(tokens=24)), max_new_tokens=4
    )
    assert knorm.press == "KnormPress" and knorm.to_dict()["budget"] == "24 tokens"
