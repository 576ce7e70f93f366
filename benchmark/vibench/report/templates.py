"""Jinja2 templates of the static HTML pages (kept in Python so they ship with the package).

Everything is inline (CSS, a small sorting/filtering script); the pages load nothing from the
network. Every value is inserted through autoescaping ``{{ }}``; no ``|safe`` is used."""
from __future__ import annotations

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}h3{font-size:1.05em}
nav a{margin-right:1em}
table{border-collapse:collapse;font-size:12px;margin:.5em 0 1em}
th,td{border:1px solid #ddd;padding:2px 6px;white-space:nowrap}
th{background:#f3f3f3;cursor:pointer;position:sticky;top:0}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num,td.vb,td.delta{text-align:right;font-variant-numeric:tabular-nums}
td.best{font-weight:bold}td.second{text-decoration:underline}
td.vb{background:#eef5ff}td.syn{color:#7a5b00;font-style:italic}
td.ok{background:#d9f2d9}td.warn{background:#fff0c2}td.bad{background:#f8d0d0}
td.vbm{font-weight:bold}.caption{color:#555;font-size:.9em}.notes{font-size:.85em;color:#444}
.filter{margin:.2em 0}.wrap{overflow-x:auto;max-width:100%}
img{max-width:100%;border:1px solid #eee}.syn-banner{background:#fff0c2;padding:.5em}
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
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      if(i===col){th.setAttribute('aria-sort',dir);}else{th.removeAttribute('aria-sort');}});}
  window.vibenchSort=sortBy;
  document.querySelectorAll('table.sortable').forEach(function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      th.addEventListener('click',function(){
        var d=th.getAttribute('aria-sort')==='descending'?'ascending':'descending';sortBy(table,i,d);});});});
  function applyFilters(){var only=document.getElementById('only-vibench');
    document.querySelectorAll('table.sortable').forEach(function(table){
      var inp=document.querySelector('input[data-filter-for="'+table.id+'"]');
      var q=inp?inp.value.toLowerCase():'';
      Array.prototype.forEach.call(table.tBodies[0].rows,function(r){
        var ok=(q===''||r.textContent.toLowerCase().indexOf(q)>=0);
        if(only&&only.checked&&!r.hasAttribute('data-vb')){ok=false;}
        r.style.display=ok?'':'none';});});}
  document.querySelectorAll('input[data-filter-for]').forEach(function(i){i.addEventListener('input',applyFilters);});
  var o=document.getElementById('only-vibench'); if(o){o.addEventListener('change',applyFilters);}
})();
"""

TABLE = """{% macro render_table(t) %}
<h3 id="{{ t.id }}">{{ t.title }}</h3>
{% if t.caption %}<p class="caption">{{ t.caption }}</p>{% endif %}
<div class="filter">Filter: <input type="search" data-filter-for="tbl-{{ t.id }}" aria-label="filter {{ t.title }}"></div>
<div class="wrap"><table class="sortable" id="tbl-{{ t.id }}">
<thead><tr>{% for h in t.header %}<th scope="col">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in t.rows %}<tr{% if row.vb %} data-vb="1"{% endif %}>{% for c in row.cells %}<td{% if c.cls %} class="{{ c.cls }}"{% endif %}{% if c.value is not none %} data-v="{{ c.value }}"{% endif %}{% if c.title %} title="{{ c.title }}"{% endif %}>{{ c.text }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
{% if t.notes %}<ul class="notes">{% for n in t.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
{% endmacro %}"""

PAGE = """{% from "table.html" import render_table %}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title><style>{{ css }}</style></head>
<body>
<nav>{% for href, label in nav %}<a href="{{ href }}">{{ label }}</a>{% endfor %}</nav>
<h1>{{ title }}</h1>
{% for p in intro %}<p>{{ p }}</p>{% endfor %}
{% if synthetic %}<p class="syn-banner">Some vibench numbers on this page come from synthetic data (marked "(syn)"); they test the pipeline, not the methods.</p>{% endif %}
<p><label><input type="checkbox" id="only-vibench"> show only rows with vibench results</label></p>
{% for heading, tables in sections %}<h2>{{ heading }}</h2>
{% for t in tables %}{{ render_table(t) }}{% endfor %}{% endfor %}
{% if figures %}<h2 id="plots">Plots</h2>
{% for fig in figures %}<figure><img src="{{ fig.path }}" alt="{{ fig.alt }}"><figcaption>{{ fig.alt }}</figcaption></figure>
{% endfor %}{% endif %}
{% if grids or grid_notes %}<h2 id="retrieval">Retrieval examples</h2>
<p class="caption">Query (left) and its top-10 gallery items; green border = same identity, red = different.</p>
{% for fig in grids %}<figure><img src="{{ fig.path }}" alt="{{ fig.alt }}"><figcaption>{{ fig.alt }}</figcaption></figure>
{% endfor %}{% if grid_notes %}<ul class="notes">{% for n in grid_notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}{% endif %}
<script>{{ script }}</script>
</body></html>
"""
