"""Plots, retrieval grids and the `vibench report` command."""
from __future__ import annotations

import json
import shutil

import numpy as np
from PIL import Image

from vibench.cli import main
from vibench.report.grids import GREEN, RED, build_grids
from vibench.report.aggregate import load_store


COUNTS = {"bit": {"params": {"sysu": 133_429_761}, "effective": {"sysu": 85_810_944}}}


def test_cli_renders_site_plots_grids_and_exports(store_factory, tmp_path, capsys, monkeypatch):
    import vibench.report.costs as costs

    monkeypatch.setattr(costs, "paper_config_counts", lambda methods: COUNTS)
    store = store_factory(real=True)
    site, tables = tmp_path / "site", tmp_path / "tables"
    assert main(["report", "--results", str(store), "--site", str(site), "--out",
                 str(tables)]) == 0
    said = capsys.readouterr().out
    assert "wrote" in said and "index.html" in said
    plots = sorted(p.name for p in (site / "plots").glob("*.png"))
    # real data: latency scatter per (device, config, precision), CMC with one panel per method
    assert {"acc-vs-latency-Test-GPU-paper-beef00-fp32.png",
            "acc-vs-latency-NVIDIA-L20-paper-not-stated.png", "cmc-sysu-all-single.png",
            "cmc-regdb-v2t.png"} <= set(plots)
    # synthetic data: trained-vs-untrained CMC on the pipeline-check page only
    assert "pipeline-cmc-sysu-indoor-single.png" in plots
    assert "cmc-sysu-indoor-single.png" not in plots  # no real result there
    grids = sorted(p.name for p in (site / "grids").glob("*.jpg"))
    assert len(grids) == 2 and not list((site / "grids").glob("*.png"))
    plots_html = (site / "plots.html").read_text(encoding="utf-8")
    pipe_html = (site / "pipeline-check.html").read_text(encoding="utf-8")
    real_grid = [g for g in grids if f'src="grids/{g}"' in plots_html]
    syn_grid = [g for g in grids if f'src="grids/{g}"' in pipe_html]
    assert len(real_grid) == len(syn_grid) == 1 and real_grid != syn_grid
    assert 'src="plots/pipeline-cmc-sysu-all-single.png"' in pipe_html
    assert "pipeline-cmc" not in plots_html
    assert "skipped, no rankings file" in plots_html
    # the repository's tables: Markdown and CSV/JSON only
    assert not list(tables.rglob("*.html")) and not list(tables.rglob("*.png"))
    assert (tables / "report.md").exists() and (tables / "data" / "status.csv").exists()
    # the archive holds every cell's spec, metrics and rankings, and nothing else
    import tarfile
    with tarfile.open(site / "rankings-archive.tar.gz") as tar:
        names = tar.getnames()
    assert all(n.startswith("rankings-archive/cells/") for n in names)
    assert sum(n.endswith("/rankings/sysu-all-single/trial-0.npz") for n in names) == 2
    assert sum(n.endswith("/spec.json") for n in names) == len(list(store.glob("cells/*/DONE")))
    assert not any(n.endswith(("model.pt", "features.npz")) for n in names)


def test_grid_borders_follow_identity(store_factory, tmp_path):
    s = load_store(store_factory())
    figs, notes = build_grids(s.cells, tmp_path, ["sysu-all-single"], n_queries=2, top_k=10)
    assert len(figs) == 1
    img = np.asarray(Image.open(figs[0][0]).convert("RGB")).astype(int)
    # query 0 (pid 0) ranks gallery 0..9 (pids 0,0,0,0,1,1,...): 4 green borders then red
    row_y = 18 + 1  # inside the top border of the first row
    tw = 48 + 8
    colours = [img[row_y, 12 + j * tw + tw // 2] for j in range(1, 11)]

    def near(c, ref):  # JPEG: within a few levels of the drawn colour
        return int(np.abs(c - np.array(ref)).max()) <= 40
    assert all(near(c, GREEN) for c in colours[:4]) and all(near(c, RED) for c in colours[4:])
    assert any("no rankings file" in n for n in notes)


def test_grid_skipped_with_note_when_images_missing(store_factory, tmp_path):
    root = store_factory()
    shutil.rmtree(root / "data" / "gallery")
    figs, notes = build_grids(load_store(root).cells, tmp_path, ["sysu-all-single"])
    assert figs == []
    assert any("images unavailable" in n and "not found" in n for n in notes)


def test_cli_errors_name_the_folder(tmp_path, capsys):
    (tmp_path / "notastore").mkdir()
    assert main(["report", "--results", str(tmp_path / "notastore"), "--out",
                 str(tmp_path / "o"), "--no-plots"]) == 2
    assert "notastore: not a result store" in capsys.readouterr().err


def test_no_results_still_renders_every_table(tmp_path, monkeypatch):
    import vibench.report.costs as costs

    monkeypatch.setattr(costs, "paper_config_counts", lambda methods: COUNTS)
    out = tmp_path / "o"
    assert main(["report", "--results", str(tmp_path / "absent"), "--out", str(out),
                 "--no-plots"]) == 0
    doc = json.loads((out / "data" / "leaderboard-regdb.json").read_text(encoding="utf-8"))
    assert doc["rows"] and all(r["Source"] != "vibench" for r in doc["rows"])
    assert len(list((out / "data").glob("paper-*.csv"))) == 30
