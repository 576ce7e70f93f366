"""Loaders on small hand-made trees in the real layouts (docs/datasets.md#layouts)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vibench.cli import main as vibench_main
from vibench.data import load_dataset
from vibench.data.check import check_dataset
from vibench.data.layout import Scan, cam_from_filename, cam_from_path, normalize_relpath, read_id_file
from vibench.data.records import ImageRecord
from vibench.errors import VibenchError

# ---------------------------------------------------------------------------------------------
# tree builders (tiny images; the layouts are the real ones)


def write_image(path: Path, mode: str = "RGB", size: tuple[int, int] = (6, 12), value: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 255 - value, value // 2)
    Image.new(mode, size, color).save(path)


#: pid -> {cam: number of images}
SYSU_LAYOUT: dict[int, dict[int, int]] = {
    1: {1: 2, 3: 1},          # train
    2: {2: 1, 6: 2},          # train
    3: {4: 1, 3: 1},          # val
    4: {1: 1, 2: 1, 3: 2, 6: 1},  # test
    5: {5: 1, 6: 1},          # test
    7: {1: 1},                # in no id file: ignored
}


def make_sysu(root: Path, layout: dict[int, dict[int, int]] = SYSU_LAYOUT,
              train: str = "1,2", val: str = "3", test: str = "4,5") -> Path:
    for cam in range(1, 7):
        (root / f"cam{cam}").mkdir(parents=True, exist_ok=True)
    for pid, cams in layout.items():
        for cam, n in cams.items():
            for k in range(1, n + 1):
                write_image(root / f"cam{cam}" / f"{pid:04d}" / f"{k:04d}.jpg", "L" if cam in (3, 6) else "RGB")
    (root / "exp").mkdir(parents=True, exist_ok=True)
    for name, text in (("train_id.txt", train), ("val_id.txt", val), ("test_id.txt", test)):
        (root / "exp" / name).write_text(text + "\n")
    return root


def make_regdb(root: Path, n_ids: int = 4, per: int = 2) -> Path:
    """Ids 1..n_ids with `per` images per modality; split k trains on half the ids (labels
    re-indexed from 0 in each file) and tests on the other half."""
    for pid in range(1, n_ids + 1):
        for k in range(per):
            write_image(root / "Visible" / str(pid) / f"female_v_{pid}_{k}.bmp")
            write_image(root / "Thermal" / str(pid) / f"female_t_{pid}_{k}.bmp", "L")
    idx = root / "idx"
    idx.mkdir(parents=True, exist_ok=True)
    ids = list(range(1, n_ids + 1))
    for split in range(1, 11):
        half = ids[: n_ids // 2] if split % 2 else ids[n_ids // 2:]
        rest = [p for p in ids if p not in half]
        for part, chosen in (("train", half), ("test", rest)):
            for mod, folder, tag in (("visible", "Visible", "v"), ("thermal", "Thermal", "t")):
                lines = [f"{folder}/{pid}/female_{tag}_{pid}_{k}.bmp {label}"
                         for label, pid in enumerate(chosen) for k in range(per)]
                (idx / f"{part}_{mod}_{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def make_llcm(root: Path) -> Path:
    # training images: two ids, vis cams 1/2, nir cam 4
    train_vis, train_nir = [], []
    for label, pid in enumerate((11, 12)):
        for cam in (1, 2):
            rel = f"train_vis/cam{cam}/{pid:04d}/{pid:04d}_c{cam:02d}_0001.jpg"
            write_image(root / rel)
            train_vis.append(f"{rel} {label}")
        rel = f"train_nir/cam4/{pid:04d}/{pid:04d}_c04_0001.jpg"
        write_image(root / rel, "L")
        train_nir.append(f"{rel} {label}")
    (root / "idx").mkdir(parents=True, exist_ok=True)
    (root / "idx" / "train_vis.txt").write_text("\n".join(train_vis) + "\n")
    (root / "idx" / "train_nir.txt").write_text("\n".join(train_nir) + "\n")
    (root / "idx" / "test_id.txt").write_text("21,22\n")
    for cam in range(1, 10):
        (root / "test_vis" / f"cam{cam}").mkdir(parents=True, exist_ok=True)
    for cam in (1, 2, 4, 5, 6, 7, 8, 9):
        (root / "test_nir" / f"cam{cam}").mkdir(parents=True, exist_ok=True)
    # pid 21: vis cam1 x2, cam9 x1; nir cam1 x1. pid 22: vis cam3 x1; nir cam9 x1.
    for rel in ("test_vis/cam1/0021/a.jpg", "test_vis/cam1/0021/b.jpg", "test_vis/cam9/0021/a.jpg",
                "test_vis/cam3/0022/a.jpg"):
        write_image(root / rel)
    for rel in ("test_nir/cam1/0021/a.jpg", "test_nir/cam9/0022/a.jpg"):
        write_image(root / rel, "L")
    # ignored: a NIR cam3 folder (not in DEEN's camera list) and a non-test id
    write_image(root / "test_nir/cam3/0021/a.jpg", "L")
    write_image(root / "test_vis/cam2/0099/a.jpg")
    return root


# ---------------------------------------------------------------------------------------------
# SYSU-MM01


def test_sysu_records_ids_cams_modalities(tmp_path: Path) -> None:
    index = load_dataset("sysu", make_sysu(tmp_path / "SYSU-MM01"))
    assert index.name == "sysu" and index.splits == (0,)
    train, test = index.train(), index.test()
    # hand count from SYSU_LAYOUT: ids 1,2 (train) + 3 (val) -> 3+3+2 images; ids 4,5 -> 5+2
    assert len(train) == 8 and len(test) == 7
    assert {r.pid for r in train} == {1, 2, 3} and {r.pid for r in test} == {4, 5}
    assert sum(r.modality == "infrared" for r in test) == 4  # pid4 cam3 x2, cam6 x1; pid5 cam6
    assert all((r.modality == "infrared") == (r.cam in (3, 6)) for r in train + test)
    assert test[0] == ImageRecord("cam1/0004/0001.jpg", 4, 1, "visible")
    # deterministic order: (pid, cam, path)
    assert list(test) == sorted(test, key=lambda r: (r.pid, r.cam, r.path))
    assert [r.path for r in test[:4]] == ["cam1/0004/0001.jpg", "cam2/0004/0001.jpg",
                                          "cam3/0004/0001.jpg", "cam3/0004/0002.jpg"]
    assert index.meta["train_ids"] == [1, 2] and index.meta["val_ids"] == [3]
    assert index.meta["test_ids"] == [4, 5] and index.meta["training_ids"] == [1, 2, 3]
    assert "rand_perm_cam" not in index.meta


def test_sysu_root_containing_cam(tmp_path: Path) -> None:
    """docs/datasets.md#datasets: a root path with 'cam' in it must not confuse the parse."""
    root = make_sysu(tmp_path / "cam6" / "my_cam3_data" / "cam2")
    index = load_dataset("sysu", root)
    plain = load_dataset("sysu", make_sysu(tmp_path / "plain"))
    assert index.train() == plain.train() and index.test() == plain.test()
    assert index.manifest_hash() == plain.manifest_hash()
    assert all(not r.path.startswith("/") for r in index.test())


def test_sysu_id_file_first_line_only(tmp_path: Path) -> None:
    root = make_sysu(tmp_path / "s", train="2, 1,2", test="4,5\n1,2,3")
    index = load_dataset("sysu", root)
    assert index.meta["train_ids"] == [1, 2] and index.meta["test_ids"] == [4, 5]


def test_sysu_rand_perm_cam_reader(tmp_path: Path) -> None:
    from scipy.io import savemat

    from vibench.data.sysu import read_rand_perm_cam

    root = make_sysu(tmp_path / "s")
    cells = np.empty((6, 1), dtype=object)
    for c in range(6):
        per_id = np.empty((1, 3), dtype=object)
        for i in range(3):
            per_id[0, i] = np.zeros((0, 0))
        cells[c, 0] = per_id
    rows = np.array([[2, 1, 3], [3, 2, 1]] + [[1, 2, 3]] * 8, dtype=float)  # 10 x 3, id 2 in cam 1
    cells[0, 0][0, 1] = rows
    savemat(root / "exp" / "rand_perm_cam.mat", {"rand_perm_cam": cells})

    index = load_dataset("sysu", root)
    assert index.meta["rand_perm_cam"] == str(root / "exp" / "rand_perm_cam.mat")
    perm = read_rand_perm_cam(index.meta["rand_perm_cam"])
    assert sorted(perm) == [1, 2, 3, 4, 5, 6]
    assert list(perm[1]) == [2] and perm[2] == {}
    assert perm[1][2].dtype == np.int64 and perm[1][2].shape == (10, 3)
    assert perm[1][2][1].tolist() == [3, 2, 1]


def test_sysu_rand_perm_cam_rejects_non_permutation(tmp_path: Path) -> None:
    from scipy.io import savemat

    from vibench.data.sysu import read_rand_perm_cam

    cells = np.empty((6, 1), dtype=object)
    for c in range(6):
        per_id = np.empty((1, 1), dtype=object)
        per_id[0, 0] = np.array([[1.0, 1.0]])  # 1 x 2 but not a permutation of 1..2
        cells[c, 0] = per_id
    savemat(tmp_path / "bad.mat", {"rand_perm_cam": cells})
    with pytest.raises(VibenchError, match="not permutations"):
        read_rand_perm_cam(tmp_path / "bad.mat")
    savemat(tmp_path / "other.mat", {"x": np.ones(2)})
    with pytest.raises(VibenchError, match="no variable 'rand_perm_cam'"):
        read_rand_perm_cam(tmp_path / "other.mat")


# ---------------------------------------------------------------------------------------------
# RegDB


def test_regdb_splits_labels_cams(tmp_path: Path) -> None:
    index = load_dataset("regdb", make_regdb(tmp_path / "RegDB"))
    assert index.splits == tuple(range(1, 11))
    for split in index.splits:
        train, test = index.train(split), index.test(split)
        assert len(train) == 8 and len(test) == 8  # 2 ids x 2 images x 2 modalities
        assert {r.pid for r in train} == {0, 1} == {r.pid for r in test}  # the label column
        for r in train + test:
            assert (r.cam, r.modality) == ((1, "visible") if r.path.startswith("Visible/") else (2, "infrared"))
    # split 1 tests on ids 3,4 -> labels 0,1; split 2 on ids 1,2
    t1 = index.test(1)
    assert ImageRecord("Visible/3/female_v_3_0.bmp", 0, 1, "visible") in t1
    assert ImageRecord("Thermal/4/female_t_4_1.bmp", 1, 2, "infrared") in t1
    assert ImageRecord("Visible/1/female_v_1_0.bmp", 0, 1, "visible") in index.test(2)
    with pytest.raises(ValueError):
        index.train()  # RegDB has 10 splits: the caller must name one


def test_regdb_index_paths_with_leading_slash(tmp_path: Path) -> None:
    root = make_regdb(tmp_path / "r")
    f = root / "idx" / "test_visible_1.txt"
    f.write_text("".join("/" + line + "\n" for line in f.read_text().splitlines()))
    index = load_dataset("regdb", root)
    assert all(not r.path.startswith("/") for r in index.test(1))
    assert len(index.test(1)) == 8


# ---------------------------------------------------------------------------------------------
# LLCM


def test_llcm_train_and_test_records(tmp_path: Path) -> None:
    index = load_dataset("llcm", make_llcm(tmp_path / "LLCM"))
    train, test = index.train(), index.test()
    assert len(train) == 6
    assert ImageRecord("train_vis/cam2/0012/0012_c02_0001.jpg", 1, 2, "visible") in train
    assert ImageRecord("train_nir/cam4/0011/0011_c04_0001.jpg", 0, 4, "infrared") in train
    assert [(r.path, r.pid, r.cam, r.modality) for r in test] == [
        ("test_nir/cam1/0021/a.jpg", 21, 1, "infrared"),
        ("test_vis/cam1/0021/a.jpg", 21, 1, "visible"),
        ("test_vis/cam1/0021/b.jpg", 21, 1, "visible"),
        ("test_vis/cam9/0021/a.jpg", 21, 9, "visible"),
        ("test_vis/cam3/0022/a.jpg", 22, 3, "visible"),
        ("test_nir/cam9/0022/a.jpg", 22, 9, "infrared"),
    ]
    assert index.meta["test_ids"] == [21, 22]


def test_llcm_root_containing_cam(tmp_path: Path) -> None:
    """DEEN parses the first 'cam' of the absolute path (path parsing); vibench uses relative paths."""
    a = load_dataset("llcm", make_llcm(tmp_path / "cam7x" / "LLCM_cam5"))
    b = load_dataset("llcm", make_llcm(tmp_path / "LLCM"))
    assert a.test() == b.test() and a.train() == b.train()


# ---------------------------------------------------------------------------------------------
# names and errors


def test_unknown_dataset_name_did_you_mean(tmp_path: Path) -> None:
    with pytest.raises(VibenchError, match=r"unknown dataset 'sysu-mm01'.*did you mean 'sysu'"):
        load_dataset("sysu-mm01", tmp_path)
    with pytest.raises(VibenchError, match=r"did you mean 'regdb'"):
        load_dataset("regbd", tmp_path)


def test_load_dataset_lists_every_problem(tmp_path: Path) -> None:
    root = make_sysu(tmp_path / "s")
    (root / "exp" / "val_id.txt").write_text("\n")
    (root / "exp" / "train_id.txt").unlink()
    for f in (root / "cam5").rglob("*.jpg"):
        f.unlink()
    (root / "cam5" / "0005").rmdir()
    (root / "cam5").rmdir()
    with pytest.raises(VibenchError) as err:
        load_dataset("sysu", root)
    msg = str(err.value)
    assert "3 problem(s)" in msg
    assert f"{root / 'exp' / 'train_id.txt'}: missing id file" in msg
    assert f"{root / 'exp' / 'val_id.txt'}: empty id file" in msg
    assert f"{root / 'cam5'}: missing folder" in msg


def test_missing_root(tmp_path: Path) -> None:
    for name in ("sysu", "regdb", "llcm"):
        with pytest.raises(VibenchError, match="dataset root does not exist"):
            load_dataset(name, tmp_path / "nope")


# ---------------------------------------------------------------------------------------------
# `vibench data check`: every problem at once, exit codes, --json


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = vibench_main(["data", "check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_clean_trees_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vibench.io import sha256_file

    root = make_sysu(tmp_path / "sysu")
    code, out, err = run_cli(capsys, "--dataset", "sysu", "--root", str(root))
    assert code == 0, out + err
    assert "train: 3 ids, 8 images (infrared 4, visible 4; cam1 2, cam2 1, cam3 2, cam4 1, cam6 2)" in out
    assert "test: 2 ids, 7 images (infrared 4, visible 3; cam1 1, cam2 1, cam3 2, cam5 1, cam6 2)" in out
    assert f"{sha256_file(root / 'exp' / 'test_id.txt')}  exp/test_id.txt" in out
    assert "OK: no problems found" in out

    code, out, _ = run_cli(capsys, "--dataset", "regdb", "--root", str(make_regdb(tmp_path / "regdb")), "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["problems"] == []
    assert len(report["index_files"]) == 40
    split3 = report["summary"]["per_split"]["3"]
    assert split3["train"]["per_camera"] == {"1": 4, "2": 4} and split3["test"]["ids"] == 2
    assert split3["test"]["per_modality"] == {"infrared": 4, "visible": 4}

    code, out, _ = run_cli(capsys, "--dataset", "llcm", "--root", str(make_llcm(tmp_path / "llcm")), "--json")
    report = json.loads(out)
    assert code == 0 and report["summary"]["test"]["per_camera"] == {"1": 3, "3": 1, "9": 2}
    assert sorted(report["index_files"]) == ["idx/test_id.txt", "idx/train_nir.txt", "idx/train_vis.txt"]
    assert report["manifest_hash"] == load_dataset("llcm", tmp_path / "llcm").manifest_hash()


def test_check_sysu_reports_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_sysu(tmp_path / "cam_root")
    (root / "exp" / "test_id.txt").unlink()       # missing id file
    (root / "exp" / "val_id.txt").write_text("")  # empty id file
    for f in (root / "cam4").rglob("*.jpg"):        # missing camera folder
        f.unlink()
    for d in sorted((root / "cam4").iterdir()):
        d.rmdir()
    (root / "cam4").rmdir()
    code, out, err = run_cli(capsys, "--dataset", "sysu", "--root", str(root))
    assert code == 1
    assert f"{root / 'exp' / 'test_id.txt'}: missing id file" in out
    assert f"{root / 'exp' / 'val_id.txt'}: empty id file" in out
    assert f"{root / 'cam4'}: missing folder (expected cam4/ under the dataset root)" in out
    assert "3 problem(s)" in out and "3 problem(s) found" in err


def test_check_regdb_reports_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_regdb(tmp_path / "r")
    (root / "idx" / "test_thermal_3.txt").unlink()                          # missing index file
    (root / "Visible" / "1" / "female_v_1_0.bmp").unlink()                  # line -> missing image
    t5 = root / "idx" / "train_thermal_5.txt"                                # label disagreement
    t5.write_text(t5.read_text().replace(" 1\n", " 7\n"))
    bad = root / "idx" / "train_visible_2.txt"                               # malformed line
    bad.write_text(bad.read_text() + "only_one_field\n")
    code, out, _ = run_cli(capsys, "--dataset", "regdb", "--root", str(root), "--json")
    assert code == 1
    problems = {(p["path"], p["problem"].split(" (")[0]) for p in json.loads(out)["problems"]}
    idx = root / "idx"
    expected = {
        (str(idx / "test_thermal_3.txt"), "missing index file"),
        (str(t5), "labels disagree with idx/train_visible_5.txt: 1 label(s) only in visible [1], "
                  "1 only in thermal [7]"),
        (f"{bad}:5", "malformed line 'only_one_field'"),
    }
    # Visible/1 is a training id in odd splits (1,3,5,7,9) and a test id in even ones
    for split in range(1, 11):
        part = "train" if split % 2 else "test"
        expected.add((f"{idx / f'{part}_visible_{split}.txt'}:1",
                      f"image Visible/1/female_v_1_0.bmp does not exist under {root}"))
    assert problems == expected


def test_check_llcm_reports_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_llcm(tmp_path / "l")
    (root / "idx" / "train_nir.txt").unlink()
    (root / "idx" / "test_id.txt").write_text("\n\n")
    (root / "train_vis/cam1/0011/0011_c01_0001.jpg").unlink()
    for f in sorted((root / "test_nir").rglob("*"), reverse=True):
        f.unlink() if f.is_file() else f.rmdir()
    (root / "test_nir").rmdir()
    report = check_dataset("llcm", root)
    got = [str(p) for p in report.problems]
    assert got == [
        f"{root / 'idx/train_vis.txt'}:1: image train_vis/cam1/0011/0011_c01_0001.jpg does not exist under {root}",
        f"{root / 'idx/train_nir.txt'}: missing index file (expected lines '<relative image path> <label>')",
        f"{root / 'idx/test_id.txt'}: empty id file (expected comma-separated ids on the first line)",
        f"{root / 'test_nir'}: missing folder (expected test_nir/ under the dataset root)",
    ]
    assert not report.ok and report.manifest_hash is None


def test_check_missing_root_and_unknown_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--dataset", "regdb", "--root", str(tmp_path / "absent"), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["problems"] == [{"path": str(tmp_path / "absent"),
                                   "problem": "dataset root does not exist (expected a directory)"}]
    code, out, err = run_cli(capsys, "--dataset", "sysumm01", "--root", str(tmp_path))
    assert code == 2 and "did you mean 'sysu'" in err


def test_check_deep_finds_corrupt_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_sysu(tmp_path / "s")
    good = root / "cam1" / "0004" / "0001.jpg"
    (root / "cam3" / "0004" / "0002.jpg").write_bytes(good.read_bytes()[:40])  # truncated JPEG
    (root / "cam6" / "0002" / "0001.jpg").write_bytes(b"not an image at all")
    code, _, _ = run_cli(capsys, "--dataset", "sysu", "--root", str(root))
    assert code == 0  # a shallow check does not decode
    code, out, _ = run_cli(capsys, "--dataset", "sysu", "--root", str(root), "--deep", "--json")
    report = json.loads(out)
    assert code == 1 and report["deep"] is True
    assert sorted(p["path"] for p in report["problems"]) == [
        str(root / "cam3" / "0004" / "0002.jpg"), str(root / "cam6" / "0002" / "0001.jpg")]
    assert all("unreadable or corrupt image" in p["problem"] for p in report["problems"])


def test_data_group_lists_synth_lazily(capsys: pytest.CaptureFixture[str]) -> None:
    code = vibench_main(["data", "--help"])
    out = capsys.readouterr().out
    assert code == 0 and "check" in out and "synth" in out


def test_sysu_overlapping_and_non_integer_ids(tmp_path: Path) -> None:
    root = make_sysu(tmp_path / "s", val="3,4")
    report = check_dataset("sysu", root)
    assert [str(p) for p in report.problems] == [
        f"{root / 'exp/test_id.txt'}: test id(s) [4] also listed as train/val ids (expected disjoint splits)"]
    (root / "exp" / "train_id.txt").write_text("1,two,3\n")
    report = check_dataset("sysu", root)
    assert str(report.problems[0]) == (f"{root / 'exp/train_id.txt'}: non-integer id(s) ['two'] on the first "
                                       "line (expected e.g. '1,2,3')")


# ---------------------------------------------------------------------------------------------
# parsing properties


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 9999), min_size=1, max_size=30), st.sampled_from([",", ", ", " ,"]))
def test_id_line_parses_to_sorted_unique_ids(ids: list[int], sep: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "ids.txt").write_text(sep.join(map(str, ids)) + "\n99999\n")
        scan = Scan(Path(d))
        assert read_id_file(scan, "ids.txt") == sorted(set(ids))
        assert not scan.problems


@given(st.lists(st.sampled_from(["a", "cam3", "..", ".", "", "0001", "cam12x"]), min_size=1, max_size=6))
def test_normalized_paths_stay_inside_the_root(parts: list[str]) -> None:
    norm = normalize_relpath("/".join(parts))
    if norm is not None:
        assert not norm.startswith("/") and ".." not in norm.split("/") and "//" not in norm
        assert norm != "."


def test_cam_from_path_uses_folders_only() -> None:
    assert cam_from_path("test_nir/cam4/0012/cam9_0001.jpg") == 4
    assert cam_from_path("train/cam1/x/cam7/0001/a.jpg") == 7
    assert cam_from_path("Visible/12/cam3.bmp") is None
    assert cam_from_path("camera/0001/a.jpg") is None


def test_regdb_empty_index_file(tmp_path: Path) -> None:
    root = make_regdb(tmp_path / "r")
    (root / "idx" / "train_thermal_7.txt").write_text("\n")
    report = check_dataset("regdb", root)
    assert [str(p) for p in report.problems] == [
        f"{root / 'idx/train_thermal_7.txt'}: empty index file (expected lines '<relative image path> <label>')",
        f"{root / 'idx/train_thermal_7.txt'}: labels disagree with idx/train_visible_7.txt: 2 label(s) only "
        "in visible [0, 1], 0 only in thermal [] (expected the same label set)",
    ]


def test_lazy_subcommand_imported_only_when_invoked(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import vibench.commands.data as data_cli

    monkeypatch.setitem(data_cli.LAZY_COMMANDS, "synth", ("vibench.data.no_such_module:synth", "Generate."))
    assert vibench_main(["data", "--help"]) == 0 and "synth" in capsys.readouterr().out
    code, out, _ = run_cli(capsys, "--dataset", "sysu", "--root", str(make_sysu(tmp_path / "s")))
    assert code == 0 and "OK: no problems found" in out  # check works without the generator
    assert vibench_main(["data", "synth", "--dataset", "sysu"]) == 1
    assert "`vibench data synth` is unavailable" in capsys.readouterr().err


def test_llcm_train_camera_from_real_file_names(tmp_path: Path) -> None:
    """Real LLCM training paths have no camK folder: the camera is the c<NN> file-name token."""
    root = make_llcm(tmp_path / "l")
    rels = ["nir/0031/0031_c06_s185535_f7010_nir.jpg", "nir/0031/0031_x_nir.jpg"]
    for rel in rels:
        write_image(root / rel, "L")
    (root / "idx" / "train_nir.txt").write_text("".join(f"{rel} 5\n" for rel in rels))
    report = check_dataset("llcm", root)
    assert report.ok and len(report.warnings) == 1 and "1 training path(s) name no camera" in str(report.warnings[0])
    nir = [r for r in load_dataset("llcm", root).train() if r.modality == "infrared"]
    assert [(r.path, r.pid, r.cam) for r in nir] == [(rels[1], 5, 0), (rels[0], 5, 6)]
    assert cam_from_filename("vis/0001/0001_c12_s1_f2_vis.jpg") == 12
    assert cam_from_filename("cam1/0001/c3.jpg") is None  # the first token is the pid


def test_regdb_uneven_label_counts_warn_only(tmp_path: Path) -> None:
    root = make_regdb(tmp_path / "r")
    f = root / "idx" / "test_thermal_4.txt"
    f.write_text("".join(line + "\n" for line in f.read_text().splitlines()[:-1]))  # label 1: 1 image
    report = check_dataset("regdb", root)
    assert report.ok
    assert [str(w) for w in report.warnings] == [
        f"{f}: 1 label(s) have different image counts than in idx/test_visible_4.txt, e.g. [1]"]
