"""A self-contained HTML view of a generation under compression (``rcstat generate --format html``).

The generated text, the compression's record, time per token, and a line chart (inline SVG, no
script) of the KV bytes held against the decoding step, beside what an uncompressed cache would hold.
"""

from __future__ import annotations

from rcstat.render.compression_html import human_bytes
from rcstat.render.page import escape, page

STYLE = """
.answer{font-size:16px;white-space:pre-wrap}.chart{width:100%;max-width:760px;height:auto}
.axis{stroke:#aab1bd;stroke-width:1}.chart text{font:11px system-ui;fill:#5b6475}
.full{fill:none;stroke:#aab1bd;stroke-width:2;stroke-dasharray:5 3}
.held{fill:none;stroke:#2f6fb0;stroke-width:2}
"""


def memory_chart(steps: list[dict]) -> str:
    """Bytes held (solid) and an uncompressed cache's bytes (dashed) against the decoding step."""
    width, height, left, bottom, top, right = 760, 240, 64, 28, 10, 8
    last = max(s["step"] for s in steps) or 1
    peak = max(max(s["full_bytes"], s["held_bytes"]) for s in steps) or 1

    def x(step: float) -> float:
        return left + (width - left - right) * step / last

    def y(value: float) -> float:
        return top + (height - top - bottom) * (1 - value / peak)

    def line(key: str) -> str:
        return " ".join(f"{x(s['step']):.1f},{y(s[key]):.1f}" for s in steps)

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="KV bytes held against the decoding step">'
    ]
    for share in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line class="axis" x1="{left}" x2="{width - right}" y1="{y(peak * share):.1f}" '
            f'y2="{y(peak * share):.1f}"/>'
        )
        parts.append(
            f'<text x="{left - 4}" y="{y(peak * share) + 4:.1f}" text-anchor="end">'
            f"{escape(human_bytes(int(peak * share)))}</text>"
        )
    for share in (0, 0.5, 1):
        parts.append(
            f'<text x="{x(last * share):.1f}" y="{height - 8}" text-anchor="middle">'
            f"{round(last * share)}</text>"
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
<tr><td>an uncompressed cache</td><td class="n">{human_bytes(final["full_bytes"])}</td></tr>
<tr><td>seconds per token</td><td class="n">{record["seconds_per_token"]:.4f}</td></tr>
<tr><td>scoring and eviction</td><td class="n">{record["compress_seconds"]:.3f} s</td></tr>
</table></section>
<section class="wide"><h2>KV bytes held against the decoding step</h2>
{memory_chart(steps)}
<p class="mono">solid: held by the ragged cache (room to grow included); dashed: an uncompressed cache</p>
</section></main>"""
    return page("rcstat generation", "Compression while generating", body, style=STYLE)
