"""A self-contained HTML view of a cited response (``rcstat cite --format html``): the response with
``[n]`` after each cited sentence, each linked to its source in the list below (no script)."""

from __future__ import annotations

from rcstat.render.page import escape, page

STYLE = """
.answer{font-size:17px;white-space:pre-wrap}sup a{color:#c25e00;text-decoration:none;font-weight:600}
ol.sources li{margin:4px 0}ol.sources li:target{background:#ffe8a3}.none{color:#8a919e}
"""


def render(record: dict, query: str) -> str:
    """The page for ``record`` (``Citations.to_dict()`` plus ``model``)."""
    response, parts, last = record["response"], [], 0
    for s in record["sentences"]:
        parts.append(escape(response[last : s["end"]]))
        parts += [f'<sup><a href="#source-{i + 1}">[{i + 1}]</a></sup>' for i in s["citations"]]
        last = s["end"]
    parts.append(escape(response[last:]))
    sources = "".join(f'<li id="source-{s["index"] + 1}">{escape(s["text"])}</li>' for s in record["sources"])
    cited = sum(1 for s in record["sentences"] if s["citations"])
    note = f"{cited} of {len(record['sentences'])} sentences cite a source (margin {record['margin']:g})"
    body = f"""<p class="q"><b>Query:</b> {escape(query)} · <b>model:</b> {escape(record["model"])}</p>
<main><section class="wide"><h2>Response, cited</h2><div class="answer" id="answer">{"".join(parts)}</div>
<p class="mono">{note}</p>
</section><section class="wide"><h2>Sources</h2><ol class="sources">{sources}</ol></section></main>"""
    return page("rcstat citations", "Citations", body, style=STYLE)
