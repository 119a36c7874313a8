"""RC over a reconstruction window (RCZipPress): its scores against a brute-force reference."""

from __future__ import annotations

import pytest
import torch

from rcstat.models.logits import LogitCapture
from rcstat.presses import RCZipPress
from tests.helpers import tiny_model

CONTEXT, REPEAT = 12, 7


@pytest.mark.parametrize("family", ["llama-gqa", "qwen3-gqa", "phi3-mha"])
def test_a_key_scores_its_best_repeat_row_above_that_rows_own_mean(family: str) -> None:
    """score(i) = max over repeat rows j of f(i, j) − mean_{j' ≤ j} f(j', j), max over the GQA group."""
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
        from transformers import DynamicCache

        cache = DynamicCache(config=model.config)
        model(ids, past_key_values=cache)
    for handle in handles:
        handle.remove()
    press = RCZipPress(compression_ratio=0.5)
    press.context_length, press.start_idx, press.end_idx = CONTEXT, 2, 9  # the chunk: keys 2..8
    layers, kv_heads = model.config.num_hidden_layers, model.config.num_key_value_heads
    press.score_val = torch.zeros(layers, 1, kv_heads, CONTEXT)
    heads = model.config.num_attention_heads
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
            for i in range(2, 9):
                best = []
                for h in range(g * heads // kv_heads, (g + 1) * heads // kv_heads):
                    best += [
                        float(lg[h, j, i]) - float(lg[h, j, CONTEXT : CONTEXT + j + 1].mean())
                        for j in range(REPEAT)
                    ]
                assert float(press.score_val[layer, 0, g, i]) == pytest.approx(max(best), abs=1e-4)
        assert not press.score_val[layer, ..., :2].any() and not press.score_val[layer, ..., 9:].any()
