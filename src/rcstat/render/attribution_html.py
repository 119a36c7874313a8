"""A self-contained HTML view of an attribution (``rcstat attribute --format html``).

One file, no network: the scores of every response sentence at every granularity are embedded
as JSON, so clicking (or hovering) a sentence shades its sources in the context with a colour
scale (a source's score on hover, never printed into the text, so no word is split), and a switch
changes the granularity, with no re-run. Without JavaScript
the page still lists, under each response sentence, its best sources.
"""

from __future__ import annotations

from rcstat.attribution.attributor import Attribution
from rcstat.attribution.sources import sentence_spans
from rcstat.options import DEFAULT_GRANULARITY
from rcstat.render.page import escape, page

STYLE = """
.sent{cursor:pointer;border-radius:3px;padding:1px 0}.sent:hover,.sent.on{background:#ffe8a3}
.src{border-radius:3px;transition:background .15s}.src.top{outline:2px solid #c25e00}
.context{white-space:pre-wrap}#hover{min-height:1.4em}
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
    span.title=`source ${i+1}: score ${sc[i].toFixed(3)}`; span.classList.toggle('top',sc[i]===max);
    ctx.append(span); at=s.end;});
  ctx.append(D.context.slice(at));
  document.querySelectorAll('.sent').forEach(e=>e.classList.toggle('on',+e.dataset.index===current));
}
document.querySelectorAll('.sent').forEach(e=>{
  e.addEventListener('click',()=>{current=+e.dataset.index;paint();});
  e.addEventListener('mouseenter',()=>{current=+e.dataset.index;paint();});});
const hover=document.getElementById('hover');
document.getElementById('context').addEventListener('mouseover',e=>{
  const t=e.target.closest('.src'); hover.textContent=t?t.title:'hover a source for its score';});
document.querySelectorAll('input[name=gran]').forEach(r=>r.addEventListener('change',()=>{gran=r.value;paint();}));
document.querySelectorAll('.static').forEach(e=>e.remove());
paint();
"""


def render(result: Attribution, model: str, granularity: str = DEFAULT_GRANULARITY) -> str:
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
        response.append(escape(result.response[at:a]))
        top = result.attributions(a, b, granularity=data["default_granularity"])
        best = "".join(
            f"<li>{top.scores[j]:.3f} — {escape(top.sources[j].text[:120])}</li>" for j in top.ranking[:3]
        )
        response.append(
            f'<span class="sent" data-index="{i}">{escape(result.response[a:b])}</span>'
            f'<ul class="static">{best}</ul>'
        )
        at = b
    response.append(escape(result.response[at:]))
    checked = {g: " checked" if g == data["default_granularity"] else "" for g in grans}
    switch = "".join(
        f'<label><input type="radio" name="gran" value="{g}"{checked[g]}> {g}</label> ' for g in grans
    )
    heads = ", ".join(f"{la}:{h}" for la, h in result.heads)
    body = f"""<p class="q"><b>Query:</b> {escape(result.task.query)} · <b>model:</b> {escape(model)}</p>
<div class="controls">granularity: {switch}
<div class="mono">heads (layer:head), highest expected RC first: {heads}</div></div>
<main><section><h2>Response — click or hover a sentence</h2>
<div id="response">{"".join(response)}</div></section>
<section><h2>Context</h2>
<p class="mono">shade: expected-RC score of each source, lowest to highest; outlined: the best;
a source's score on hover</p>
<p class="mono" id="hover">hover a source for its score</p>
<div id="context" class="context">{escape(result.context)}</div></section></main>"""
    title = "Attribution of a response to its context"
    return page("rcstat attribution", title, body, style=STYLE, data=data, script=SCRIPT)
