"""A self-contained HTML view of a generation under compression (``rcstat generate --format html``).

The generated text, the compression's record, time per token, and a line chart (inline SVG, no
script) of the KV bytes held against the decoding step, beside what an uncompressed cache would hold.
"""

from __future__ import annotations

import math

from rcstat.render.compression_html import human_bytes
from rcstat.render.page import escape, page

STYLE = """
.answer{font-size:16px;white-space:pre-wrap}.chart{width:100%;max-width:760px;height:auto}
.axis{stroke:#aab1bd;stroke-width:1}.chart text{font:11px system-ui;fill:#5b6475}
.full{fill:none;stroke:#aab1bd;stroke-width:2;stroke-dasharray:5 3}
.held{fill:none;stroke:#2f6fb0;stroke-width:2}
"""


def nice_step(span: float, count: int = 5) -> float:
    """A round step (1, 2, 2.5 or 5 × 10^k) giving at most about ``count`` intervals over ``span``."""
    raw = max(span, 1e-12) / count
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))


def _unit(peak: float) -> tuple[str, int]:
    return ("MiB", 2**20) if peak >= 2**20 else ("KiB", 1024) if peak >= 1024 else ("B", 1)


def memory_chart(steps: list[dict]) -> str:
    """Bytes held (solid) and an uncompressed cache's bytes (dashed) against the decoding step, on
    round ticks (MiB or KiB; tokens) with named axes."""
    width, height, left, bottom, top, right = 760, 250, 70, 42, 10, 12
    last = max(s["step"] for s in steps) or 1
    peak = max(max(s["full_bytes"], s["held_bytes"]) for s in steps) or 1
    name, size = _unit(peak)
    y_step = nice_step(peak / size)
    y_top = math.ceil(peak / size / y_step) * y_step * size
    x_step = max(1, round(nice_step(last)))

    def x(step: float) -> float:
        return left + (width - left - right) * step / last

    def y(value: float) -> float:
        return top + (height - top - bottom) * (1 - value / y_top)

    def line(key: str) -> str:
        return " ".join(f"{x(s['step']):.1f},{y(s[key]):.1f}" for s in steps)

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="KV bytes held against the decoding step">'
    ]
    tick = 0.0
    while tick * size <= y_top * (1 + 1e-9):
        at = y(tick * size)
        parts.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{at:.1f}" y2="{at:.1f}"/>')
        parts.append(f'<text x="{left - 6}" y="{at + 4:.1f}" text-anchor="end">{tick:g} {name}</text>')
        tick = round(tick + y_step, 9)
    for step in range(0, last + 1, x_step):
        parts.append(f'<text x="{x(step):.1f}" y="{height - 24}" text-anchor="middle">{step}</text>')
    middle = top + (height - top - bottom) / 2
    parts.append(
        f'<text x="{(left + width - right) / 2:.0f}" y="{height - 6}" text-anchor="middle">'
        "generated tokens (decoding step)</text>"
        f'<text x="12" y="{middle:.0f}" text-anchor="middle" transform="rotate(-90 12 {middle:.0f})">'
        "KV bytes</text>"
    )
    parts.append(f'<polyline class="full" points="{line("full_bytes")}"><title>full cache</title></polyline>')
    parts.append(f'<polyline class="held" points="{line("held_bytes")}"><title>held</title></polyline>')
    parts.append("</svg>")
    return "".join(parts)


def render(record: dict, query: str) -> str:
    """The page for ``record`` (``GenerationReport.to_dict()`` plus ``model``)."""
    steps = record["steps"]
    final = steps[-1]
    budget = escape(record["budget"] or "none (the full cache)")
    names = {
        "keys_and_values": "keys and values",
        "positions": "positions (4 B each)",
        "room_to_grow": "room to grow",
    }
    parts = "".join(
        f'<tr><td>&nbsp;&nbsp;of which {names[k]}</td><td class="n">{human_bytes(v)}</td></tr>'
        for k, v in (record.get("held_bytes_last_step") or {}).items()
    )
    body = f"""<p class="q"><b>Query:</b> {escape(query)} · <b>model:</b> {escape(record["model"])}</p>
<p class="q mono">{escape(record["compression"] or "full cache")}</p>
<main><section><h2>Generated while compressing</h2>
<div class="answer" id="text">{escape(record["text"])}</div></section>
<section><h2>The cache</h2><table id="summary">
<tr><td>press</td><td class="n">{escape(record["press"])}</td></tr>
<tr><td>budget</td><td class="n">{budget}</td></tr>
<tr><td>prompt</td><td class="n">{record["prompt_tokens"]} tokens</td></tr>
<tr><td>generated</td><td class="n">{record["generated_tokens"]} tokens</td></tr>
<tr><td>entries per head, last step</td><td class="n">{final["cache_tokens"]:.1f}</td></tr>
<tr><td>KV bytes held, last step</td><td class="n">{human_bytes(final["held_bytes"])}</td></tr>
{parts}
<tr><td>an uncompressed cache</td><td class="n">{human_bytes(final["full_bytes"])}</td></tr>
<tr><td>seconds per token</td><td class="n">{record["seconds_per_token"]:.4f}</td></tr>
<tr><td>scoring and eviction</td><td class="n">{record["compress_seconds"]:.3f} s</td></tr>
</table></section>
<section class="wide"><h2>KV bytes held against the decoding step</h2>
{memory_chart(steps)}
<p class="mono">solid: held by the ragged cache (its entries' positions and room to grow included);
dashed: an uncompressed cache's keys and values</p>
</section></main>"""
    return page("rcstat generation", "Compression while generating", body, style=STYLE)
