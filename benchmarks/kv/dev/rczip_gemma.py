"""Development diagnostic for issue 27: are RCZipPress's own passes wrong on Gemma 3, or is RC scoring?

Dev samples (seed 1000, never seed 0), needle and multikey at 1k tokens, laid out as the bench does.
``probe``: a live ``Probe`` (RCZipPress) per sample measures on its own repeat pass (1) the repeat's
teacher-forced accuracy, its agreement with one clean forward of the same tokens, the attention output
recomputed from the scorer's queries against the module's own (rotary, positions); (2) per global layer,
the share of keys whose best row (RC; KVzip's attention on the same rows) predicts them (−1) or is
within ±2; (3) the evidence's and answer's percentiles under each score. ``bench``: RCZipPress (``zip``,
``zip-layerwise``) beside ``AttnZipPress`` (the same passes and eviction, keys scored by KVzip's
attention), KeyDiff and the full cache through ``run_kv_bench``. ``summary``: probe.json's tables.
    python benchmarks/kv/dev/rczip_gemma.py [--model M] --part probe|summary|bench [--query-aware] --output D
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from functools import partial
from pathlib import Path

import torch
from devrun import in_turn, live_rczip, report, run
from transformers import DynamicCache, pipeline

from rcstat.evaluation.kv.bench import Config, _encode
from rcstat.evaluation.kv.oracle import evidence_positions
from rcstat.evaluation.kv.tasks import builtin_samples
from rcstat.kv.replay import compress_live
from rcstat.models import load_model
from rcstat.models.logits import attention_layer, layer_queries, logits
from rcstat.presses.rczip_press import RCZipPress, _template
from rcstat.presses.registry import FULL_CACHE, PRESSES

TASKS = ("needle", "multikey")
CHECK_ROWS, PAIR = 16, ("rc", "attn")  # rows of the attention output check; the two scores


def _matrices(press: RCZipPress, module, hidden_states, keys, kwargs):
    """One pass, one layer: RC ``(b, H, rows, n)`` (RCZipPress's floor: the causal repeat) and KVzip's
    softmax attention (over sinks, chunk and causal repeat) on the chunk's ``n`` keys; the queries."""
    layer = attention_layer(module)
    rows, s, e = hidden_states.shape[1], press.start_idx, press.end_idx
    q = layer_queries(layer, hidden_states, kwargs["position_embeddings"], slice(None))
    ctx = logits(layer, q, keys[:, :, : press.context_length])
    rep = logits(layer, q, keys[:, :, -rows:])
    causal = torch.ones(rows, rows, dtype=torch.bool, device=keys.device).tril()
    floor = rep.masked_fill(~causal, 0).sum(-1) / causal.sum(-1)
    rc = ctx[..., s:e] - floor[..., None]
    sink = min(press.n_sink, s)
    full = torch.cat([ctx[..., :sink], ctx[..., s:e], rep.masked_fill(~causal, float("-inf"))], -1)
    attn = full.softmax(-1)[..., sink : sink + e - s]
    return layer, q, rc, attn


def _group_max(layer, x: torch.Tensor) -> torch.Tensor:
    b, h, r, n = x.shape
    return x.reshape(b, layer.num_kv_heads, h // layer.num_kv_heads, r, n).amax(2)


class AttnZipPress(RCZipPress):
    """RCZipPress's passes and eviction; keys scored by KVzip's attention (max over rows, query heads)."""

    def score_kvzip(self, module, hidden_states, keys, values, attentions, kwargs):
        layer, _, _, attn = _matrices(self, module, hidden_states, keys, kwargs)
        score = _group_max(layer, attn).amax(-2)
        val = self.score_val[int(module.layer_idx)]
        val[..., self.start_idx : self.end_idx] = score.to(val.dtype)
        return keys[:, :, : self.context_length], values[:, :, : self.context_length]


class Probe(RCZipPress):
    """RCZipPress recording, on its own passes, the repeat's accuracy, the rows' alignment, both scores."""

    def _perform_kvzip_compression(self, model, tokenizer) -> None:
        self.diag = {"layers": {}, "passes": []}
        self._o_in = {}
        decoder = model.get_decoder()
        hooks = [decoder.register_forward_hook(self._record_pass, with_kwargs=True)]
        for i, m in enumerate(decoder.layers):  # the attention output, as o_proj reads it
            hook = m.self_attn.o_proj.register_forward_pre_hook
            hooks.append(hook(lambda _, a, i=i: self._o_in.update({i: a[0]})))
        self._lm_head = model.get_output_embeddings()
        try:
            super()._perform_kvzip_compression(model, tokenizer)
        finally:
            for h in hooks:
                h.remove()

    def _record_pass(self, module, args, kwargs, output) -> None:
        ids = kwargs["input_ids"][0]
        n = self.end_idx - self.start_idx
        pred = self._lm_head(output.last_hidden_state[0, -n - 1 : -1]).argmax(-1)
        self.diag["passes"].append({"ids": ids.cpu(), "pred": pred.cpu(), "n": n})

    def score_kvzip(self, module, hidden_states, keys, values, attentions, kwargs):
        out = super().score_kvzip(module, hidden_states, keys, values, attentions, kwargs)
        layer, q, rc, attn = _matrices(self, module, hidden_states, keys, kwargs)
        i, s, e = int(module.layer_idx), self.start_idx, self.end_idx
        rows, n = hidden_states.shape[1], e - s
        d: dict = {}
        for name, m in zip(PAIR, (rc, attn), strict=True):
            g = _group_max(layer, m)  # (b, kv, rows, n)
            score, best = g.max(-2)
            val = self.diag.setdefault(f"{name}_val", torch.zeros_like(self.score_val, dtype=torch.float32))
            val[i][..., s:e] = score
            if name == "rc":
                d["rc_vs_press"] = float((score - self.score_val[i][..., s:e].float()).abs().max())
            off = best - (rows - n + torch.arange(n, device=best.device))
            d[name] = {str(k): float((off == k).float().mean()) for k in (-1, 0)}
            d[name]["within2"] = float((off.abs() <= 2).float().mean())
        # the rotary check: softmax over every key the last rows see, times the values, as the module did
        full = torch.cat([keys[:, :, : self.context_length], keys[:, :, -rows:]], 2)
        vals = torch.cat([values[:, :, : self.context_length], values[:, :, -rows:]], 2)
        lg = logits(layer, q[:, :, -CHECK_ROWS:], full)
        pos = torch.arange(rows - CHECK_ROWS, rows, device=keys.device)[:, None]
        mask = torch.arange(full.shape[2] - self.context_length, device=keys.device)[None] > pos
        lg[..., self.context_length :] = lg[..., self.context_length :].masked_fill(mask, float("-inf"))
        g = layer.num_heads // layer.num_kv_heads
        o = lg.softmax(-1) @ vals.repeat_interleave(g, 1)  # (b, H, r, d)
        o = o.transpose(1, 2).reshape(o.shape[0], CHECK_ROWS, -1)
        ref = self._o_in[i][:, -CHECK_ROWS:]
        d["attn_out_rel_err"] = float((o - ref).norm() / ref.norm())
        top = attn.argmax(-1, keepdim=True)  # lse_j − floor_j: KVzip's floor above RC's, per head and row
        gap = rc.gather(-1, top) - attn.gather(-1, top).log()
        self.diag.setdefault("gap", {})[i] = (gap[0, :, :, 0].cpu(), rows - n - s - 1)
        self.diag["layers"].setdefault(i, []).append(d)
        return out


def _percentile(score: torch.Tensor, lo: int, hi: int, positions) -> dict:
    """Over the positions, the mean and lowest share of scored keys ``[lo, hi)`` scoring below them."""
    below = [float((score[lo:hi] < score[p]).float().mean()) for p in positions]
    return {"mean": sum(below) / len(below), "min": min(below)}


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = (x.argsort().argsort().float() for x in (a, b))
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def probe_sample(model, tokenizer, sample, context_ids) -> dict:
    press = Probe(compression_ratio=0.25, layerwise=True)
    compress_live(model, context_ids, press)
    diag, rec = press.diag, {"key": sample.key, "task": sample.task, "context_tokens": context_ids.shape[1]}
    ids, n, pred = (p := diag["passes"][0])["ids"], p["n"], p["pred"]  # 1k tokens: one pass (chunk 2048)
    rec["repeat_acc"] = float((pred == (target := ids[-n:])).float().mean())
    with torch.no_grad():  # one clean forward of prefill + repeat, no press, no hooks
        clean = model(input_ids=torch.cat([context_ids, ids[None]], 1), past_key_values=DynamicCache())
    clean_pred = clean.logits[0, -n - 1 : -1].argmax(-1)
    rec["clean_acc"] = float((clean_pred == target).float().mean())
    rec["pass_vs_clean_agree"] = float((clean_pred == pred).float().mean())
    rec["layers"] = {str(i): v[0] for i, v in diag["layers"].items()}
    lo, hi = _template(tokenizer)[0], context_ids.shape[1]
    rc_all, attn_all = (diag[f"{k}_val"][:, 0, 0, lo:hi] for k in PAIR)
    rec["spearman"] = {str(i): _spearman(rc_all[i], attn_all[i]) for i in diag["layers"]}
    for name, texts in (("evidence", sample.evidence), ("answer", sample.answers)):
        at = evidence_positions(tokenizer, context_ids, texts)
        if at:  # per layer: the tokens' mean and lowest percentile among the scored keys
            rec[name] = {
                str(i): {k: _percentile(diag[f"{k}_val"][i, 0, 0], lo, hi, at) for k in PAIR}
                for i in diag["layers"]
            }
    if at:  # lse_j − floor_j on the rows predicting the answer's tokens, and on every row (medians)
        gaps = {str(i): (g, [p + shift for p in at]) for i, (g, shift) in diag["gap"].items()}
        rec["gap"] = {
            i: {"answer": float(g[:, r].median()), "all": float(g.median())} for i, (g, r) in gaps.items()
        }
    return rec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--part", choices=("probe", "bench", "summary"), required=True)
    parser.add_argument("--per-task", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--query-aware", action="store_true")
    parser.add_argument("--limit", type=int, default=None, help="the first N samples only")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    if args.part == "summary":
        return print(summary(Path(args.output) / "probe.json"))
    model, tokenizer = load_model(args.model)
    by_task = builtin_samples(tokenizer, TASKS, args.per_task, [1024], seed=args.seed)
    samples = in_turn(by_task, args.per_task)[: args.limit]
    (out := Path(args.output)).mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/kv/dev/rczip_gemma.py " + shlex.join(sys.argv[1:])
    data = f"{','.join(TASKS)} (per task {args.per_task}, length 1024, seed {args.seed}, in turn)"
    if args.part == "bench":
        presses = {FULL_CACHE: None, "keydiff": PRESSES["keydiff"].make, "zip": live_rczip()}
        presses |= {"zip-layerwise": live_rczip(layerwise=True), "attn": partial(AttnZipPress)}
        presses["attn-layerwise"] = partial(AttnZipPress, layerwise=True)
        presses["attn"].live = presses["attn-layerwise"].live = True  # run live, as devrun.live_rczip
        config = Config.create(presses, [0.25, 0.5, 0.75], args.query_aware, 64)
        records = run(model, tokenizer, samples, config, out)
        meta = {"model": args.model, "data": data, "query_aware": args.query_aware, "command": command}
        return report(out, meta, config, records)
    pipe, rows = pipeline("kv-press-text-generation", model=model, tokenizer=tokenizer), []
    for aware in (False, True):
        config = Config.create([FULL_CACHE], [0.25], aware, 64)
        for number, sample in enumerate(samples, 1):
            context_ids = _encode(pipe, config, sample)[0]
            rows.append({"query_aware": aware, **probe_sample(model, tokenizer, sample, context_ids)})
            print(f"{'aware' if aware else 'agnostic'} {number}/{len(samples)}", file=sys.stderr, flush=True)
            record = {"command": command, "data": data, "rows": rows}
            (out / "probe.json").write_text(json.dumps(record) + "\n")


COLUMNS = [  # paths in a probe row (the layer goes after the first key); the header joins them
    *[("layers", s, k) for s in PAIR for k in ("-1", "within2")],
    *[(n, s, k) for n, k in (("evidence", "mean"), ("answer", "mean"), ("answer", "min")) for s in PAIR],
    *[("gap", "answer"), ("gap", "all"), ("spearman",)],
]


def _dig(row, path):
    for key in path:
        row = row.get(key) if isinstance(row, dict) else None
    return row


def summary(path: Path) -> str:
    """Markdown tables of ``probe.json``: means over samples, per setting and global layer."""
    rows, out = json.loads(path.read_text())["rows"], []
    for aware in (False, True):
        if not (rs := [r for r in rows if r["query_aware"] == aware]):
            continue

        def mean(path, rs=rs):
            vals = [v for r in rs if (v := _dig(r, path)) is not None]
            return f"{sum(vals) / len(vals):.3f}" if vals else "–"

        acc = " / ".join(mean((k,)) for k in ("repeat_acc", "clean_acc", "pass_vs_clean_agree"))
        err = max(v["attn_out_rel_err"] for r in rs for v in r["layers"].values())
        out += [f"{'query-aware' if aware else 'query-agnostic'}, n = {len(rs)}: repeat accuracy {acc}"]
        out += [f"(ours / clean / agreement); attention output relative error, max {err:.1e}", ""]
        head = " | ".join(" ".join(p) for p in COLUMNS)
        out += [f"| layer | {head} |", "|---" * (len(COLUMNS) + 1) + "|"]
        out += [
            f"| {i} | " + " | ".join(mean((p[0], i, *p[1:])) for p in COLUMNS) + " |" for i in rs[0]["layers"]
        ]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    main()
