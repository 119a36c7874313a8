"""The compression and generation pages (issue 29): round ticks and named axes, a compact per-layer
chart, a token strip per layer, both answers. Rendered from synthetic records: no model."""

from __future__ import annotations

import re

import pytest

from rcstat.render import compression_html, generation_html, token_strips

MIB = 2**20


def generation_record(full_mib: float = 9.93, steps: int = 40) -> dict:
    rows = [
        {
            "step": i,
            "cache_tokens": 100.0 + i,
            "full_bytes": int((full_mib + i / 100) * MIB),
            "held_bytes": int(full_mib * MIB / 2),
        }
        for i in range(steps)
    ]
    return {
        "model": "tiny",
        "text": "x",
        "press": "rcstat",
        "compression": None,
        "budget": None,
        "interval": None,
        "prompt_tokens": 100,
        "generated_tokens": steps,
        "seconds_per_token": 0.01,
        "compress_seconds": 0.0,
        "prefill_seconds": 0.1,
        "steps": rows,
        "held_bytes_last_step": {"keys_and_values": MIB - 300, "positions": 100, "room_to_grow": 200},
    }


@pytest.mark.parametrize(
    ("span", "step"), [(10.32, 2.5), (1.0, 0.2), (7.45, 2), (39, 10), (255, 100), (3, 1), (0.004, 0.001)]
)
def test_nice_steps_are_round(span: float, step: float) -> None:
    assert generation_html.nice_step(span) == pytest.approx(step)


def test_the_generation_chart_has_round_mib_ticks_and_named_axes() -> None:
    page = generation_html.render(generation_record(), "Q?")
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', page)
    assert labels == ["0 MiB", "2.5 MiB", "5 MiB", "7.5 MiB", "10 MiB", "12.5 MiB"]
    ticks = re.findall(r'text-anchor="middle">(\d+)</text>', page)
    assert ticks == ["0", "10", "20", "30"]
    assert "generated tokens (decoding step)</text>" in page and ">KV bytes</text>" in page
    assert "of which positions (4 B each)" in page and "of which room to grow" in page


def test_small_caches_tick_in_kib() -> None:
    record = generation_record(full_mib=0.3)
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', generation_html.render(record, "Q?"))
    assert labels[0] == "0 KiB" and all(label.endswith(" KiB") for label in labels)


def compression_record(emptied: list[int], full_answer: str | None) -> dict:
    heads = [[2, 2, 0, 0, 1, 2], [2, 0, 0, 0, 0, 2], None]
    return {
        "model": "tiny",
        "press": "SnapKVPress(compression_ratio=0.5)",
        "cache": "ragged",
        "answer": "1903",
        "full_cache_answer": full_answer,
        "query_aware": False,
        "context_tokens": 6,
        "realised_ratio": 0.5,
        "realised_ratio_per_layer": [0.42, 0.67, 0.4],
        "emptied_layers": emptied,
        "kv_bytes_full": 4096,
        "kv_bytes_held": 2048,
        "seconds": {"prefill": 0.1, "compress": 0.01, "decode": 0.2},
        "kept_tokens": {
            "tokens": ["Curie", " won", " in", " 190", "3", "."],
            "kv_heads": 2,
            "heads_per_layer": heads,
        },
    }


def test_the_compression_page_shows_both_answers_strips_and_notes() -> None:
    page = compression_html.render(compression_record([1], "1911"), "When?", 0.5)
    assert 'id="answer">1903<' in page and 'id="full-answer">1911<' in page and "they differ" in page
    assert page.count('class="lane"') == 3 and page.count('class="emptied"') == 1
    assert "layer 2: keys changed by the press, not matched" in page
    assert 'fill-opacity="1.000" data-layer="0"' in page and 'fill-opacity="0.500" data-layer="0"' in page
    assert "tokens 0–1 “Curie won”: 2 of 2 KV heads" in page  # a run of equal cells is one rectangle
    assert page.count('class="gone"') == 2  # " in" and " 190" kept by no head of a known layer
    assert "query-agnostic" in page and "1 of 3 layers keep nothing but" in page
    assert ">layer</text>" in page and ">share kept</text>" in page and "context token</text>" in page
    assert 'viewBox="0 0 520 170"' in page and "max-width:520px" in page  # a compact chart, not the card
    same = compression_html.render(compression_record([], "1903"), "When?")
    assert "the same" in same and "keep nothing but" not in same
    alone = compression_html.render(compression_record([], None), "When?")
    assert 'id="full-answer"' not in alone and "--full-answer" in alone


def test_token_axis_ticks_are_round() -> None:
    assert token_strips._ticks(6) == [0, 1, 2, 3, 4, 5] and token_strips._ticks(137) == list(
        range(0, 137, 20)
    )
    assert token_strips._runs([2, 2, 0, 1, 1, 1]) == [(0, 2, 2), (2, 3, 0), (3, 6, 1)]


def test_kv_plot_draws_an_interval_that_ends_a_rounding_error_inside_its_score(tmp_path) -> None:
    from rcstat.render.plots import plot_kv

    row = {
        "press": "rcstat",
        "mode": "ratio",
        "compression_ratio": 0.5,
        "realised_ratio": 0.5,
        "accuracy": 1.0,
        "ci95": [0.72, 0.9999999999999999],
        "n": 10,
        "threshold": None,
    }
    plot_kv([row], tmp_path / "kv.png", "one cell")
    assert (tmp_path / "kv.png").stat().st_size > 0
