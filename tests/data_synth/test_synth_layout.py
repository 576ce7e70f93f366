"""The tiny synthetic trees are in exactly the real on-disk layouts (protocols.md 1.1, 2.1, 3.1)."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from vibench.data.synth import get_scale, read_marker

SYSU_RGB, SYSU_IR = (1, 2, 4, 5), (3, 6)


def _ids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split("\n")[0].split(",")]


def _index(path: Path) -> list[tuple[str, int]]:
    rows = [line.split(" ") for line in path.read_text().splitlines()]
    assert all(len(r) == 2 for r in rows), path
    return [(p, int(label)) for p, label in rows]


def _folders(root: Path, cam_dir: str) -> dict[int, list[str]]:
    """pid -> sorted file names of <root>/<cam_dir>/<pid:04d>/."""
    out = {}
    for d in sorted((root / cam_dir).iterdir()):
        assert d.is_dir() and len(d.name) == 4 and d.name.isdigit(), d
        out[int(d.name)] = sorted(f.name for f in d.iterdir())
    return out


def test_sysu_layout(sysu_root: Path) -> None:
    counts = get_scale("sysu", "tiny").counts
    assert sorted(p.name for p in sysu_root.iterdir() if not p.name.startswith(".")) == [
        "cam1", "cam2", "cam3", "cam4", "cam5", "cam6", "exp"]
    train, val, test = (_ids(sysu_root / f"exp/{n}_id.txt") for n in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (counts.n_train, counts.n_val, counts.n_test)
    assert not (set(train) & set(val)) and not (set(train + val) & set(test))
    assert sorted(_ids(sysu_root / "exp/available_id.txt")) == sorted(train + val + test)
    cams = {c: _folders(sysu_root, f"cam{c}") for c in range(1, 7)}
    everyone = set(train + val + test)
    for c, folders in cams.items():
        assert set(folders) <= everyone
        for names in folders.values():   # contiguous numbering 0001.jpg, 0002.jpg, ...
            assert names == [f"{n:04d}.jpg" for n in range(1, len(names) + 1)]
    assert any(set(cams[c]) != everyone for c in cams), "not all ids are in all cameras"
    assert set(cams[1]) == set(cams[2]), "cams 1 and 2 see the same (indoor) ids"
    for pid in everyone:   # every id has both modalities; every test id has a query
        assert any(pid in cams[c] for c in SYSU_IR) and any(pid in cams[c] for c in SYSU_RGB)
    indoor = set(cams[1]) & set(test)
    assert len(indoor) == counts.indoor_test >= 20    # indoor single-shot gallery >= 20 ids
    assert len(set(test)) >= 20
    assert all(len(cams[1][p]) >= 1 for p in indoor)
    summary = read_marker(sysu_root)["summary"]
    n_rgb = sum(len(v) for c in SYSU_RGB for v in cams[c].values())
    n_ir = sum(len(v) for c in SYSU_IR for v in cams[c].values())
    assert (summary["visible"], summary["infrared"]) == (n_rgb, n_ir)
    with Image.open(sysu_root / "cam1" / f"{min(cams[1]):04d}" / "0001.jpg") as im:
        assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (32, 64))


def test_regdb_layout(regdb_root: Path) -> None:
    counts = get_scale("regdb", "tiny").counts
    assert sorted(p.name for p in regdb_root.iterdir() if not p.name.startswith(".")) == [
        "Thermal", "Visible", "idx"]
    for top, n in (("Visible", counts.n_visible), ("Thermal", counts.n_thermal)):
        folders = sorted(int(d.name) for d in (regdb_root / top).iterdir())
        assert folders == list(range(1, counts.n_ids + 1))
        assert all(len(list((regdb_root / top / str(i)).iterdir())) == n for i in folders)
    expected = {f"{p}_{m}_{k}.txt" for p in ("train", "test") for m in ("visible", "thermal")
                for k in range(1, 11)}
    assert {p.name for p in (regdb_root / "idx").iterdir()} == expected
    train_sets = set()
    for k in range(1, 11):
        ids_of = {}
        for part in ("train", "test"):
            vis = _index(regdb_root / f"idx/{part}_visible_{k}.txt")
            th = _index(regdb_root / f"idx/{part}_thermal_{k}.txt")
            assert [lab for _, lab in vis] == [lab for _, lab in th], (part, k)
            labels = sorted({lab for _, lab in vis})
            assert labels == list(range(counts.n_ids // 2))          # re-indexed from 0
            assert len(vis) == counts.n_ids // 2 * counts.n_visible
            for path, _ in vis + th:
                assert (regdb_root / path).is_file(), path
            assert all(p.startswith("Visible/") for p, _ in vis)
            assert all(p.startswith("Thermal/") for p, _ in th)
            ids_of[part] = {int(p.split("/")[1]) for p, _ in vis}
        assert not ids_of["train"] & ids_of["test"]
        assert len(ids_of["train"] | ids_of["test"]) == counts.n_ids
        train_sets.add(frozenset(ids_of["train"]))
    assert len(train_sets) == 10, "10 different seeded splits"
    with Image.open(regdb_root / "Visible/1/0001_v_01.bmp") as im:
        assert (im.format, im.mode, im.size) == ("BMP", "RGB", (32, 64))


def test_llcm_layout(llcm_root: Path) -> None:
    counts = get_scale("llcm", "tiny").counts
    assert sorted(p.name for p in llcm_root.iterdir() if not p.name.startswith(".")) == [
        "idx", "test_nir", "test_vis", "train_nir", "train_vis"]
    assert sorted(p.name for p in (llcm_root / "idx").iterdir()) == [
        "test_id.txt", "train_nir.txt", "train_vis.txt"]
    test = _ids(llcm_root / "idx/test_id.txt")
    assert len(test) == counts.n_test
    cams = {g: sorted(int(d.name[3:]) for d in (llcm_root / g).iterdir())
            for g in ("train_vis", "train_nir", "test_vis", "test_nir")}
    assert cams["test_nir"] == [1, 2, 4, 5, 6, 7, 8, 9]
    assert cams["test_vis"] == list(range(1, 10))
    assert sorted(set(cams["train_nir"]) | set(cams["test_nir"])) == list(range(1, 10))
    assert sorted(set(cams["train_vis"]) | set(cams["test_vis"])) == list(range(1, 10))
    test_pids = {int(d.name) for g in ("test_vis", "test_nir") for c in (llcm_root / g).iterdir()
                 for d in c.iterdir()}
    assert test_pids == set(test)
    vis = _index(llcm_root / "idx/train_vis.txt")
    nir = _index(llcm_root / "idx/train_nir.txt")
    assert all(p.startswith("train_vis/cam") for p, _ in vis)
    assert all(p.startswith("train_nir/cam") for p, _ in nir)
    label_of: dict[int, int] = {}
    for path, label in vis + nir:
        assert (llcm_root / path).is_file(), path
        pid = int(path.split("/")[2])
        assert label_of.setdefault(pid, label) == label, "one label per id in both files"
    assert sorted(label_of.values()) == list(range(counts.n_train))
    assert not set(label_of) & set(test)
    assert {int(p.split("/")[2]) for p, _ in vis} == {int(p.split("/")[2]) for p, _ in nir}
    some = next((llcm_root / "test_vis/cam1").iterdir())
    with Image.open(next(some.iterdir())) as im:
        assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (32, 64))
