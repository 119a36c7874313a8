"""Development run for issue 26: which RC recipe holds on every model (seed 1000, never seed 0).

Candidates, each ranked across every layer and head (``CrossLayerPress``), beside the full cache,
the oracle and the presses that lead somewhere (KeyDiff, Compactor; SnapKV as the cost reference):

- ``rc``: the current default (the window's RC);
- ``rc-gauss``: RC against Gaussian future queries fitted on the whole prefill;
- ``rc-or-gauss``: the larger of the two, both in logit units above the same window floor;
- ``rc-span`` / ``rc-or-gauss-span``: the same, each score max-pooled over its ±2 neighbours;
- ``rc-span8``: RC max-pooled over ±8 neighbours (a whole number or name around a peak);
- ``rc|keydiff``: RC and KeyDiff's key diversity competing for one budget by their ranks across layers;
- ``rc>null|keydiff``: RC decides where it has a signal (above its head's null level), KeyDiff's key
  diversity orders the rest (``CrossLayerPress(RCStatPress(above_null=True), also=KeyDiffPress())``);
- ``rc>null|keydiff-cap``: the same with RC's signal capped at half the kept budget;
- ``head:rc>null|keydiff`` / ``head:rc>null|keydiff-cap``: the same two orders within each head, every
  head keeping the same share (no budget moves between layers: round 6; the second is ``FillPress``);
- ``fill-cap0.25`` / ``fill-room16`` / ``fill-room64``: ``FillPress`` with RC's signal capped at a quarter
  of each head's kept budget, or at 16 (the window's size) or 64 entries per head (round 7);
- ``fill|leverage``: ``FillPress`` with Compactor's leverage scores for the rest instead of KeyDiff's
  (round 8, beside ``leverage`` alone);
- ``fill|kd+lev``: ``FillPress`` with the rest by the mean of KeyDiff's and leverage's per-head
  percentiles (two query-independent measures by rank);
- ``fill-selective`` / ``fill-selective|kd+lev``: RC's room shrinks with its signal's breadth, ``cap ×
  budget × min(1, budget / S)`` for ``S`` entries above the null (a diagnostic on dev samples found RC
  above its null on 20–40% of a query-agnostic head's keys, 2–9% with the question: round 9);
- ``zip`` / ``zip-layerwise`` (round 11, issue 27): ``RCZipPress`` as ``rcstat-zip`` is (ranked across
  the global layers, KVzip's rule), and with KVzip's ``layerwise=True`` (the same share per layer: on
  Gemma 3's one KV head per layer, the structure rule of ``AutoRCPress``), both run live; ``zip-lse``
  (round 15): ``floor="lse"``, each row's log-sum-exp as its floor (KVzip's ranking in RC's form: issue
  27's Gemma diagnostic found RC's mean floor losing the answer in global layer 11); ``zip-lse-layerwise``
  (round 16): that floor with the same share per layer (round 15's ranking across the global layers
  starved them from 0.75; the diagnostic's 25% layerwise attention kept the answer); ``kvzip``: kvpress's
  own, beside them (round 18, SmolLM2: the log-sum-exp floor makes RC's order KVzip's, up to the
  window and prefix RC keeps);
  ``zip-att`` (round 19): ``budget="attention"``, each layer's count from KVzip's attention ranking on the
  same passes, RC choosing within each layer (at 0.9 RC's own ranking starved layers KVzip keeps);
- ``rank-leverage`` / ``rank-keydiff`` (round 17, issue 26): the default recipe on the window's RC merged
  with leverage's (or KeyDiff's) ranking put on RC's scale within each head, the larger of the two per
  key (``rcstat-probe``'s merge with a query-independent ranking in the probe's place: no extra pass);
- ``probe`` (round 12): ``rcstat-probe``, the default recipe with a probe pass (``ProbePress``): round
  10's question read after the prefill, its entries never cached, each key scored by the larger of
  its RC against the window and against the probe's rows; ``probe-union`` / ``probe-only`` (round 13):
  RC against the window's and the probe's rows as one window, or against the probe's alone (round
  10's design, without its tokens in the cache); ``probe-rank`` (round 14): the larger of the window's
  RC and the probe's ranking put on the window's scale within each head (the probe's best keys compete
  with the window's best, in the window's units);
- ``--probe TEXT`` (round 10, query-agnostic only): a fixed, task-blind question appended to every
  context before it is compressed, so that RC's window reads a question where the user's is not yet
  known (the lead of a short probe pass; here its tokens stay in the cache, for every press alike).

    benchmarks/kv/dev/candidates.sh     # both models, both settings (seed 1000)
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from devrun import in_turn, live_kvzip, live_rczip, logged, only, report, run

from rcstat.evaluation.kv.bench import Config
from rcstat.evaluation.kv.oracle import ORACLE, OraclePress
from rcstat.evaluation.kv.tasks import builtin_samples
from rcstat.models import load_model
from rcstat.presses.registry import FULL_CACHE, PRESSES

TASKS = ("needle", "multikey", "multivalue", "vartrack", "cwe")


def capped_fill():
    """``rc>null|keydiff`` with RC's signal capped at half the kept budget (round 5's lead): the
    signal entries beyond the best half-budget rank by KeyDiff's percentile like the rest."""
    import torch

    from rcstat.presses import cross_layer_press as clp

    class CappedFill(clp.CrossLayerPress):
        def _decide(self) -> None:
            layers = sorted(self._waiting)
            first = clp._flat([self._waiting[i][1] for i in layers])
            half = max(1, int(first.shape[1] * (1 - self.compression_ratio)) // 2)
            finite = first.masked_fill(torch.isposinf(first), float("-inf"))
            cut = finite.topk(min(half, first.shape[1]), dim=1).values[:, -1:]
            signal = torch.isposinf(first) | ((first > 0) & (finite >= cut))
            capped = torch.where(signal, first.clamp_min(1e-6), first.clamp_max(0.0))
            sizes = [self._waiting[i][1][0].numel() for i in layers]
            for i, part in zip(layers, capped.split(sizes, 1), strict=True):
                module, scores, other = self._waiting[i]
                self._waiting[i] = (module, part.reshape(scores.shape), other)
            super()._decide()

    return CappedFill


def rank_merged(other: str):
    """The default recipe (``AutoRCPress``) on RC merged with a query-independent scorer's ranking as
    the probe's is merged (round 17): within each head the key ranked r-th by ``other`` (``leverage``
    or ``keydiff``) gets the window's r-th RC, each key the larger of that and its own RC — no pass."""
    from dataclasses import dataclass

    import torch
    from kvpress import KeyDiffPress, LeverageScorePress

    from rcstat.presses import AutoRCPress, RCStatPress
    from rcstat.presses.probe_press import on_scale

    @dataclass
    class RankMergedRC(RCStatPress):
        def score(self, module, hidden_states, keys, values, attentions, kwargs):
            window = super().score(module, hidden_states, keys, values, attentions, kwargs)
            scorer = LeverageScorePress() if other == "leverage" else KeyDiffPress()
            torch.manual_seed(0)  # leverage's Gaussian sketch, the same for every ratio
            ranked = scorer.score(module, hidden_states, keys, values, attentions, kwargs).float()
            return torch.maximum(window, on_scale(ranked, window))

    @dataclass
    class RankMerged(AutoRCPress):
        scorer = RankMergedRC

        def __repr__(self) -> str:
            return f"RankMerged(compression_ratio={self.compression_ratio}, other={other!r})"

    return RankMerged


def head_fill(cap: float = 1.0):
    """The fill order within each head (RC above its null first, then KeyDiff's percentile), every head
    keeping ``1 − ratio`` of its entries; ``cap``: the share of that budget RC's signal may take."""
    import torch
    from kvpress import KeyDiffPress, ScorerPress
    from kvpress.utils import compute_n_kept

    from rcstat.presses.cross_layer_press import head_percentiles
    from rcstat.presses.rcstat_press import RCStatPress

    class HeadFill(ScorerPress):
        def __init__(self, compression_ratio: float) -> None:
            self.compression_ratio = compression_ratio
            self.first, self.second = RCStatPress(above_null=True), KeyDiffPress()

        def __repr__(self) -> str:
            return f"HeadFill(compression_ratio={self.compression_ratio}, cap={cap}, first={self.first!r})"

        def post_init_from_model(self, model) -> None:
            self.first.post_init_from_model(model)
            self.second.post_init_from_model(model)

        def score(self, module, hidden_states, keys, values, attentions, kwargs):
            first = self.first.score(module, hidden_states, keys, values, attentions, kwargs).float()
            second = self.second.score(module, hidden_states, keys, values, attentions, kwargs).float()
            rest = head_percentiles(second.masked_fill(torch.isposinf(first), float("inf")))
            signal = first > 0
            if cap < 1:
                k = max(1, int(compute_n_kept(keys.shape[2], self.compression_ratio) * cap))
                finite = first.masked_fill(torch.isposinf(first), float("-inf"))
                cut = finite.topk(min(k, finite.shape[-1]), dim=-1).values[..., -1:]
                signal = torch.isposinf(first) | (signal & (finite >= cut))
            return torch.where(signal, 1 + first, rest)

    return HeadFill


def fill_room(share: float | None = None, tokens: int | None = None):
    """``FillPress`` with RC's signal capped at ``share`` of each head's kept budget, or at ``tokens``
    entries per head (round 7)."""
    from rcstat.presses.fill_press import FillPress

    class Room(FillPress):
        def room(self, n: int) -> int:
            return min(tokens, n) if tokens is not None else super().room(n)

    return lambda ratio: Room(ratio) if tokens is not None else FillPress(ratio, cap=share)


def _fill_leverage(ratio: float):
    """``FillPress`` with Compactor's leverage scores (``LeverageScorePress``) for the rest (round 8)."""
    from kvpress import LeverageScorePress

    from rcstat.presses.fill_press import FillPress

    return FillPress(ratio, also=LeverageScorePress())


def _rank_mean():
    """A scorer ranking each head's keys by the mean of KeyDiff's and leverage's percentiles (round 9)."""
    from kvpress import KeyDiffPress, LeverageScorePress, ScorerPress

    from rcstat.presses.cross_layer_press import head_percentiles

    class RankMean(ScorerPress):
        def __init__(self) -> None:
            self.compression_ratio = 0.0
            self.parts = (KeyDiffPress(), LeverageScorePress())

        def __repr__(self) -> str:
            return "RankMean(KeyDiffPress, LeverageScorePress)"

        def post_init_from_model(self, model) -> None:
            for part in self.parts:
                part.post_init_from_model(model)

        def score(self, module, hidden_states, keys, values, attentions, kwargs):
            ranks = [
                head_percentiles(p.score(module, hidden_states, keys, values, attentions, kwargs).float())
                for p in self.parts
            ]
            return sum(ranks) / len(ranks)

    return RankMean()


def _selective(ratio: float, also=None):
    """``FillPress`` whose RC room shrinks as its signal broadens: ``cap × budget × min(1, budget / S)``
    per head, ``S`` the head's entries above the null (round 9)."""
    import torch
    from kvpress.utils import compute_n_kept

    from rcstat.presses.fill_press import FillPress

    class Selective(FillPress):
        def score(self, module, hidden_states, keys, values, attentions, kwargs):
            first = self.press.score(module, hidden_states, keys, values, attentions, kwargs).float()
            budget = compute_n_kept(keys.shape[-2], self.compression_ratio)
            signal = int(((first > 0) & ~torch.isposinf(first)).sum(-1).max())
            self._room = int(budget * self.cap * min(1.0, budget / max(signal, 1)))
            return super().score(module, hidden_states, keys, values, attentions, kwargs)

        def room(self, n: int) -> int:
            return self._room

    return Selective(ratio) if also is None else Selective(ratio, also=also)


def candidates() -> dict:
    from kvpress import KeyDiffPress

    from rcstat.presses.cross_layer_press import CrossLayerPress
    from rcstat.presses.fill_press import FillPress
    from rcstat.presses.future_rc_press import FutureRCPress
    from rcstat.presses.gaussian_press import GaussianRCPress
    from rcstat.presses.probe_press import ProbePress
    from rcstat.presses.rcstat_press import RCStatPress
    from rcstat.presses.span_press import SpanPress

    def cross(make):
        return lambda ratio: CrossLayerPress(make(), ratio)

    return {
        FULL_CACHE: None,
        ORACLE: lambda ratio: OraclePress(compression_ratio=ratio),
        "rc": cross(RCStatPress),
        "rc-gauss": cross(GaussianRCPress),
        "rc-or-gauss": cross(FutureRCPress),
        "rc-span": cross(lambda: SpanPress(press=RCStatPress())),
        "rc-or-gauss-span": cross(lambda: SpanPress(press=FutureRCPress())),
        "rc-span8": cross(lambda: SpanPress(press=RCStatPress(), radius=8)),
        "rc|keydiff": lambda ratio: CrossLayerPress(
            RCStatPress(), ratio, also=KeyDiffPress(), combine="union"
        ),
        "rc>null|keydiff": lambda ratio: CrossLayerPress(
            RCStatPress(above_null=True), ratio, also=KeyDiffPress()
        ),
        "rc>null|keydiff-cap": lambda ratio: capped_fill()(
            RCStatPress(above_null=True), ratio, also=KeyDiffPress()
        ),
        "head:rc>null|keydiff": lambda ratio: head_fill()(ratio),
        "head:rc>null|keydiff-cap": lambda ratio: head_fill(0.5)(ratio),
        "fill|leverage": lambda ratio: _fill_leverage(ratio),
        "fill": lambda ratio: FillPress(ratio),
        "fill|kd+lev": lambda ratio: FillPress(ratio, also=_rank_mean()),
        "fill-selective": lambda ratio: _selective(ratio),
        "fill-selective|kd+lev": lambda ratio: _selective(ratio, also=_rank_mean()),
        "probe": lambda ratio: ProbePress(ratio, merge="max"),
        "probe-union": lambda ratio: ProbePress(ratio, merge="union"),
        "probe-only": lambda ratio: ProbePress(ratio, merge="probe"),
        "probe-rank": lambda ratio: ProbePress(ratio, merge="rank"),
        "rank-leverage": lambda ratio: rank_merged("leverage")(ratio),
        "rank-keydiff": lambda ratio: rank_merged("keydiff")(ratio),
        "zip": live_rczip(),
        "zip-layerwise": live_rczip(layerwise=True),
        "zip-lse": live_rczip(floor="lse"),
        "zip-lse-layerwise": live_rczip(floor="lse", layerwise=True),
        "zip-att": live_rczip(budget="attention"),
        "kvzip": live_kvzip(),
        "fill-cap0.25": fill_room(share=0.25),
        "fill-room16": fill_room(tokens=16),
        "fill-room64": fill_room(tokens=64),
        **{name: PRESSES[name].make for name in ("rcstat", "snapkv", "keydiff", "compactor", "leverage")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--per-task", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--query-aware", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated candidate names (default: all)")
    parser.add_argument("--interleave", action="store_true", help="families in turn, not one after another")
    parser.add_argument("--limit", type=int, default=None, help="the first N samples only")
    parser.add_argument(
        "--summarise-only",
        action="store_true",
        help="write the report from the records already in the log (a stopped round); run nothing",
    )
    parser.add_argument("--probe", default=None, help="a fixed question appended to every context (round 10)")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    model, tokenizer = load_model(args.model)
    by_task = builtin_samples(tokenizer, TASKS, args.per_task, [1024], seed=args.seed)
    samples = (in_turn(by_task, args.per_task) if args.interleave else by_task)[: args.limit]
    if args.probe:
        samples = [replace(s, context=s.context + "\n" + args.probe) for s in samples]
    config = Config.create(only(candidates(), args.only), [0.25, 0.5, 0.75, 0.9], args.query_aware, 64)
    out = Path(args.output)
    records = logged(out, samples) if args.summarise_only else run(model, tokenizer, samples, config, out)
    meta = {
        "model": args.model or "smollm2-135m-instruct",
        "data": f"{','.join(TASKS)} (per task {args.per_task}, length 1024, seed {args.seed}"
        + (", families in turn" if args.interleave else "")
        + (f", first {args.limit}" if args.limit else "")
        + (f", probe {args.probe!r} appended" if args.probe else "")
        + ")",
        "query_aware": args.query_aware,
        "command": "python benchmarks/kv/dev/candidates.py " + shlex.join(sys.argv[1:]),
    }
    report(out, meta, config, records)


if __name__ == "__main__":
    main()
