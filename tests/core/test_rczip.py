"""RC over a reconstruction window (RCZipPress): its scores and eviction against brute-force references."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from rcstat.models.logits import LogitCapture
from rcstat.presses import RCZipPress
from rcstat.presses import rczip_press as rczip
from tests.helpers import tiny_model

CONTEXT, REPEAT = 12, 7


def _rc(lg: torch.Tensor, keys: range, heads: range, lo: int, floor: str) -> dict[int, float]:
    """score(i) = max over rows j and heads h of f(i, j) − the mean (or log-sum-exp) of row j's floor keys.

    ``lg`` (heads, rows, all keys): row j is key ``lo + j``; the repeat starts at key ``lo``."""
    out = {}
    for i in keys:
        best = []
        for h in heads:
            for j in range(lg.shape[1]):
                seen = lg[h, j, lo : lo + j + 1]
                if floor != "repeat":
                    seen = torch.cat([lg[h, j, :lo], seen])
                level = seen.logsumexp(0) if floor == "lse" else seen.mean()
                best.append(float(lg[h, j, i]) - float(level))
        out[i] = max(best)
    return out


@pytest.mark.parametrize(
    ("family", "floor", "prefix", "budget"),
    [
        ("llama-gqa", "repeat", "zero", "rc"),
        ("qwen3-gqa", "row", "zero", "rc"),
        ("phi3-mha", "repeat", "score", "rc"),
        ("llama-gqa", "lse", "zero", "rc"),
        ("llama-gqa", "repeat", "zero", "attention"),
    ],
)
def test_a_key_scores_its_best_repeat_row_above_that_rows_floor(
    family: str, floor: str, prefix: str, budget: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """floor "repeat": the mean of row j's causal logits over the repeat; "row": over every key it sees;
    "lse": their log-sum-exp. budget "attention" also keeps each key's best log attention (the "lse"
    score). Rows scored in blocks of 3 (as in blocks of 256 for long contexts); max over the GQA group."""
    monkeypatch.setattr(rczip, "BLOCK", 3)
    model = tiny_model(family)
    ids = torch.randint(3, 128, (1, CONTEXT + REPEAT), generator=torch.Generator().manual_seed(2))
    inputs: dict[int, dict] = {}

    def hook(module, args, kwargs, output) -> None:
        inputs[module.layer_idx] = kwargs

    modules = [block.self_attn for block in model.model.layers]
    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in modules]
    rows = list(range(CONTEXT, CONTEXT + REPEAT))
    full: dict[int, torch.Tensor] = {}
    with LogitCapture(model, rows, on_layer=full.__setitem__), torch.no_grad():
        cache = DynamicCache(config=model.config)
        model(ids, past_key_values=cache)
    for handle in handles:
        handle.remove()
    press = RCZipPress(compression_ratio=0.5, floor=floor, prefix=prefix, budget=budget)
    press.context_length, press.prefix_length, press.start_idx, press.end_idx = CONTEXT, 2, 2, 9
    layers, kv_heads = model.config.num_hidden_layers, model.config.num_key_value_heads
    press.score_val = torch.zeros(layers, 1, kv_heads, CONTEXT)
    heads = model.config.num_attention_heads
    lo = 0 if prefix == "score" else 2  # the first pass scores the template's prefix too
    for layer, module in enumerate(modules):
        kwargs = inputs[layer]
        keys, values = cache.layers[layer].keys, cache.layers[layer].values
        hidden = kwargs["hidden_states"][:, CONTEXT:]
        rope = tuple(t[:, CONTEXT:] for t in kwargs["position_embeddings"])
        with torch.no_grad():
            kept_keys, _ = press.score_kvzip(
                module, hidden, keys, values, None, {"position_embeddings": rope}
            )
        assert kept_keys.shape[-2] == CONTEXT
        lg = full[layer][0]  # (heads, REPEAT, CONTEXT + REPEAT)
        for g in range(kv_heads):
            group = range(g * heads // kv_heads, (g + 1) * heads // kv_heads)
            for i, want in _rc(lg, range(lo, 9), group, CONTEXT, floor).items():
                assert float(press.score_val[layer, 0, g, i]) == pytest.approx(want, abs=1e-4)
            if budget == "attention":
                for i, want in _rc(lg, range(lo, 9), group, CONTEXT, "lse").items():
                    assert float(press._attention[layer][0, g, i]) == pytest.approx(want, abs=1e-4)
        assert not press.score_val[layer, ..., :lo].any() and not press.score_val[layer, ..., 9:].any()


@pytest.mark.parametrize("checkpoint", ["tiny_checkpoint", "tiny_gemma3"])
def test_one_pass_repeats_the_context_at_once_and_scores_it_as_one_forward(
    checkpoint: str, request: pytest.FixtureRequest
) -> None:
    """``one_pass``: one repeat pass whatever ``chunk_size``; its scores equal RC over a single forward of
    the context followed by the repeat (every key, the template's prefix too, with ``prefix="score"``).
    On Gemma 3 (which kvpress's KVzip refuses) the global layer is scored with its own rotary and the
    sliding layers are left whole: their cache is the prefill's window, and nothing in them is masked."""
    from rcstat.models import load_model

    model, _ = load_model(request.getfixturevalue(checkpoint))
    context = torch.randint(5, 1000, (1, 40), generator=torch.Generator().manual_seed(3))
    passes: list[torch.Tensor] = []
    model.model.register_forward_pre_hook(lambda m, a, kw: passes.append(kw["input_ids"]), with_kwargs=True)
    scores: list[torch.Tensor] = []
    press = RCZipPress(compression_ratio=0.5, chunk_size=8, one_pass=True, prefix="score")
    post = press.compress_post
    press.compress_post = lambda m: (scores.append(press.score_val.clone()), post(m))
    cache, plain = DynamicCache(config=model.config), DynamicCache(config=model.config)
    with torch.no_grad():
        model.model(input_ids=context, past_key_values=plain)
        passes.clear()
        with press(model):
            model.model(input_ids=context, past_key_values=cache)
    masks = [block.self_attn.masked_key_indices for block in model.model.layers]
    assert len(passes) == 2 and torch.equal(passes[0], context)  # the prefill, then one repeat
    repeat = passes[1]
    assert torch.equal(repeat[0, -16:], context[0, -16:])  # the context again, past its template prefix
    full: dict[int, torch.Tensor] = {}
    rows = range(40, 40 + repeat.shape[1])
    with LogitCapture(model, list(rows), on_layer=full.__setitem__), torch.no_grad():
        model(torch.cat([context, repeat], dim=1))
    heads, kv_heads = model.config.num_attention_heads, model.config.num_key_value_heads
    for layer, block in enumerate(model.model.layers):
        if getattr(block.self_attn, "is_sliding", False):
            assert torch.equal(cache.layers[layer].keys, plain.layers[layer].keys)
            assert masks[layer] is None
            continue
        assert cache.layers[layer].keys.shape[-2] == 40 and masks[layer] is not None
        for g in range(kv_heads):
            group = range(g * heads // kv_heads, (g + 1) * heads // kv_heads)
            want = _rc(full[layer][0], range(40), group, 40, "repeat")
            got = scores[0][layer, 0, g].tolist()
            assert got == pytest.approx([want[i] for i in range(40)], abs=1e-3)
    assert cache.get_seq_length() == 40


@pytest.mark.parametrize(("prefix", "ratio"), [("zero", 0.3), ("zero", 0.6), ("keep", 0.5), ("evict", 0.3)])
def test_the_window_is_kept_and_the_unscored_prefix_has_its_place(prefix: str, ratio: float) -> None:
    """The evicted entries are the lowest of one ranking across layers in which the sinks and the last
    ``window`` entries rank first, and the template's unscored prefix (beyond the sinks) at kvpress's 0
    ("zero": above every negative RC score), first ("keep") or last ("evict")."""
    model = tiny_model("llama-gqa")
    layers, kv_heads, n, prefix_length, window = 3, 2, 30, 8, 5
    scores = -1.5 + 2 * torch.rand(layers, 1, kv_heads, n, generator=torch.Generator().manual_seed(4))
    scores[..., :prefix_length] = 0.0  # KVzip never scores the template's prefix
    press = RCZipPress(compression_ratio=ratio, window=window, prefix=prefix)
    press.score_val, press.prefix_length = scores.clone(), prefix_length
    press.compress_post(model)
    evicted = torch.zeros(layers, kv_heads, n, dtype=torch.bool)
    for layer, block in enumerate(model.model.layers):
        _, heads, seq = block.self_attn.masked_key_indices
        evicted[layer, heads, seq] = True
    rank = scores[:, 0].clone()
    rank[..., press.n_sink : prefix_length] = {"zero": 0.0, "keep": 10.0, "evict": -10.0}[prefix]
    rank[..., : press.n_sink], rank[..., -window:] = 20.0, 20.0
    want = torch.zeros(rank.numel(), dtype=torch.bool)
    want[torch.topk(-rank.flatten(), int(rank.numel() * ratio)).indices] = True
    assert torch.equal(evicted.flatten(), want)
    assert not evicted[..., : press.n_sink].any() and not evicted[..., -window:].any()


def test_the_attention_budget_sets_each_layers_count_and_rc_chooses_within_it() -> None:
    """budget="attention": each layer evicts as many entries as the lowest of one ranking of the log
    attention across layers holds there (sinks and window first), and which ones by RC's scores."""
    model = tiny_model("llama-gqa")
    layers, kv_heads, n, window, ratio = 3, 2, 30, 5, 0.6
    g = torch.Generator().manual_seed(5)
    scores = torch.randn(layers, 1, kv_heads, n, generator=g)
    attention = (
        -3 * torch.rand(layers, 1, kv_heads, n, generator=g) - torch.arange(layers)[:, None, None, None]
    )
    press = RCZipPress(compression_ratio=ratio, window=window, prefix="zero", budget="attention")
    press.score_val, press.prefix_length = scores.clone(), 0
    press._attention = {i: attention[i].clone() for i in range(layers)}
    press.compress_post(model)
    rank = attention[:, 0].clone()
    rank[..., : press.n_sink], rank[..., -window:] = 20.0, 20.0
    lowest = torch.topk(-rank.flatten(), int(rank.numel() * ratio)).indices
    counts = torch.bincount(lowest // (kv_heads * n), minlength=layers).tolist()
    assert counts[0] < counts[-1]  # the last layer's attention is lowest: it gives up the most
    for layer, block in enumerate(model.model.layers):
        _, heads, seq = block.self_attn.masked_key_indices
        assert len(seq) == counts[layer]
        within = scores[layer, 0].clone()
        within[..., : press.n_sink], within[..., -window:] = 20.0, 20.0
        want = torch.zeros(kv_heads * n, dtype=torch.bool)
        want[torch.topk(-within.flatten(), counts[layer]).indices] = True
        got = torch.zeros(kv_heads, n, dtype=torch.bool)
        got[heads, seq] = True
        assert torch.equal(got.flatten(), want)
