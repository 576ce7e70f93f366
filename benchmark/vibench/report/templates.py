"""Jinja2 templates of the static site (kept in Python so they ship with the package).

Everything is inline (CSS, a small sorting/filtering script); the pages load nothing from the
network and link only to files of the site (relative links). Every value is inserted through
autoescaping ``{{ }}``; no ``|safe`` is used.

Layout rules that make the tables usable: each table sits in its own scroll container
(``.tw``: ``overflow:auto`` and a ``max-height``), which is the container ``position:sticky``
refers to, so the header rows stay visible while the table scrolls vertically and the frozen
first column(s) while it scrolls sideways. No ancestor of a table has an ``overflow`` of its
own. The grouped header row has a fixed height so the leaf row can stick just below it."""
from __future__ import annotations

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d1d1f;line-height:1.4}
header.top{background:#12355b;color:#fff;padding:.5em 1em}
header.top .brand{font-weight:600;margin-right:1em;color:#fff;text-decoration:none}
nav.tabs{display:flex;gap:.2em;overflow-x:auto;white-space:nowrap;padding:.3em 1em 0;background:#12355b}
nav.tabs a{color:#dfe8f3;text-decoration:none;padding:.35em .7em;border-radius:6px 6px 0 0;font-size:.9em}
nav.tabs a.on{background:#fff;color:#12355b;font-weight:600}
main{padding:.6em 1em 2em;max-width:1500px}
h1{font-size:1.35em;margin:.4em 0}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccd}
h3{font-size:1em;margin:1.2em 0 .3em}
.lede{margin:.2em 0 .6em;color:#333}
.toc{font-size:.9em;columns:2 16em;margin:.3em 0 1em;padding-left:1.2em}
.caption{color:#555;font-size:.85em;margin:.2em 0}.notes{font-size:.8em;color:#444}
.tools{display:flex;gap:.8em;align-items:center;flex-wrap:wrap;font-size:.85em;margin:.2em 0}
.tools input[type=search]{padding:2px 6px;width:14em;max-width:60vw}
.tw{overflow:auto;max-height:75vh;max-width:100%;border:1px solid #ccd;border-radius:4px;margin:.3em 0 .5em}
table{border-collapse:separate;border-spacing:0;font-size:12.5px}
th,td{border-right:1px solid #e3e6ea;border-bottom:1px solid #e3e6ea;padding:3px 7px;white-space:nowrap;background:#fff}
thead th{position:sticky;top:0;z-index:2;background:#eef1f5;text-align:center;font-weight:600}
thead tr.g th{height:26px}
thead tr.l th{top:26px}
thead th[data-col]{cursor:pointer}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
.fz0{position:sticky;left:0;z-index:1;min-width:3.2em;max-width:3.2em;width:3.2em}
.fz1{position:sticky;left:3.2em;z-index:1;box-shadow:2px 0 0 #ccd}
table.f1 .fz0{min-width:0;max-width:none;width:auto;box-shadow:2px 0 0 #ccd}
thead th.fz0,thead th.fz1{z-index:4}
td.num,td.vb,td.delta,td.rank{text-align:right;font-variant-numeric:tabular-nums}
td.rank{color:#555}td.m{font-weight:600}
tr.vbrow td{background:#eef6ff}td.vb a{color:#0b4f9c}
td.conflict{background:#fff6da}td.missing{color:#999}
td.best{font-weight:bold}td.second{text-decoration:underline}
td.ok{background:#d9f2d9}td.warn{background:#fff0c2}td.bad{background:#f8d0d0}
td.st{text-align:center;font-size:11.5px}td.st-real{background:#cdebd0}td.st-synthetic{background:#fff2c6}
td.st-incomplete{background:#f6dede}td.st-none{color:#888}
td.st-as_written{background:#cdebd0}td.st-official_code{background:#dce9f7}td.st-guessed{background:#fff2c6}td.st-deviates{background:#f6dede}td.code{font-family:monospace;font-size:11.5px}
td.up{color:#1d6b2a}td.down{color:#a11}td.verdict.yes{background:#cdebd0}td.verdict.no{background:#f6dede}
tr:target td{outline:2px solid #e0a800}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:1em}
figure{margin:0}figure img{width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.8em;color:#444}
.banner{background:#fff2c6;border:1px solid #e8cf7a;padding:.5em .8em;border-radius:4px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(15em,1fr));gap:.6em;padding:0;list-style:none}
.cards li{border:1px solid #dde;border-radius:6px;padding:.5em .7em;font-size:.9em}
footer{font-size:.78em;color:#555;border-top:1px solid #dde;padding:.6em 1em}
@media (max-width:600px){main{padding:.4em .5em}h1{font-size:1.15em}.lede{font-size:.9em}table{font-size:12px}}
"""

SCRIPT = r"""
(function(){
  function key(td){var v=td.getAttribute('data-v');
    if(v!==null&&v!==''){return {n:true,v:parseFloat(v)};}
    var t=td.textContent.trim(); if(t===''||t==='\u2014'||t==='-'){return {n:true,v:null};}
    return {n:false,v:t.toLowerCase()};}
  function sortBy(table,col,dir){var tb=table.tBodies[0];var rows=Array.prototype.slice.call(tb.rows);
    rows.sort(function(a,b){var x=key(a.cells[col]),y=key(b.cells[col]);
      if(x.v===null&&y.v===null)return 0; if(x.v===null)return 1; if(y.v===null)return -1;
      var c=(x.n&&y.n)?(x.v-y.v):String(x.v).localeCompare(String(y.v)); return dir==='ascending'?c:-c;});
    rows.forEach(function(r){tb.appendChild(r);});
    table.tHead.querySelectorAll('th[data-col]').forEach(function(th){
      if(parseInt(th.getAttribute('data-col'),10)===col){th.setAttribute('aria-sort',dir);}else{th.removeAttribute('aria-sort');}});}
  window.vibenchSort=sortBy;
  document.querySelectorAll('table.sortable').forEach(function(table){
    table.tHead.querySelectorAll('th[data-col]').forEach(function(th){
      th.addEventListener('click',function(){var col=parseInt(th.getAttribute('data-col'),10);
        var d=th.getAttribute('aria-sort')==='descending'?'ascending':'descending';sortBy(table,col,d);});});});
  function applyFilters(){var only=document.getElementById('only-vibench');
    document.querySelectorAll('table.sortable').forEach(function(table){
      var inp=document.querySelector('input[data-filter-for="'+table.id+'"]');
      var q=inp?inp.value.toLowerCase():''; var shown=0;
      Array.prototype.forEach.call(table.tBodies[0].rows,function(r){
        var ok=(q===''||r.textContent.toLowerCase().indexOf(q)>=0);
        if(only&&only.checked&&!r.classList.contains('vbrow')){ok=false;}
        r.style.display=ok?'':'none'; if(ok){shown++;}});
      var c=document.querySelector('[data-count-for="'+table.id+'"]'); if(c){c.textContent=shown+' rows';}});}
  document.querySelectorAll('input[data-filter-for]').forEach(function(i){i.addEventListener('input',applyFilters);});
  var o=document.getElementById('only-vibench'); if(o){o.addEventListener('change',applyFilters);}
})();
"""

TABLE = """{% macro render_table(t) %}
<h3 id="{{ t.id }}">{{ t.title }}</h3>
{% if t.caption %}<p class="caption">{{ t.caption }}</p>{% endif %}
<div class="tools"><label>Filter <input type="search" data-filter-for="tbl-{{ t.id }}" aria-label="filter {{ t.title }}"></label><span data-count-for="tbl-{{ t.id }}">{{ t.rows|length }} rows</span></div>
<div class="tw"><table class="sortable f{{ t.frozen }}" id="tbl-{{ t.id }}">
<thead>{% if t.groups %}<tr class="g">{% for g in t.groups %}{% if g.label %}<th colspan="{{ g.span }}" scope="colgroup"{% if g.title %} title="{{ g.title }}"{% endif %}>{{ g.label }}</th>{% else %}{% for h in g.leaves %}<th rowspan="2" scope="col" data-col="{{ h.col }}"{% if h.cls %} class="{{ h.cls }}"{% endif %}{% if h.title %} title="{{ h.title }}"{% endif %}>{{ h.label }}</th>{% endfor %}{% endif %}{% endfor %}</tr>
<tr class="l">{% for g in t.groups %}{% if g.label %}{% for h in g.leaves %}<th scope="col" data-col="{{ h.col }}"{% if h.cls %} class="{{ h.cls }}"{% endif %}{% if h.title %} title="{{ h.title }}"{% endif %}>{{ h.label }}</th>{% endfor %}{% endif %}{% endfor %}</tr>
{% else %}<tr>{% for h in t.leaves %}<th scope="col" data-col="{{ h.col }}"{% if h.cls %} class="{{ h.cls }}"{% endif %}{% if h.title %} title="{{ h.title }}"{% endif %}>{{ h.label }}</th>{% endfor %}</tr>{% endif %}</thead>
<tbody>
{% for row in t.rows %}<tr{% if row.id %} id="{{ row.id }}"{% endif %}{% if row.vb %} class="vbrow"{% endif %}>{% for c in row.cells %}<td{% if c.cls %} class="{{ c.cls }}"{% endif %}{% if c.value is not none %} data-v="{{ c.value }}"{% endif %}{% if c.title %} title="{{ c.title }}"{% endif %}>{% if c.links %}{% for text, href in c.links %}{% if not loop.first %}, {% endif %}<a href="{{ href }}">{{ text }}</a>{% endfor %}{% else %}{{ c.text }}{% endif %}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
{% if t.notes %}<ul class="notes">{% for n in t.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
{% endmacro %}"""

PAGE = """{% from "table.html" import render_table %}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · vibench</title><style>{{ css }}</style></head>
<body>
<header class="top"><a class="brand" href="index.html">vibench leaderboards</a></header>
<nav class="tabs" aria-label="pages">{% for href, label in nav %}<a href="{{ href }}"{% if href == current %} class="on" aria-current="page"{% endif %}>{{ label }}</a>{% endfor %}</nav>
<main>
<h1>{{ title }}</h1>
{% for p in intro %}<p class="lede">{{ p }}</p>{% endfor %}
{% if banner %}<p class="banner">{{ banner }}</p>{% endif %}
{% if toc|length > 2 %}<ul class="toc">{% for href, label in toc %}<li><a href="{{ href }}">{{ label }}</a></li>{% endfor %}</ul>{% endif %}
{% if vb_switch %}<p class="tools"><label><input type="checkbox" id="only-vibench"> show only vibench rows</label></p>{% endif %}
{% for s in sections %}{% if s.heading %}<h2 id="{{ s.id }}">{{ s.heading }}</h2>{% endif %}
{% for p in s.paragraphs %}<p class="caption">{{ p }}</p>{% endfor %}
{% if s.bullets %}<ul>{% for b in s.bullets %}<li>{{ b }}</li>{% endfor %}</ul>{% endif %}
{% if s.cards %}<ul class="cards">{% for href, label, text in s.cards %}<li><a href="{{ href }}">{{ label }}</a><br>{{ text }}</li>{% endfor %}</ul>{% endif %}
{% for t in s.tables %}{{ render_table(t) }}{% endfor %}
{% if s.figures %}<div class="figs">{% for fig in s.figures %}<figure><a href="{{ fig.path }}"><img src="{{ fig.path }}" alt="{{ fig.alt }}" loading="lazy"></a><figcaption>{{ fig.alt }}</figcaption></figure>{% endfor %}</div>{% endif %}
{% endfor %}
</main>
<footer>{% for f in footer %}<div>{{ f }}</div>{% endfor %}</footer>
<script>{{ script }}</script>
</body></html>
"""
