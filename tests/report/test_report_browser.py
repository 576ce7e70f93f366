"""The site in a real headless chromium, at 1400 px and 390 px wide: the front page shows
numbers in the first screen, the table header stays visible after scrolling and the first
columns stay visible when scrolling sideways, sorting and filtering work, there is no console
error, and no request leaves the page's folder. Screenshots of the front page at both widths
are saved (to the test's tmp folder, and to $VIBENCH_SCREENSHOTS when set — docs/img/ holds
the committed ones, see docs/reports.md).

Drives plain ``chromium`` command lines (no extra Python packages): ``--dump-dom`` of the page
as written (console messages captured with ``--enable-logging=stderr``), ``--dump-dom`` of a
copy of the site with a probe script appended after the page's own script (it scrolls, clicks
headers, types a filter and writes what it measured into the DOM), and ``--screenshot``.
Skips where no chromium is installed."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]
HEIGHT = {1400: 900, 390: 844}

PROBE = """<script>
(function(){
  var out={};
  function col(t,i){return Array.prototype.filter.call(t.tBodies[0].rows,function(r){
      return r.style.display!=='none';}).map(function(r){
    return r.cells[i].getAttribute('data-v') || r.cells[i].textContent.trim();});}
  var t=document.querySelector('table.sortable'); var tw=t.closest('.tw');
  // 1. numbers in the first screen (before any scrolling)
  var vis=0; t.querySelectorAll('td[data-v]').forEach(function(td){var b=td.getBoundingClientRect();
    if(b.top>=0&&b.bottom<=innerHeight&&b.left>=0&&b.right<=innerWidth&&td.classList.contains('num')){vis++;}});
  out.firstScreenNumbers=vis;
  // 2. sticky header: scroll the table's container down, the header rows stay at its top
  var th0=t.tHead.rows[0].cells[0], leaf=t.tHead.rows[t.tHead.rows.length-1].cells[0];
  tw.scrollTop=600; var twb=tw.getBoundingClientRect();
  out.scrolled=tw.scrollTop; out.headTop=th0.getBoundingClientRect().top-twb.top;
  out.leafTop=leaf.getBoundingClientRect().top-twb.top;
  out.firstRowTop=t.tBodies[0].rows[0].getBoundingClientRect().top-twb.top;
  // 3. frozen columns: scroll sideways, the method column stays put
  var m=t.tBodies[0].rows[3].cells[1]; var before=m.getBoundingClientRect().left;
  tw.scrollLeft=400; out.scrolledX=tw.scrollLeft;
  out.methodShift=m.getBoundingClientRect().left-before;
  out.numShift=t.tBodies[0].rows[3].cells[3].getBoundingClientRect().left;
  tw.scrollTop=0; tw.scrollLeft=0;
  // 4. sorting on a leaf header of the grouped header (R1 of the first protocol)
  var r1=null; t.tHead.querySelectorAll('th[data-col]').forEach(function(th){
    if(r1===null&&th.textContent.trim()==='R1'){r1=th;}});
  var c=parseInt(r1.getAttribute('data-col'),10);
  r1.click(); out.desc=col(t,c); out.s1=r1.getAttribute('aria-sort');
  r1.click(); out.asc=col(t,c); out.s2=r1.getAttribute('aria-sort');
  var name=t.tHead.querySelector('th[data-col="1"]'); name.click(); name.click();
  out.names=col(t,1); out.s3=name.getAttribute('aria-sort');
  // 5. filtering
  var inp=document.querySelector('input[data-filter-for="'+t.id+'"]');
  inp.value='pmcm'; inp.dispatchEvent(new Event('input'));
  out.filtered=col(t,1); out.allMatch=Array.prototype.every.call(t.tBodies[0].rows,function(r){
    return r.style.display==='none'||r.textContent.toLowerCase().indexOf('pmcm')>=0;});
  out.count=document.querySelector('[data-count-for="'+t.id+'"]').textContent;
  inp.value=''; inp.dispatchEvent(new Event('input')); out.unfiltered=col(t,1).length;
  // 6. every resource the page loaded is inside its folder
  var base=location.href.replace(/[^\\/]*$/,'');
  out.resources=performance.getEntriesByType('resource').map(function(e){return e.name;});
  out.outside=out.resources.filter(function(u){return u.indexOf(base)!==0;});
  out.errors=window.__probeErrors||[];
  var pre=document.createElement('pre'); pre.id='probe-result'; pre.textContent=JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""
CATCH = """<script>window.__probeErrors=[];window.addEventListener('error',function(e){
window.__probeErrors.push(String(e.message));});</script>"""


def _chromium(args: list[str]) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="vibench-chromium-") as profile:
        return subprocess.run(["nice", "-n", "19", CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                               *args], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (install Debian's 'chromium' package to run the "
                    "browser tests)")
    return CHROMIUM


def _numbers(values: list[str]) -> list[float]:
    return [float(v) for v in values if re.fullmatch(r"-?\d+(\.\d+)?", v)]


def _probe(site: Path, page: str, width: int, tmp: Path) -> dict:
    copy = tmp / f"site-{width}"
    shutil.copytree(site, copy)
    html = (copy / page).read_text(encoding="utf-8")
    (copy / page).write_text(html.replace("<head>", "<head>" + CATCH, 1)
                             .replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    res = _chromium([f"--window-size={width},{HEIGHT[width]}", "--dump-dom",
                     (copy / page).as_uri()])
    m = re.search(r'<pre id="probe-result">(.*?)</pre>', res.stdout, re.S)
    assert m, res.stderr[-2000:]
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&")
                      .replace("&lt;", "<").replace("&gt;", ">"))


def test_pages_load_without_console_errors(chromium, rendered):
    for page in ("index.html", "sysu.html", "mixed.html", "costs.html", "paper-tables.html",
                 "pipeline-check.html", "provenance.html"):
        res = _chromium(["--enable-logging=stderr", "--v=0", "--dump-dom",
                         (rendered["out"] / page).as_uri()])
        assert res.returncode == 0, res.stderr[-2000:]
        assert "</main>" in res.stdout, page
        console = [ln for ln in res.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
        assert console == [], (page, console)


@pytest.mark.parametrize("width", [1400, 390])
def test_front_page_in_a_browser(chromium, rendered, tmp_path, width):
    r = _probe(rendered["out"], "index.html", width, tmp_path)
    print(json.dumps({k: v[:6] if isinstance(v, list) else v for k, v in r.items()}))
    assert r["errors"] == [] and r["outside"] == []
    # numbers in the first screen
    assert r["firstScreenNumbers"] >= 3
    # the header rows stay at the top of the scrolled table container, the rows scroll under
    assert r["scrolled"] > 300
    assert abs(r["headTop"]) <= 2 and 20 <= r["leafTop"] <= 32
    assert r["firstRowTop"] < -200
    # the method column stays while the numbers move (at 390 px the table is wider than the
    # screen; at 1400 px the first table fits)
    assert abs(r["methodShift"]) <= 1
    if width == 390:
        assert r["scrolledX"] > 100
    # sorting (numbers numerically, "—" last in both directions), then by name
    assert (r["s1"], r["s2"]) == ("descending", "ascending")
    desc, asc = _numbers(r["desc"]), _numbers(r["asc"])
    assert len(desc) > 20 and desc == sorted(desc, reverse=True) and asc == sorted(asc)
    names = [n.lower() for n in r["names"]]
    assert r["s3"] == "ascending"
    assert names.index("aligngan") < names.index("bit") < names.index("pmcm") < names.index("sgeil")
    # filtering
    assert "PMCM" in r["filtered"] and r["allMatch"]
    assert r["count"] == f"{len(r['filtered'])} rows" and r["unfiltered"] > len(r["filtered"])
    # a screenshot of the front page as written
    shot = tmp_path / f"front-{width}.png"
    res = _chromium([f"--screenshot={shot}", f"--window-size={width},{HEIGHT[width]}",
                     (rendered["out"] / "index.html").as_uri()])
    assert shot.exists() and shot.stat().st_size > 10_000, res.stderr[-2000:]
    if os.environ.get("VIBENCH_SCREENSHOTS"):
        dest = Path(os.environ["VIBENCH_SCREENSHOTS"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest / shot.name)
