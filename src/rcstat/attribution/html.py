"""A self-contained HTML view of an attribution (``rcstat attribute --format html``).

One file, no network: the scores of every response sentence at every granularity are embedded
as JSON, so clicking (or hovering) a sentence highlights its sources in the context with a colour
scale and their scores, and a switch changes the granularity, with no re-run. Without JavaScript
the page still lists, under each response sentence, its best sources.
"""

from __future__ import annotations

import html
import json

from rcstat.attribution.attributor import Attribution
from rcstat.attribution.sources import sentence_spans

STYLE = """
body{font:15px/1.55 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{display:grid;grid-template-columns:1fr 1fr;gap:18px;padding:18px;max-width:1280px;margin:auto}
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:14px 16px}
h1{font-size:18px;margin:16px 18px 0}h2{font-size:14px;text-transform:uppercase;color:#5b6475;margin:0 0 8px}
.q{color:#5b6475;margin:4px 18px}.sent{cursor:pointer;border-radius:3px;padding:1px 0}
.sent:hover,.sent.on{background:#ffe8a3}.src{border-radius:3px;transition:background .15s}
.context{white-space:pre-wrap}.score{font:11px monospace;color:#7a4b00;vertical-align:super}
.controls{margin:8px 18px}.heads{font:12px monospace;color:#5b6475}
noscript li,.static li{font-size:13px;color:#333}
"""

SCRIPT = """
const D=JSON.parse(document.getElementById('data').textContent);
let gran=D.default_granularity, current=0;
function paint(){
  const ctx=document.getElementById('context'); ctx.textContent='';
  const src=D.sources[gran], sc=D.scores[gran][current]; const max=Math.max(...sc), min=Math.min(...sc);
  let at=0;
  src.forEach((s,i)=>{
    if(s.start>at) ctx.append(D.context.slice(at,s.start));
    const span=document.createElement('span'); span.className='src'; span.dataset.index=i;
    const w=max>min?(sc[i]-min)/(max-min):0; span.dataset.weight=w.toFixed(3);
    span.style.background=`rgba(230,120,20,${(0.75*w*w).toFixed(3)})`;
    span.textContent=D.context.slice(s.start,s.end);
    span.title=`source ${i}: score ${sc[i].toFixed(3)}`; ctx.append(span);
    if(w>0.6){const b=document.createElement('span');b.className='score';
      b.textContent=sc[i].toFixed(2);ctx.append(b);}
    at=s.end;});
  ctx.append(D.context.slice(at));
  document.querySelectorAll('.sent').forEach(e=>e.classList.toggle('on',+e.dataset.index===current));
}
document.querySelectorAll('.sent').forEach(e=>{
  e.addEventListener('click',()=>{current=+e.dataset.index;paint();});
  e.addEventListener('mouseenter',()=>{current=+e.dataset.index;paint();});});
document.querySelectorAll('input[name=gran]').forEach(r=>r.addEventListener('change',()=>{gran=r.value;paint();}));
document.querySelectorAll('.static').forEach(e=>e.remove());
paint();
"""


def render(result: Attribution, model: str, granularity: str = "sentence") -> str:
    """The page for ``result``: every response sentence scored at every granularity."""
    sentences = sentence_spans(result.response) or [(0, len(result.response))]
    grans = list(result.sources)
    scores = {
        g: [result.attributions(a, b, granularity=g).scores.round(4).tolist() for a, b in sentences]
        for g in grans
    }
    sources = {g: [{"start": s.start, "end": s.end} for s in result.sources[g]] for g in grans}
    data = {
        "context": result.context,
        "sources": sources,
        "scores": scores,
        "default_granularity": granularity if granularity in grans else grans[0],
    }
    response = []
    at = 0
    for i, (a, b) in enumerate(sentences):
        response.append(html.escape(result.response[at:a]))
        top = result.attributions(a, b, granularity=data["default_granularity"])
        best = "".join(
            f"<li>{top.scores[j]:.3f} — {html.escape(top.sources[j].text[:120])}</li>"
            for j in top.ranking[:3]
        )
        response.append(
            f'<span class="sent" data-index="{i}">{html.escape(result.response[a:b])}</span>'
            f'<ul class="static">{best}</ul>'
        )
        at = b
    response.append(html.escape(result.response[at:]))
    checked = {g: " checked" if g == data["default_granularity"] else "" for g in grans}
    switch = "".join(
        f'<label><input type="radio" name="gran" value="{g}"{checked[g]}> {g}</label> ' for g in grans
    )
    heads = ", ".join(f"{la}:{h}" for la, h in result.heads)
    payload = json.dumps(data).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rcstat attribution</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body><h1>Attribution of a response to its context</h1>
<p class="q"><b>Query:</b> {html.escape(result.task.query)} · <b>model:</b> {html.escape(model)}</p>
<div class="controls">granularity: {switch}
<div class="heads">heads (layer:head), highest expected RC first: {heads}</div></div>
<main><section><h2>Response — click or hover a sentence</h2>
<div id="response">{"".join(response)}</div></section>
<section><h2>Context</h2>
<div id="context" class="context">{html.escape(result.context)}</div></section></main>
<script id="data" type="application/json">{payload}</script><script>{SCRIPT}</script></body></html>
"""
