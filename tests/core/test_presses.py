"""RC as a kvpress scorer (docs/method.md §3): scores against a slow reference, every kvpress wrapper
over it on every family, thresholds for any scorer, the composed press and the registry."""

from __future__ import annotations

import pytest
import torch
from kvpress import (
    AdaKVPress,
    BlockPress,
    ChunkKVPress,
    CriticalAdaKVPress,
    CriticalKVPress,
    DecodingPress,
    DMSPress,
    KeyRerotationPress,
    PrefillDecodingPress,
    SnapKVPress,
)
from kvpress.utils import compute_n_kept
from transformers import DynamicCache

from rcstat import RCStatPress, ThresholdPress, rc_press
from rcstat.errors import RCStatError
from rcstat.models.logits import LogitCapture
from rcstat.presses import PRESSES, make_press
from tests.core.test_stats import REFERENCES
from tests.helpers import FAMILIES, greedy, tiny_model

N, WINDOW, SINKS = 20, 4, 2


class RecordingPress(RCStatPress):
    """Keeps the scores of every layer, for the tests."""

    def score(self, module, *args, **kwargs) -> torch.Tensor:
        scores = super().score(module, *args, **kwargs)
        self.recorded = getattr(self, "recorded", {})
        self.recorded[module.layer_idx] = scores.clone()
        return scores


def prefill(model: torch.nn.Module, ids: torch.Tensor, press) -> DynamicCache:
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        if press is None:
            model(ids, past_key_values=cache)
        else:
            with press(model):
                model(ids, past_key_values=cache)
    return cache


def inputs(batch: int = 2, seed: int = 0, n: int = N) -> torch.Tensor:
    return torch.randint(3, 128, (batch, n), generator=torch.Generator().manual_seed(seed))


def masked(model: torch.nn.Module, cache: DynamicCache) -> list[torch.Tensor]:
    """Per layer, the ``(batch, kv_heads, n)`` entries kvpress's attention will not see."""
    out = []
    for layer, attn in zip(cache.layers, (block.self_attn for block in model.model.layers), strict=True):
        evicted = torch.zeros(layer.keys.shape[:3], dtype=torch.bool)
        if getattr(attn, "masked_key_indices", None) is not None:
            evicted[tuple(attn.masked_key_indices)] = True
        out.append(evicted)
    return out


@pytest.mark.parametrize("family", ["llama-gqa", "qwen3", "phi3"])
@pytest.mark.parametrize(
    ("estimator", "reduce"), [("independent", "max"), ("upper", "mean"), ("lower", "max")]
)
def test_scores_equal_a_slow_reference(family: str, estimator: str, reduce: str) -> None:
    model = tiny_model(family)
    ids = inputs()
    press = RecordingPress(
        compression_ratio=0.5, estimator=estimator, window_size=WINDOW, sink_tokens=SINKS, gqa_reduce=reduce
    )
    prefill(model, ids, press)
    window = list(range(N - WINDOW, N))
    full: dict[int, torch.Tensor] = {}
    with LogitCapture(model, window, on_layer=full.__setitem__), torch.no_grad():
        model(ids)
    heads, kv_heads = model.config.num_attention_heads, model.config.num_key_value_heads
    for layer, lg in full.items():
        for b in range(2):
            for g in range(kv_heads):
                for i in range(SINKS, N - WINDOW):
                    per_head = []
                    for h in range(g * heads // kv_heads, (g + 1) * heads // kv_heads):
                        x = lg[b, h, :, i].tolist()
                        y = [float(lg[b, h, r, window[c]]) for r in range(WINDOW) for c in range(r + 1)]
                        per_head.append(REFERENCES[estimator](x, y))
                    want = max(per_head) if reduce == "max" else sum(per_head) / len(per_head)
                    got = float(press.recorded[layer][b, g, i])
                    assert got == pytest.approx(want, abs=1e-4), (layer, b, g, i)
        assert torch.isinf(press.recorded[layer][..., :SINKS]).all()
        assert torch.isinf(press.recorded[layer][..., N - WINDOW :]).all()


def test_uniform_ratio_really_shrinks_the_cache_and_keeps_window_and_sinks() -> None:
    model = tiny_model("llama-gqa")
    ids = inputs()
    full = prefill(model, ids, None)
    cache = prefill(model, ids, RCStatPress(compression_ratio=0.5, window_size=WINDOW, sink_tokens=SINKS))
    n_kept = compute_n_kept(N, 0.5)
    for layer in range(model.config.num_hidden_layers):
        keys, original = cache.layers[layer].keys, full.layers[layer].keys
        assert keys.shape[-2] == n_kept
        torch.testing.assert_close(keys[..., :SINKS, :], original[..., :SINKS, :])
        torch.testing.assert_close(keys[..., -WINDOW:, :], original[..., -WINDOW:, :])


@pytest.mark.parametrize("floor", [0.0, 0.5])
def test_adakv_over_rc_masks_across_heads_with_a_floor(floor: float) -> None:
    model = tiny_model("llama-gqa")
    press = RecordingPress(compression_ratio=0.5, window_size=WINDOW, sink_tokens=SINKS)
    cache = prefill(model, inputs(), AdaKVPress(press, alpha_safeguard=floor))
    n_kept = compute_n_kept(N, 0.5)
    kv_heads = model.config.num_key_value_heads
    for layer, evicted in enumerate(masked(model, cache)):
        assert int(evicted.sum()) == 2 * kv_heads * (N - n_kept)
        assert (
            not evicted[..., :SINKS].any() and not evicted[..., N - WINDOW :].any()
        )  # never a sink or the window
        scores = press.recorded[layer]
        for b in range(2):
            if floor == 0:  # a plain ranking across the heads of the layer
                assert scores[b][evicted[b]].max() <= scores[b][~evicted[b]].min()
            for h in range(kv_heads):
                assert N - int(evicted[b, h].sum()) >= int(n_kept * floor)


def previous_head_adaptive(scores: torch.Tensor, n_kept: int, floor: float) -> torch.Tensor:
    """The eviction RCStatPress made itself before it became a scorer (kept as the reference)."""
    b, h_kv, n = scores.shape
    ranked = scores.clone()
    n_safe = int(n_kept * floor)
    if n_safe > 0:
        ranked.scatter_(-1, ranked.topk(n_safe, dim=-1).indices, float("inf"))
    evict = torch.zeros(b, h_kv * n, dtype=torch.bool)
    evict.scatter_(1, (-ranked.reshape(b, -1)).topk(h_kv * (n - n_kept), dim=-1).indices, True)
    return evict.reshape(b, h_kv, n)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("ratio", [0.5, 0.75])
def test_rc_press_keeps_the_same_keys_as_the_previous_head_adaptive_press(family: str, ratio: float) -> None:
    """``rc_press`` = AdaKV(RCStatPress): the keep-sets of the press it replaced (n = 40: the floor
    keeps int(n_kept · 0.2) ≥ 1 per head, where AdaKV's max(1, ·) and the old int(·) agree).

    Gemma 3's sliding-window layers hold 4 entries, all in the window: both presses then evict
    protected entries, breaking ties differently (AdaKV's floor scores finfo.max, below the
    window's +inf); only layers with entries to rank are compared."""
    model = tiny_model(family)
    press = rc_press(ratio, layer_adaptive=False, window_size=WINDOW)
    recorder = RecordingPress(compression_ratio=ratio, window_size=WINDOW)
    press.press = recorder
    cache = prefill(model, inputs(n=40), press)
    compared = 0
    for layer, evicted in enumerate(masked(model, cache)):
        scores = recorder.recorded[layer]
        if bool(torch.isinf(scores).all()):
            continue
        want = previous_head_adaptive(scores, compute_n_kept(scores.shape[-1], ratio), 0.2)
        assert torch.equal(evicted, want), layer
        compared += 1
    assert compared >= 1


@pytest.mark.parametrize("family", FAMILIES)
def test_every_kvpress_wrapper_composes_with_rc_and_meets_its_budget(family: str) -> None:
    """Each wrapper over RC at ratio 0.5 keeps what it promises, layer by layer (Gemma 3's
    sliding-window layers hold only their last entries, so their budgets are smaller)."""
    model = tiny_model(family)
    ids = inputs(batch=1, n=32)
    lengths = [layer.keys.shape[-2] for layer in prefill(model, ids, None).layers]
    kept = [compute_n_kept(n, 0.5) for n in lengths]
    chunks = [min(n, 4 * max(1, int(-(-n // 4) * 0.5))) for n in lengths]  # whole chunks of 4
    kv_heads = model.config.num_key_value_heads

    def scorer() -> RCStatPress:
        return RCStatPress(compression_ratio=0.5, window_size=WINDOW)

    def cached(press) -> list[int]:
        return [layer.keys.shape[-2] for layer in prefill(model, ids, press).layers]

    if not hasattr(model.config, "head_dim"):  # CriticalKV reads config.head_dim, as real configs have it
        model.config.head_dim = model.config.hidden_size // model.config.num_attention_heads
    assert cached(CriticalKVPress(scorer())) == kept
    assert cached(BlockPress(scorer(), block_size=8)) == kept
    assert cached(ChunkKVPress(scorer(), chunk_length=4)) == chunks
    if family.startswith(("llama", "mistral", "qwen")):  # KeyRerotation rotates the whole head dim
        assert cached(KeyRerotationPress(scorer())) == kept
    for press in (AdaKVPress(scorer()), CriticalAdaKVPress(scorer())):
        cache = prefill(model, ids, press)
        want = [kv_heads * (n - k) for n, k in zip(lengths, kept, strict=True)]
        assert [int(e.sum()) for e in masked(model, cache)] == want, type(press).__name__
    dms = DMSPress(RCStatPress(window_size=WINDOW), threshold=0.5, sliding_window_size=4)
    cache = prefill(model, ids, dms)
    assert 0 <= dms.compression_ratio <= 1 and all(not e[..., -4:].any() for e in masked(model, cache))


def test_decoding_press_over_rc_holds_the_cache_to_its_target_while_generating() -> None:
    model = tiny_model("llama-gqa")
    ids = inputs(batch=1)
    press = DecodingPress(RCStatPress(window_size=WINDOW), compression_interval=4, target_size=16)
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model(ids, past_key_values=cache)  # DecodingPress leaves the prefill alone
        with press(model):
            greedy(model, cache, ids[:, -1:], N, steps=12)
    assert cache.layers[0].keys.shape[-2] <= 16 + 4
    assert all(layer.keys.shape[-2] == cache.layers[0].keys.shape[-2] for layer in cache.layers)
    both = PrefillDecodingPress(AdaKVPress(RCStatPress(0.5, window_size=WINDOW)), press)
    cache = DynamicCache(config=model.config)
    with torch.no_grad(), both(model):
        model(ids, past_key_values=cache)
        greedy(model, cache, ids[:, -1:], N, steps=8)
    assert cache.layers[0].keys.shape[-2] <= 16 + 4


def test_threshold_minus_infinity_changes_nothing() -> None:
    model = tiny_model("qwen2")
    ids = inputs(seed=3)
    want_tokens, want_logits = greedy(model, prefill(model, ids[:, :-1], None), ids[:, -1:], N - 1, 6)
    press = ThresholdPress(RCStatPress(window_size=WINDOW), float("-inf"))
    got_tokens, got_logits = greedy(model, prefill(model, ids[:, :-1], press), ids[:, -1:], N - 1, 6)
    assert got_tokens == want_tokens
    torch.testing.assert_close(got_logits, want_logits)
    assert press.compression_ratio == 0.0


@pytest.mark.parametrize("scorer", ["rcstat", "snapkv"])
def test_threshold_evicts_exactly_the_low_scores(scorer: str) -> None:
    model = tiny_model("mistral")
    recorded: dict[int, torch.Tensor] = {}

    class Recording(RecordingPress if scorer == "rcstat" else SnapKVPress):
        def score(self, module, *args, **kwargs) -> torch.Tensor:
            scores = super().score(module, *args, **kwargs)
            recorded[module.layer_idx] = scores.clone()
            return scores

    inner = (
        Recording(window_size=WINDOW, sink_tokens=SINKS)
        if scorer == "rcstat"
        else Recording(window_size=WINDOW)
    )
    tau = 0.5 if scorer == "rcstat" else 0.05
    press = ThresholdPress(inner, tau)
    cache = prefill(model, inputs(), press)
    for layer, got in enumerate(masked(model, cache)):
        evict = recorded[layer] <= tau
        assert torch.equal(got, evict)
        assert press.evicted[layer] == pytest.approx(float(evict.float().mean()))


@pytest.mark.parametrize(
    "make",
    [
        lambda: RCStatPress(compression_ratio=1.0),
        lambda: RCStatPress(estimator="median"),
        lambda: RCStatPress(window_size=0),
        lambda: RCStatPress(pooling=2),
        lambda: RCStatPress(gqa_reduce="min"),
        lambda: rc_press(0.5, layer_adaptive=False, head_floor=1.5),
        lambda: rc_press(0.5, threshold=1.0),
        lambda: ThresholdPress(RCStatPress(), float("nan")),
        lambda: ThresholdPress(RCStatPress(), float("inf")),
        lambda: ThresholdPress(AdaKVPress(RCStatPress()), 0.0),
    ],
)
def test_bad_options_are_clear_errors(make) -> None:
    with pytest.raises(RCStatError):
        make()


def test_repr_is_the_experiment_record() -> None:
    text = repr(RCStatPress(compression_ratio=0.5, window_size=8))
    assert text.startswith("RCStatPress(compression_ratio=0.5, estimator='independent', window_size=8")
    assert "_layers" not in text
    assert repr(rc_press(0.5)) == "AutoRCPress(compression_ratio=0.5, min_kv_heads=16, scorer_options={})"
    assert repr(rc_press(0.5, layer_adaptive=True)).startswith(
        "CrossLayerPress(press=RCStatPress(compression_ratio=0.0"
    )
    assert repr(rc_press(0.5, layer_adaptive=False)).startswith(
        "AdaKVPress(press=RCStatPress(compression_ratio=0.5"
    )
    assert repr(rc_press(threshold=1.0)) == f"ThresholdPress(press={RCStatPress()!r}, threshold=1.0)"


def test_the_registry_builds_every_press_and_thresholds_every_scorer() -> None:
    for name, spec in PRESSES.items():
        press = make_press(name, 0.25)
        assert press is not None and press.compression_ratio == 0.25, name
        if spec.scorer is not None:
            assert isinstance(make_press(name, threshold=0.1), ThresholdPress), name
        else:
            with pytest.raises(RCStatError, match="has no score to threshold"):
                make_press(name, threshold=0.1)
    assert make_press("none") is None
    with pytest.raises(RCStatError, match="unknown press h2o"):
        make_press("h2o")


def test_gaussian_rc_is_the_expected_rc_of_gaussian_queries() -> None:
    """The closed form against a Monte Carlo draw of future queries q ~ N(μ, Σ) and Y ~ N(mean, var)."""
    from kvpress import ExpectedAttentionPress

    from rcstat.presses.gaussian_press import GaussianRCPress

    model = tiny_model("llama-gqa")
    ids = inputs(batch=1, n=30, seed=9)
    seen: dict = {}
    module = model.model.layers[1].self_attn
    module.rotary_emb = model.model.rotary_emb  # as kvpress attaches it inside `with press(model)`
    handle = module.register_forward_hook(lambda m, a, k, o: seen.update(k), with_kwargs=True)
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model(ids, past_key_values=cache)
    handle.remove()
    keys = cache.layers[1].keys
    press = GaussianRCPress(window_size=WINDOW, sink_tokens=SINKS)
    y = torch.randn(1, 4, 10) * 0.5 + 1.0  # a window's self samples, per head
    x = torch.zeros(1, 4, WINDOW, 30 - WINDOW)  # only its shape is read
    with torch.no_grad():
        got = press.key_rc(module, seen["hidden_states"], keys, x, y)  # (1, 4, 26)
        mu, cov = ExpectedAttentionPress(n_future_positions=512, n_sink=SINKS).get_query_statistics(
            module, seen["hidden_states"]
        )
    g = torch.Generator().manual_seed(0)
    for head in (0, 3):
        q = torch.distributions.MultivariateNormal(
            mu[0, head].double(), cov[0, head].double() + 1e-9 * torch.eye(16)
        )
        draws = q.sample((200_000,))  # future queries
        k = keys[0, head // 2, : 30 - WINDOW].double()
        logits = draws @ k.T * module.scaling  # (draws, keys)
        yy = (
            y[0, head].mean().double()
            + y[0, head].std().double() * torch.randn(200_000, 1, generator=g).double()
        )
        want = (logits - yy).clamp_min(0).mean(0)
        torch.testing.assert_close(got[0, head].double(), want, atol=0.02, rtol=0.02)
