"""The page every rcstat HTML report shares: one self-contained file, no network, no CDN.

:func:`page` wraps a report's body in the common skeleton and stylesheet; data for a script is
embedded as JSON (``<script id="data" type="application/json">``), so a page works from a file
opened offline and still reads without JavaScript.
"""

from __future__ import annotations

import html
import json

STYLE = """
body{font:15px/1.55 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{display:grid;grid-template-columns:1fr 1fr;gap:18px;padding:18px;max-width:1280px;margin:auto}
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:14px 16px}
section.wide{grid-column:1/-1}
h1{font-size:18px;margin:16px 18px 0}h2{font-size:14px;text-transform:uppercase;color:#5b6475;margin:0 0 8px}
.q{color:#5b6475;margin:4px 18px}.controls{margin:8px 18px}.mono{font:12px monospace;color:#5b6475}
table{border-collapse:collapse}td,th{padding:2px 12px 2px 0;text-align:left}td.n,th.n{text-align:right}
"""


def escape(text: object) -> str:
    return html.escape(str(text))


def page(
    title: str, heading: str, body: str, *, style: str = "", data: dict | None = None, script: str = ""
) -> str:
    """A whole HTML document: ``heading`` above ``body`` (trusted HTML), ``data`` as embedded JSON."""
    payload = ""
    if data is not None:
        text = json.dumps(data).replace("</", "<\\/")  # never closes the script element early
        payload = f'<script id="data" type="application/json">{text}</script>'
    code = f"<script>{script}</script>" if script else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}{style}</style></head>
<body><h1>{escape(heading)}</h1>
{body}
{payload}{code}</body></html>
"""
