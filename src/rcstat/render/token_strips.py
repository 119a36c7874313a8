"""Which context tokens each layer kept, drawn for ``rcstat compress --format html`` (no script).

:func:`strips`: one strip per layer, a cell per context token shaded by how many KV heads still
hold it (pale grey: none); runs of equal cells are one rectangle, titled with their tokens and count.
:func:`shaded_context`: the context's text, each token shaded by the share of (layer, KV head)
pairs that kept it, its share on hover, tokens no head of any layer kept struck through.
"""

from __future__ import annotations

from rcstat.render.page import escape

STYLE = """
.strips{width:100%;height:auto}.strips text{font:10px system-ui;fill:#5b6475}
.strips text.emptied{fill:#b3261e;font-weight:600}.strips .lane{fill:#f0f1f4}
.kept{white-space:pre-wrap;font:13px/1.7 ui-monospace,monospace;max-height:320px;overflow:auto}
.kept span.gone{text-decoration:line-through;color:#9aa1ad}
"""

WIDTH, LEFT, RIGHT, ROW, GAP, TOP, BOTTOM = 1200, 64, 8, 9, 2, 6, 34
PLOT = WIDTH - LEFT - RIGHT


def _runs(counts: list[int]) -> list[tuple[int, int, int]]:
    """``(start, end, count)`` for each run of equal counts."""
    runs, start = [], 0
    for i in range(1, len(counts) + 1):
        if i == len(counts) or counts[i] != counts[start]:
            runs.append((start, i, counts[start]))
            start = i
    return runs


def _snippet(tokens: list[str], start: int, end: int) -> str:
    text = "".join(tokens[start:end]).replace("\n", " ")
    return text if len(text) <= 40 else text[:39] + "…"


def strips(kept: dict, emptied: list[int]) -> str:
    """An SVG of one strip per layer over the context tokens, shaded by the KV heads holding each."""
    tokens, heads, per_layer = kept["tokens"], kept["kv_heads"], kept["heads_per_layer"]
    n, layers = max(len(tokens), 1), len(per_layer)
    step = PLOT / n
    height = TOP + layers * (ROW + GAP) + BOTTOM
    parts = [
        f'<svg class="strips" viewBox="0 0 {WIDTH} {height}" role="img" '
        'aria-label="context tokens kept per layer, shaded by the KV heads holding each">'
    ]
    for layer, counts in enumerate(per_layer):
        y = TOP + layer * (ROW + GAP)
        mark = ' class="emptied"' if layer in emptied else ""
        label = f"{layer} ✕" if layer in emptied else str(layer)
        if layer in emptied or layers <= 16 or layer % 2 == 0:
            parts.append(f'<text x="{LEFT - 6}" y="{y + ROW - 1}" text-anchor="end"{mark}>{label}</text>')
        lane = (
            ""
            if counts is not None
            else f"<title>layer {layer}: keys changed by the press, not matched</title>"
        )
        parts.append(f'<rect class="lane" x="{LEFT}" y="{y}" width="{PLOT}" height="{ROW}">{lane}</rect>')
        if counts is None:
            continue
        for start, end, count in _runs(counts):
            if not count:
                continue
            span = f"tokens {start}–{end - 1} “{_snippet(tokens, start, end)}”"
            title = f"layer {layer}, {span}: {count} of {heads}"
            parts.append(
                f'<rect x="{LEFT + start * step:.2f}" y="{y}" width="{(end - start) * step:.2f}" '
                f'height="{ROW}" fill="#2f6fb0" fill-opacity="{count / heads:.3f}" data-layer="{layer}">'
                f"<title>{escape(title)} KV heads</title></rect>"
            )
    axis = TOP + layers * (ROW + GAP) + 12
    for tick in _ticks(len(tokens)):
        parts.append(f'<text x="{LEFT + tick * step:.1f}" y="{axis}" text-anchor="middle">{tick}</text>')
    parts.append(
        f'<text x="{(LEFT + WIDTH) / 2:.0f}" y="{axis + 16}" text-anchor="middle">context token</text>'
        f'<text x="12" y="{TOP + layers * (ROW + GAP) / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + layers * (ROW + GAP) / 2:.0f})">layer</text></svg>'
    )
    return "".join(parts)


def _ticks(n: int) -> list[int]:
    """Round token indices for an axis of ``n`` tokens, about eight of them."""
    step = next(
        s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10**9) if n / s <= 10
    )
    return list(range(0, n, step))


def shaded_context(kept: dict) -> str:
    """The context, each token shaded by the share of (layer, KV head) pairs that kept it."""
    tokens, heads = kept["tokens"], kept["kv_heads"]
    known = [counts for counts in kept["heads_per_layer"] if counts is not None]
    if not known:
        return '<p class="mono">no layer could be matched against the uncompressed cache</p>'
    spans = []
    for i, token in enumerate(tokens):
        share = sum(counts[i] for counts in known) / (heads * len(known))
        title = f"token {i}: kept by {share:.0%} of (layer, KV head) pairs"
        style = f"background:rgba(47,111,176,{0.55 * share:.3f})"
        gone = ' class="gone"' if share == 0 else ""
        spans.append(f'<span{gone} style="{style}" title="{escape(title)}">{escape(token)}</span>')
    return f'<div class="kept" id="kept">{"".join(spans)}</div>'
