"""ProbePress: the probe's rows read on top of a prefill equal those of the context and the probe
prefilled together; each key scores the larger RC (window or probe); live equals replayed; the cache
holds the context alone, at the ratio asked."""

from __future__ import annotations

import pytest
import torch
from kvpress.utils import compute_n_kept
from transformers import DynamicCache

from rcstat.errors import RCStatError
from rcstat.kv.replay import compress_live, record_prefill, replay
from rcstat.models.logits import is_sliding
from rcstat.presses import AutoRCPress, RCStatPress
from rcstat.presses.probe_press import ProbePress, ProbeRCPress, on_scale, probe_rows
from tests.helpers import tiny_model

N, P = 30, 6


def _ids(seed: int, length: int) -> torch.Tensor:
    return torch.randint(3, 128, (1, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("family", ["llama-gqa", "qwen3-gqa", "gemma3-gqa"])
def test_the_probe_read_after_the_prefill_is_the_probe_appended_to_it(family: str) -> None:
    """Per global layer, the probe's hidden states, rotary and keys equal the last P rows of one prefill
    of the context and the probe (Gemma 3: its sliding layers' windows, full here, carried on)."""
    model = tiny_model(family)
    context, probe = _ids(0, N), _ids(1, P)
    rows = probe_rows(record_prefill(model, context), probe)
    together = record_prefill(model, torch.cat([context, probe], dim=1))
    globals_ = [la for la in together.layers if not is_sliding(la.module)]
    assert sorted(rows) == [la.module.layer_idx for la in globals_] and rows
    for la in globals_:
        hidden, rotary, keys = rows[la.module.layer_idx]
        torch.testing.assert_close(hidden, la.hidden_states[:, -P:], atol=1e-5, rtol=1e-4)
        for got, want in zip(rotary, la.position_embeddings, strict=True):
            torch.testing.assert_close(got, want[:, -P:])
        torch.testing.assert_close(keys, la.keys[:, :, -P:], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("merge", ["max", "rank"])
@pytest.mark.parametrize("family", ["llama-gqa", "gemma3-gqa"])
def test_a_key_scores_the_larger_of_its_window_rc_and_its_probe_rc(family: str, merge: str) -> None:
    """The reference: the window's RC on the context's prefill, the probe's RC as RCStatPress scores a
    prefill of the context and the probe with the probe's rows (all P of them) as its window."""
    model = tiny_model(family)
    context, probe = _ids(2, N), _ids(3, P)
    record = record_prefill(model, context)
    together = record_prefill(model, torch.cat([context, probe], dim=1))
    scorer = ProbeRCPress(above_null=True, window_size=4, merge=merge)
    scorer.rows = probe_rows(record, probe)
    plain = ProbeRCPress(above_null=True, window_size=4)
    for la, both in zip(record.layers, together.layers, strict=True):
        if is_sliding(la.module):
            continue
        kwargs = {"position_embeddings": la.position_embeddings}
        got = scorer.score(la.module, la.hidden_states, la.keys, la.values, None, kwargs)
        window = plain.score(la.module, la.hidden_states, la.keys, la.values, None, kwargs)
        rope = tuple(t[:, -P:] for t in both.position_embeddings)
        read = ProbeRCPress(above_null=True, window_size=P).score(
            la.module, both.hidden_states[:, -P:], both.keys, both.values, None, {"position_embeddings": rope}
        )[..., :N]
        want = torch.maximum(window, read if merge == "max" else on_scale(read, window))
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
        assert (want[..., 4:-4] > window[..., 4:-4]).any()  # the probe decides some keys


@pytest.mark.parametrize(("merge", "rows"), [("union", 4 + P), ("probe", P)])
@pytest.mark.parametrize("family", ["llama-gqa", "gemma3-gqa"])
def test_union_and_probe_merges_are_rc_against_a_prefill_with_the_probe_appended(
    family: str, merge: str, rows: int
) -> None:
    """``union``: RC against the window's and the probe's rows as one window of a prefill of the context
    and the probe; ``probe``: against the probe's rows alone; the context's window kept either way."""
    model = tiny_model(family)
    context, probe = _ids(7, N), _ids(8, P)
    record = record_prefill(model, context)
    together = record_prefill(model, torch.cat([context, probe], dim=1))
    scorer = ProbeRCPress(window_size=4, merge=merge)
    scorer.rows = probe_rows(record, probe)
    for la, both in zip(record.layers, together.layers, strict=True):
        if is_sliding(la.module):
            continue
        kwargs = {"position_embeddings": la.position_embeddings}
        got = scorer.score(la.module, la.hidden_states, la.keys, la.values, None, kwargs)
        want = RCStatPress(window_size=rows).score(
            both.module,
            both.hidden_states,
            both.keys,
            both.values,
            None,
            {"position_embeddings": both.position_embeddings},
        )[..., :N]
        want[..., -4:] = float("inf")
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("checkpoint", ["tiny_checkpoint", "tiny_gemma3"])
@pytest.mark.parametrize("ratio", [0.25, 0.75])
@pytest.mark.parametrize("min_kv_heads", [1, 16])  # the recipe: RC across the model, or FillPress per head
def test_live_equals_replayed_and_the_cache_is_the_contexts_at_the_ratio(
    checkpoint: str, ratio: float, min_kv_heads: int, request: pytest.FixtureRequest
) -> None:
    from rcstat.models import load_model

    model, _ = load_model(request.getfixturevalue(checkpoint))
    context = torch.randint(5, 1000, (1, 40), generator=torch.Generator().manual_seed(4))
    live = compress_live(model, context, ProbePress(ratio, min_kv_heads))
    live_masks = [m if m is None else tuple(t.clone() for t in m) for m in live.masks]
    replayed = replay(record_prefill(model, context), ProbePress(ratio, min_kv_heads))
    plain = replay(record_prefill(model, context), AutoRCPress(ratio, min_kv_heads))
    seen, full = 0, 0
    for i, module in enumerate(block.self_attn for block in model.model.layers):
        a, b = live.cache.layers[i], replayed.cache.layers[i]
        torch.testing.assert_close(a.keys, b.keys)
        torch.testing.assert_close(a.values, b.values)
        assert (live_masks[i] is None) == (replayed.masks[i] is None)
        if live_masks[i] is not None:
            assert all(torch.equal(x, y) for x, y in zip(live_masks[i], replayed.masks[i], strict=True))
        if is_sliding(module):  # left whole: the prefill's window, nothing of the probe
            assert a.keys.shape[-2] == plain.cache.layers[i].keys.shape[-2]
            torch.testing.assert_close(a.keys, plain.cache.layers[i].keys)
            continue
        assert a.keys.shape[-2] <= 40
        seen += a.keys.shape[-2] * a.keys.shape[1] - (
            0 if live_masks[i] is None else live_masks[i][0].numel()
        )
        full += 40 * a.keys.shape[1]
        if min_kv_heads == 16:  # FillPress: every head keeps the same share
            assert a.keys.shape[-2] == compute_n_kept(40, ratio) and live_masks[i] is None
    assert abs(seen - full * (1 - ratio)) <= 2  # the context's entries at the ratio, none of the probe's


def test_the_probe_is_read_once_per_prefill_and_decoding_passes_through(tiny_checkpoint: str) -> None:
    """Within ``with press(model)`` a later forward (a question after the prefill) runs as is."""
    from rcstat.models import load_model

    model, _ = load_model(tiny_checkpoint)
    context, question = _ids(5, 40), _ids(6, 5)
    calls: list[int] = []
    model.model.register_forward_pre_hook(
        lambda m, a, kw: calls.append(kw["input_ids"].shape[1]), with_kwargs=True
    )
    cache = DynamicCache(config=model.config)
    press = ProbePress(0.5)
    with torch.no_grad(), press(model):
        model.model(input_ids=context, past_key_values=cache)
        model.model(input_ids=question, past_key_values=cache)
    assert calls == [40, len(press._probe_ids[0]), 5]  # the prefill, the probe on a copy, the question
    assert not press.chosen.press.rows


def test_on_scale_gives_each_key_the_scales_value_at_its_own_rank() -> None:
    g = torch.Generator().manual_seed(9)
    scores, scale = torch.randn(2, 3, 20, generator=g), torch.randn(2, 3, 20, generator=g) * 5
    scale[..., :2] = scale[..., -3:] = float("inf")
    got = on_scale(scores, scale)
    for b in range(2):
        for h in range(3):
            keys = range(2, 17)
            by_score = sorted(keys, key=lambda i: float(scores[b, h, i]))
            values = sorted(float(scale[b, h, i]) for i in keys)
            for rank, i in enumerate(by_score):
                assert float(got[b, h, i]) == pytest.approx(values[rank])
            assert torch.isposinf(got[b, h, :2]).all() and torch.isposinf(got[b, h, -3:]).all()


def test_a_hook_that_compresses_during_the_prefill_is_refused_clearly(tiny_checkpoint: str) -> None:
    """RaggedPress calls ``compress`` layer by layer in the prefill, before any probe: an error, not
    the window's RC alone under the probe's name."""
    from rcstat.kv.ragged import RaggedCache, RaggedPress
    from rcstat.models import load_model

    model, _ = load_model(tiny_checkpoint)
    press, cache = RaggedPress(ProbePress(0.5)), RaggedCache(model.config)
    with pytest.raises(RCStatError, match="reads its probe after the prefill"), torch.no_grad(), press(model):
        model.model(input_ids=_ids(10, 40), past_key_values=cache)


def test_an_empty_probe_or_an_unknown_merge_is_refused() -> None:
    with pytest.raises(RCStatError, match="probe"):
        ProbePress(0.5, probe=" ")
    with pytest.raises(RCStatError, match="merge"):
        ProbePress(0.5, merge="sum")
