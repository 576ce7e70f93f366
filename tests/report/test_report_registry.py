"""The reported-results registry against paper_tables.md: every table, every cell, every number."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from vibench.errors import VibenchError
from vibench.paths import REPO_ROOT, RESULTS_DIR
from vibench.report import transcribe
from vibench.report.reported import find_conflicts, load_registry, load_report_config, parse_cell

PAPER_TABLES = Path(__file__).parent / "data" / "paper_tables.md"
SHARED = REPO_ROOT.parent / "shared" / "research" / "paper_tables.md"
NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")


def _md_tables() -> dict[str, tuple[list[str], list[list[str]]]]:
    """Independent minimal parse: table id -> (header, rows) of paper_tables.md."""
    out: dict[str, tuple[list[str], list[list[str]]]] = {}
    current = None
    for line in PAPER_TABLES.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^### (\S+) — ", line)
        if m:
            current = m.group(1)
            out[current] = ([], [])
            continue
        if line.startswith("## "):
            current = None
        if current and line.startswith("|"):
            cells = [c.strip() for c in line.strip()[1:-1].split("|")]
            if all(set(c) == {"-"} and len(c) >= 3 for c in cells):
                continue
            if not out[current][0]:
                out[current][0].extend(cells)
            else:
                out[current][1].append(cells)
    return out


def _plain(cell: str) -> str:
    return re.sub(r"^\*\*(.*)\*\*$|^<u>(.*)</u>$", lambda m: m.group(1) or m.group(2), cell)


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_copy_matches_shared_research_file():
    if not SHARED.exists():
        pytest.skip(f"{SHARED} not present (the committed copy is used)")
    assert PAPER_TABLES.read_text(encoding="utf-8") == SHARED.read_text(encoding="utf-8")


def test_every_table_and_cell_is_in_the_registry(registry):
    md = _md_tables()
    assert len(md) == 30
    assert set(md) == set(registry.tables)
    for tid, (header, rows) in md.items():
        t = registry.tables[tid]
        assert list(t.label_columns) + [c.label for c in t.columns] == header, tid
        assert len(t.rows) == len(rows), tid
        for row, cells in zip(t.rows, rows):
            got = list(row.labels) + list(row.cells)
            assert got == [_plain(c) for c in cells], (tid, cells[0])


def test_every_number_has_a_record(registry):
    """Each number in a data cell is a record with that table, column and exact text."""
    recs = registry.records()
    index = {(r.table, r.row, r.column): r for r in recs.itertuples()}
    md = _md_tables()
    n = 0
    for tid, (header, rows) in md.items():
        t = registry.tables[tid]
        k = len(t.label_columns)
        for i, cells in enumerate(rows):
            for label, cell in zip(header[k:], cells[k:]):
                rec = index[(tid, i, label)]
                assert rec.text == _plain(cell)
                nums = NUMBER.findall(_plain(cell))
                if nums and "/" not in cell:
                    assert rec.value == float(nums[0].replace(",", "")), (tid, label, cell)
                    n += 1
    assert n > 1900


def test_record_fields_and_flags(registry):
    recs = registry.records()
    for col in ("paper", "table", "method", "dataset", "protocol", "metric", "value", "rerank",
                "reproduced", "copied", "row_label", "column"):
        assert col in recs.columns
    bit_r = recs[(recs.table == "BIT-T1") & (recs.row_label == "BIT (ours)^R | CVPR'26")]
    assert set(bit_r.rerank) == {"k-reciprocal"} and set(bit_r.method) == {"BIT"}
    pmt = recs[(recs.table == "BIT-T7") & recs.row_label.str.startswith("Original | PMT")]
    assert pmt.reproduced.all() and not pmt.copied.any()
    nfs = recs[(recs.table == "BIT-T1") & (recs.method == "NFS")]
    assert nfs.copied.all()
    imb = recs[(recs.table == "BIT-T7") & (recs.row_label == "20% Vis Reduce | BIT (ours)")]
    assert set(imb.variant) == {"sysu-imb-vis20"}
    assert set(imb.text) == {"77.51 (+13.67)", "78.32 (+18.01)", "85.71 (+17.69)", "86.43 (+15.86)"}
    r = recs[(recs.table == "BIT-T1") & (recs.column == "IS-MS mAP")]
    assert set(r.protocol) == {"sysu-indoor-multi"} and set(r.metric) == {"mAP"}
    abl = recs[recs.table == "BIT-T4"]
    assert set(abl.protocol) == {"sysu-all-single"}
    assert recs[recs.table == "AMINet-T2"].query("column == 'RegDB R1'").protocol.isna().all()


def test_protocol_names_exist_in_protocol_files(registry):
    """Every protocol the registry names is defined in protocols/*.yaml (or is an imbalance
    variant name)."""
    names = set()
    for p in (REPO_ROOT / "protocols").glob("*.yaml"):
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
        names |= {x["name"] for x in doc.get("protocols", [])}
    if not names:
        pytest.skip("protocols/*.yaml not present")
    recs = registry.records()
    used = set(recs.protocol.dropna()) | set(recs.variant.dropna())
    assert used <= names, used - names
    cfg = load_report_config()
    grouped = {p for ps in cfg.groups.values() for p in ps}
    assert grouped <= names, grouped - names


def test_conflicts_found(registry):
    c = find_conflicts(registry.records())
    aminet = c[(c.method == "AMINet") & (c.metric == "mAP") & (c.protocol == "sysu-all-single")]
    assert set(aminet.text) == {"69.71", "66.11"}
    pmt = c[(c.method == "PMT") & (c.protocol == "sysu-indoor-single") & (c.metric == "rank1")]
    assert {"72.10", "73.24"} <= set(pmt.text)
    # equal numbers written differently ("74.7" vs "74.70") are not a conflict by themselves
    assert c[(c.method == "BIT")].empty


def test_transcribe_tool_reproduces_committed_files(tmp_path):
    assert transcribe.main([str(PAPER_TABLES), str(tmp_path)]) == 0
    for p in sorted(tmp_path.glob("*.yaml")):
        committed = RESULTS_DIR / "reported" / p.name
        assert yaml.safe_load(p.read_text("utf-8")) == yaml.safe_load(committed.read_text("utf-8"))


def test_parse_cell():
    assert parse_cell("80.53 (+11.3)") == 80.53
    assert parse_cell("8,240") == 8240.0
    assert parse_cell("82.0M") == 82.0
    assert parse_cell("100") == 100.0
    assert parse_cell("-") is None and parse_cell("1 / 1") is None


def _copy_registry(tmp_path: Path) -> Path:
    d = tmp_path / "reported"
    shutil.copytree(RESULTS_DIR / "reported", d)
    return d


def test_bad_cell_is_an_error_naming_the_file(tmp_path):
    d = _copy_registry(tmp_path)
    p = d / "bit.yaml"
    p.write_text(p.read_text("utf-8").replace("'80.53'", "'80.5.3'", 1), "utf-8")
    with pytest.raises(VibenchError, match=r"bit\.yaml.*BIT-T1.*'80\.5\.3'"):
        load_registry(d)


def test_wrong_cell_count_and_bad_yaml(tmp_path):
    d = _copy_registry(tmp_path)
    p = d / "pmcm.yaml"
    doc = yaml.safe_load(p.read_text("utf-8"))
    doc["tables"][0]["rows"][0]["cells"].pop()
    p.write_text(yaml.safe_dump(doc), "utf-8")
    with pytest.raises(VibenchError, match=r"pmcm\.yaml table PMCM-T1 row 1: 15 cells, expected 16"):
        load_registry(d)
    p.write_text("tables: [", "utf-8")
    with pytest.raises(VibenchError, match=r"pmcm\.yaml: not valid YAML"):
        load_registry(d)
