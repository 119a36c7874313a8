"""A self-contained HTML view of a compression run (``rcstat compress --format html``).

The answer beside the full cache's, the realised ratio, KV bytes before and after, the time of
each phase, notes (the mode, layers the ratio emptied), a per-layer bar chart of the share of the
cache each layer kept, and which context tokens each layer kept (inline SVG and text, no script).
"""

from __future__ import annotations

from rcstat.render import token_strips
from rcstat.render.page import escape, page
from rcstat.render.text import compression_notes

STYLE = (
    """
.answer{font-size:17px;white-space:pre-wrap}.chart{width:100%;max-width:520px;height:auto;display:block}
.bar{fill:#2f6fb0}.bar:hover{fill:#c25e00}.axis{stroke:#aab1bd;stroke-width:1}
.target{stroke:#c25e00;stroke-dasharray:4 3;stroke-width:1.5}.chart text{font:11px system-ui;fill:#5b6475}
.note{color:#7a4b00;background:#fff6e0;border-radius:4px;padding:4px 8px;margin:6px 0}
.same{color:#2e7d32}.differs{color:#b3261e}
"""
    + token_strips.STYLE
)


CACHES = {
    "ragged": "ragged: only the kept entries are held",
    "masked": "masked: kvpress's cache, evicted entries masked",
}


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KiB" if n < 2**20 else f"{n / 2**20:.2f} MiB"


def bar_chart(kept: list[float], target: float | None = None) -> str:
    """Vertical bars of the share of the cache each layer kept, ``target`` as a dashed line."""
    width, height, left, bottom, top = 520, 170, 46, 36, 8
    plot_h = height - bottom - top
    step = (width - left - 6) / max(len(kept), 1)

    def y(share: float) -> float:
        return top + plot_h * (1 - share)

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="share of the KV cache kept per layer">'
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line class="axis" x1="{left}" x2="{width - 6}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
        )
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>')
    for i, share in enumerate(kept):
        x = left + i * step
        parts.append(
            f'<rect class="bar" data-layer="{i}" x="{x + step * 0.15:.1f}" y="{y(share):.1f}" '
            f'width="{step * 0.7:.1f}" height="{plot_h * share:.1f}">'
            f"<title>layer {i}: kept {share:.3f}</title></rect>"
        )
        if len(kept) <= 12 or i % 5 == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{height - 22}" text-anchor="middle">{i}</text>')
    if target is not None:
        parts.append(
            f'<line class="target" x1="{left}" x2="{width - 6}" y1="{y(target):.1f}" y2="{y(target):.1f}"/>'
        )
    middle = top + plot_h / 2
    parts.append(
        f'<text x="{(left + width) / 2:.0f}" y="{height - 4}" text-anchor="middle">layer</text>'
        f'<text x="11" y="{middle:.0f}" text-anchor="middle" transform="rotate(-90 11 {middle:.0f})">'
        "share kept</text></svg>"
    )
    return "".join(parts)


def _answers(record: dict) -> str:
    """The compressed cache's answer, and the full cache's beside it where it was asked for."""
    mine = (
        "<section><h2>Answer from the compressed cache</h2>\n"
        f'<div class="answer" id="answer">{escape(record["answer"])}</div>'
    )
    full = record.get("full_cache_answer")
    if full is None:
        return (
            mine + '\n<p class="mono">the full cache\'s answer: --full-answer (one more decode)</p></section>'
        )
    same = full == record["answer"]
    verdict = '<span class="same">the same</span>' if same else '<span class="differs">they differ</span>'
    return (
        f"{mine}</section>\n<section><h2>Answer from the full cache</h2>\n"
        f'<div class="answer" id="full-answer">{escape(full)}</div>\n'
        f'<p class="mono" id="verdict">compressed and full answers: {verdict}</p></section>'
    )


def render(record: dict, query: str, target_ratio: float | None = None) -> str:
    """The page for ``record`` (``CompressionReport.to_dict()`` plus ``model``)."""
    kept = [1 - r for r in record["realised_ratio_per_layer"]]
    full, held = record["kv_bytes_full"], record["kv_bytes_held"]
    masked = record["realised_ratio"] > 0 and held == full
    note = " — per-head budgets are masked by kvpress, not freed" if masked else ""
    seconds = record["seconds"]
    phases = "".join(f'<tr><td>{escape(k)}</td><td class="n">{v:.3f} s</td></tr>' for k, v in seconds.items())
    phases += f'<tr><th>total</th><th class="n">{sum(seconds.values()):.3f} s</th></tr>'
    target = None if target_ratio is None else 1 - target_ratio
    legend = f"; dashed line: the {target:.2f} asked for" if target is not None else ""
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in compression_notes(record))
    tokens = record.get("kept_tokens")
    emptied = record.get("emptied_layers") or []
    strips = ""
    if tokens:
        cross = "; ✕: a layer keeping nothing but sinks and window" if emptied else ""
        strips = f"""<section class="wide"><h2>Which context tokens each layer kept</h2>
{token_strips.strips(tokens, emptied)}
<p class="mono">one strip per layer, a cell per context token (chat template included); shade: KV heads
still holding it, of {tokens["kv_heads"]} (pale grey: none){cross}</p>
<h2>The context, shaded by how much of the cache kept each token</h2>
{token_strips.shaded_context(tokens)}</section>"""
    body = f"""<p class="q"><b>Query:</b> {escape(query)} · <b>model:</b> {escape(record["model"])}</p>
<p class="q mono">{escape(record["press"])}</p>
<main>{_answers(record)}
<section><h2>What compression did</h2>{notes}<table id="summary">
<tr><td>context</td><td class="n">{record["context_tokens"]} tokens</td></tr>
<tr><td>realised ratio (share evicted)</td><td class="n" id="ratio">{record["realised_ratio"]:.3f}</td></tr>
<tr><td>cache</td><td class="n">{escape(CACHES.get(record.get("cache"), record.get("cache", "")))}</td></tr>
<tr><td>KV bytes before</td><td class="n">{human_bytes(full)}</td></tr>
<tr><td>KV bytes after</td><td class="n">{human_bytes(held)}{escape(note)}</td></tr>
{phases}</table></section>
<section><h2>Share of the cache kept, per layer</h2>
{bar_chart(kept, target)}
<p class="mono">{len(kept)} layers; bar height: kept share (1 − realised ratio){escape(legend)}</p>
</section>
{strips}</main>"""
    return page("rcstat compression", "KV-cache compression", body, style=STYLE)
