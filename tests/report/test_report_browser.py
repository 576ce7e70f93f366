"""The HTML in a real headless chromium: loads without console errors, sorting works (a header
is clicked and the resulting row order checked), and a screenshot is taken.

Drives plain ``chromium`` command lines (no extra Python packages): ``--dump-dom`` of the page
as written (console messages captured with ``--enable-logging=stderr``), ``--dump-dom`` of a
copy with a test script appended after the page's own script that clicks headers and writes
the row order into the DOM, and ``--screenshot``. Skips where no chromium is installed."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]

PROBE = """<script>
(function(){
  function col(t,i){return Array.prototype.map.call(t.tBodies[0].rows,function(r){
    return r.cells[i].getAttribute('data-v') || r.cells[i].textContent.trim();});}
  var t=document.getElementById('tbl-lb-sysu-all-single');
  var ths=t.tHead.rows[0].cells, r1=-1, meth=0;
  for(var i=0;i<ths.length;i++){if(ths[i].textContent.trim()==='R1'){r1=i;}}
  ths[r1].click(); var desc=col(t,r1), s1=ths[r1].getAttribute('aria-sort');
  ths[r1].click(); var asc=col(t,r1), s2=ths[r1].getAttribute('aria-sort');
  ths[meth].click(); ths[meth].click(); var names=col(t,meth), s3=ths[meth].getAttribute('aria-sort');
  var r10=-1; for(var j=0;j<ths.length;j++){if(ths[j].textContent.trim()==='R10'){r10=j;}}
  ths[r10].click(); var r10d=col(t,r10); ths[r10].click(); var r10a=col(t,r10);
  var out=document.createElement('pre'); out.id='probe-result';
  out.textContent=JSON.stringify({desc:desc,asc:asc,s1:s1,s2:s2,names:names,s3:s3,
                                  r10d:r10d,r10a:r10a,
                                  errors:window.__probeErrors||[]});
  document.body.appendChild(out);
})();
</script>"""
CATCH = """<script>window.__probeErrors=[];window.addEventListener('error',function(e){
window.__probeErrors.push(String(e.message));});</script>"""


def _chromium(args: list[str]) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="vibench-chromium-") as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (install Debian's 'chromium' package to run the "
                    "browser test)")
    return CHROMIUM


def _numbers(values: list[str]) -> list[float]:
    return [float(v) for v in values if re.fullmatch(r"-?\d+(\.\d+)?", v)]


def test_page_loads_sorts_and_screenshots(chromium, rendered, tmp_path):
    page = rendered["out"] / "index.html"
    # 1. the page as written: no console errors
    res = _chromium(["--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()])
    assert res.returncode == 0, res.stderr[-2000:]
    assert "tbl-lb-sysu-all-single" in res.stdout
    console = [ln for ln in res.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == [], console

    # 2. sorting: click headers in the real browser, read the order back
    html = page.read_text(encoding="utf-8")
    probe = tmp_path / "index.html"
    for sub in ("plots", "grids"):
        if (page.parent / sub).exists():
            shutil.copytree(page.parent / sub, tmp_path / sub)
    probe.write_text(html.replace("<head>", "<head>" + CATCH, 1)
                     .replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    res = _chromium(["--dump-dom", probe.as_uri()])
    m = re.search(r'<pre id="probe-result">(.*?)</pre>', res.stdout, re.S)
    assert m, res.stderr[-2000:]
    result = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&")
                        .replace("&lt;", "<").replace("&gt;", ">"))
    assert result["errors"] == []
    print(json.dumps({k: v[:8] if isinstance(v, list) else v for k, v in result.items()}))
    assert (result["s1"], result["s2"]) == ("descending", "ascending")
    desc, asc = _numbers(result["desc"]), _numbers(result["asc"])
    assert len(desc) > 20 and desc == sorted(desc, reverse=True) and asc == sorted(asc)
    # missing values ("—") sort last in both directions
    for order in (result["r10d"], result["r10a"]):
        first_dash = order.index("—")
        assert set(order[first_dash:]) == {"—"} and first_dash > 0
    assert _numbers(result["r10a"]) == sorted(_numbers(result["r10a"]))
    # a text column sorts alphabetically (second click = ascending)
    names = [n.lower() for n in result["names"]]
    assert result["s3"] == "ascending" and names[0] <= names[-1]
    assert names.index("bit") < names.index("pmt") < names.index("sgeil")

    # 3. a screenshot
    shot = tmp_path / "screenshot.png"
    res = _chromium([f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri()])
    assert shot.exists() and shot.stat().st_size > 10_000, res.stderr[-2000:]
