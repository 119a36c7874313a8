"""A self-contained HTML view of a cited response (``rcstat cite --format html``, ``Citations.to_html``):
the response with ``[n]`` after each cited sentence, each linked to source ``n`` in the list below;
hovering a sentence or a citation shows its support, overlap or score; a sentence whose support or
overlap was measured and that cites nothing is marked unbacked (no script)."""

from __future__ import annotations

from rcstat.render.page import escape, page

STYLE = """
.answer{font-size:17px;white-space:pre-wrap}sup a{color:#c25e00;text-decoration:none;font-weight:600}
ol.sources li{margin:4px 0}ol.sources li:target{background:#ffe8a3}.none{color:#8a919e}
.unbacked{text-decoration:underline wavy #b3261e;text-underline-offset:3px}
"""


def fragment(record: dict) -> str:
    """The cited response and the sources (``Citations.to_dict()``), for a page or a notebook."""
    response, parts, last = record["response"], [], 0
    for s in record["sentences"]:
        parts.append(escape(response[last : s["start"]]))
        support = s.get("support")
        unbacked = (support is not None or s.get("overlap") is not None) and not s["citations"]
        title = "support not measured" if support is None else f"support {support:.3f} nats/token"
        if s.get("low_logprob") is not None:
            title += f", low log-prob {s['low_logprob']:.2f}"
        if s.get("overlap") is not None:
            title += f", overlap {s['overlap']:.2f}"
        title += " — no source backs it" if unbacked else ""
        mark = ' class="unbacked"' if unbacked else ""
        parts.append(f'<span{mark} title="{escape(title)}">{escape(s["text"])}</span>')
        parts += [
            f'<sup><a href="#source-{c["source"]}" title="score {c["score"]:.3f}">[{c["source"]}]</a></sup>'
            for c in s["citations"]
        ]
        last = s["end"]
    parts.append(escape(response[last:]))
    sources = "".join(
        f'<li value="{s["source"]}" id="source-{s["source"]}">{escape(s["text"])}</li>'
        for s in record["sources"]
    )
    cited = sum(1 for s in record["sentences"] if s["citations"])
    rule = f"margin {record['margin']:g}"
    if record.get("min_support") is not None:
        rule += f", least support {record['min_support']:g}"
    if record.get("min_logprob") is not None:
        rule += f", least low log-prob {record['min_logprob']:g}"
    if record.get("min_overlap") is not None:
        rule += f", least overlap {record['min_overlap']:g}"
    note = f"{cited} of {len(record['sentences'])} sentences cite a source ({rule}); hover for scores"
    return f"""<div class="answer">{"".join(parts)}</div><p class="mono">{escape(note)}</p>
<ol class="sources">{sources}</ol>"""


def render(record: dict, query: str) -> str:
    """The page for ``record`` (``Citations.to_dict()`` plus ``model``)."""
    body = f"""<p class="q"><b>Query:</b> {escape(query)} · <b>model:</b> {escape(record["model"])}</p>
<main><section class="wide"><h2>Response, cited</h2>{fragment(record)}</section></main>"""
    return page("rcstat citations", "Citations", body, style=STYLE)
