"""Plots, retrieval grids and the `vibench report` command."""
from __future__ import annotations

import json
import shutil

import numpy as np
from PIL import Image

from vibench.cli import main
from vibench.report.grids import GREEN, RED, build_grids
from vibench.report.aggregate import load_store


def test_cli_renders_plots_grids_and_exports(store_factory, tmp_path, capsys):
    store = store_factory()
    out = tmp_path / "site"
    assert main(["report", "--results", str(store), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "wrote" in said and "index.html" in said
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert {"acc-vs-latency.png", "acc-vs-params-regdb-t2v.png", "cmc-sysu-all-single.png",
            "imbalance.png"} <= set(plots)
    # CMC curves for every protocol with a complete result (bit indoor is complete)
    assert "cmc-sysu-indoor-single.png" in plots
    grids = list((out / "grids").glob("*.png"))
    assert len(grids) == 1
    html = (out / "index.html").read_text(encoding="utf-8")
    assert f'src="grids/{grids[0].name}"' in html and 'src="plots/imbalance.png"' in html
    assert "skipped, no rankings file" in html


def test_grid_borders_follow_identity(store_factory, tmp_path):
    s = load_store(store_factory())
    figs, notes = build_grids(s, tmp_path, ["sysu-all-single"], n_queries=2, top_k=10)
    assert len(figs) == 1
    img = np.asarray(Image.open(figs[0][0]).convert("RGB"))
    # query 0 (pid 0) ranks gallery 0..9 (pids 0,0,0,0,1,1,...): 4 green borders then red
    row_y = 18 + 1  # inside the top border of the first row
    tw = 48 + 8
    colours = [tuple(img[row_y, 12 + j * tw + tw // 2]) for j in range(1, 11)]
    assert colours[:4] == [GREEN] * 4 and colours[4:] == [RED] * 6
    assert any("no rankings file" in n for n in notes)


def test_grid_skipped_with_note_when_images_missing(store_factory, tmp_path):
    root = store_factory()
    shutil.rmtree(root / "data" / "gallery")
    figs, notes = build_grids(load_store(root), tmp_path, ["sysu-all-single"])
    assert figs == []
    assert any("images unavailable" in n and "not found" in n for n in notes)


def test_cli_errors_name_the_folder(tmp_path, capsys):
    (tmp_path / "notastore").mkdir()
    assert main(["report", "--results", str(tmp_path / "notastore"), "--out",
                 str(tmp_path / "o"), "--no-plots"]) == 2
    assert "notastore: not a result store" in capsys.readouterr().err


def test_no_results_still_renders_every_table(tmp_path):
    out = tmp_path / "o"
    assert main(["report", "--results", str(tmp_path / "absent"), "--out", str(out),
                 "--no-plots"]) == 0
    doc = json.loads((out / "data" / "leaderboard-regdb.json").read_text(encoding="utf-8"))
    assert doc["rows"] and all(r["Source"] != "vibench" for r in doc["rows"])
    assert len(list((out / "data").glob("paper-*.csv"))) == 30
