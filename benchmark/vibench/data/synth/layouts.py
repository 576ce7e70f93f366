"""What goes where: the file plan of a synthetic SYSU-MM01, RegDB or LLCM tree in the real
on-disk layout (protocols.md sections 1.1, 2.1, 3.1).

A plan lists every image (relative path, identity row, camera row, modality) and the text of
every id / index file; rendering and writing are done elsewhere (`vibench.data.synth.writer`).
Identity `pid` is stored at identity row `pid - 1` (ids are 1..N in every dataset).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

from vibench.data.synth.scales import LlcmCounts, RegdbCounts, ScaleSpec, SysuCounts
from vibench.data.synth.scenes import CameraSpec

SYSU_CAMERAS: tuple[CameraSpec, ...] = (
    CameraSpec(1, False, 0, "indoor"),      # indoor room 1
    CameraSpec(2, False, 1, "indoor"),      # indoor room 2
    CameraSpec(3, True, 1, "ir_dark"),      # indoor room 2, dark: the same place as cam2
    CameraSpec(4, False, 2, "outdoor"),     # outdoor gate
    CameraSpec(5, False, 3, "outdoor"),     # outdoor garden
    CameraSpec(6, True, 4, "ir_outdoor"),   # outdoor passage
)
REGDB_CAMERAS: tuple[CameraSpec, ...] = (CameraSpec(1, False, 0, "outdoor"), CameraSpec(2, True, 0, "thermal"))
_LLCM_VIS_LIGHT = ("outdoor", "lowlight", "indoor", "lowlight", "outdoor", "lowlight", "indoor",
                   "lowlight", "outdoor")
#: LLCM: rows 0..8 = VIS cams 1..9, rows 9..17 = NIR cams 1..9; camera K is one place in both.
LLCM_CAMERAS: tuple[CameraSpec, ...] = tuple(
    CameraSpec(k, False, k - 1, _LLCM_VIS_LIGHT[k - 1]) for k in range(1, 10)
) + tuple(CameraSpec(k, True, k - 1, "nir") for k in range(1, 10))
LLCM_TEST_NIR_CAMS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 8, 9)   # no NIR cam3 in the test set


@dataclass(frozen=True)
class Plan:
    """Every image of a tree (parallel arrays, in writing order) and every text file."""

    cameras: tuple[CameraSpec, ...]
    paths: tuple[str, ...]
    who: np.ndarray              # identity row (pid - 1)
    cam: np.ndarray              # row in `cameras`
    texts: dict[str, str]        # relative path -> content
    n_ids: int
    image_format: str            # "JPEG" or "BMP"
    pairs: tuple[np.ndarray, np.ndarray] | None = None   # (dst, src): same capture, same pose
    blobs: dict[str, bytes] = field(default_factory=dict)  # relative path -> binary content

    @property
    def infrared(self) -> np.ndarray:
        return np.array([c.infrared for c in self.cameras])[self.cam]


def folder_sizes(rng: np.random.Generator, n_folders: int, per_folder: tuple[int, int],
                 total: int | None = None) -> np.ndarray:
    """Images per folder: uniform in `per_folder`, or, with `total`, at least per_folder[0]
    each and exactly `total` in all (the rest spread at random)."""
    lo, hi = per_folder
    if total is None:
        return rng.integers(lo, hi + 1, n_folders)
    extra = total - lo * n_folders
    if extra < 0:
        raise ValueError(f"{n_folders} folders of >= {lo} images exceed the total {total}")
    weights = rng.gamma(2.0, 1.0, n_folders)
    return lo + rng.multinomial(extra, weights / weights.sum())


def _id_line(ids: np.ndarray) -> str:
    return ",".join(str(int(i)) for i in np.sort(ids)) + "\n"


def _expand(folders: list[tuple[str, int, int]], sizes: np.ndarray, name: str
            ) -> tuple[list[str], list[int], list[int]]:
    """(folder, pid, camera row) x size -> paths, identity rows, camera rows."""
    paths: list[str] = []
    who: list[int] = []
    cam: list[int] = []
    for (folder, pid, row), size in zip(folders, sizes):
        paths.extend(f"{folder}/{name.format(pid=pid, n=n)}" for n in range(1, int(size) + 1))
        who.extend([pid - 1] * int(size))
        cam.extend([row] * int(size))
    return paths, who, cam


def _at_least_one(rng: np.random.Generator, present: np.ndarray, cols: list[int],
                  fill: list[int]) -> None:
    """Rows of `present` false in all of `cols` become true in a random one of `fill`, in place."""
    empty = ~present[:, cols].any(axis=1)
    pick = np.array(fill)[rng.integers(0, len(fill), int(empty.sum()))]
    present[np.flatnonzero(empty), pick] = True


def plan_sysu(rng: np.random.Generator, c: SysuCounts) -> Plan:
    """SYSU-MM01: cam1..cam6/<pid:04d>/<n:04d>.jpg, exp/{train,val,test,available}_id.txt and
    exp/rand_perm_cam.mat.

    Indoor ids are seen by cams 1 and 2 (the same ids, like the real data); cams 4/5/3/6 see an
    id with probability 0.9/0.9/0.85/0.9; every id has at least one RGB and one IR folder (so
    every test id has a query in cam3 or cam6 and a gallery image in cams 1, 2, 4 or 5)."""
    n = c.n_train + c.n_val + c.n_test
    order = rng.permutation(np.arange(1, n + 1))
    train, val, test = np.split(order, [c.n_train, c.n_train + c.n_val])
    seen = rng.random((n, 6)) < np.array([0.0, 0.0, 0.85, 0.9, 0.9, 0.9])
    n_indoor = int(round(c.indoor_fraction_train * (c.n_train + c.n_val)))
    indoor = np.concatenate([rng.choice(np.concatenate([train, val]), n_indoor, replace=False),
                             rng.choice(test, c.indoor_test, replace=False)])
    seen[indoor - 1, 0:2] = True
    _at_least_one(rng, seen, [0, 1, 3, 4], fill=[3, 4])   # cams 1/2 only ever together
    _at_least_one(rng, seen, [2, 5], fill=[2, 5])
    texts = {f"exp/{name}_id.txt": _id_line(ids) for name, ids in
             (("train", train), ("val", val), ("test", test), ("available", order))}
    paths: list[str] = []
    who: list[int] = []
    cam: list[int] = []
    sizes: dict[tuple[int, int], int] = {}
    for infrared, per_folder, total in ((False, c.visible_per_folder, c.visible_total),
                                        (True, c.infrared_per_folder, c.infrared_total)):
        folders = [(f"cam{spec.number}/{pid:04d}", pid, row)
                   for row, spec in enumerate(SYSU_CAMERAS) if spec.infrared == infrared
                   for pid in range(1, n + 1) if seen[pid - 1, row]]
        counts = folder_sizes(rng, len(folders), per_folder, total)
        sizes.update({(row + 1, pid): int(k) for (_, pid, row), k in zip(folders, counts)})
        p, w, k = _expand(folders, counts, "{n:04d}.jpg")
        paths += p
        who += w
        cam += k
    blobs = {"exp/rand_perm_cam.mat": rand_perm_cam(rng, sizes, n)}
    return Plan(SYSU_CAMERAS, tuple(paths), np.array(who), np.array(cam), texts, n, "JPEG",
                blobs=blobs)


def rand_perm_cam(rng: np.random.Generator, sizes: dict[tuple[int, int], int], n_ids: int,
                  n_trials: int = 10) -> bytes:
    """SYSU's exp/rand_perm_cam.mat (protocols.md section 1.3, Sampler B): a 6x1 cell; cell c
    holds one entry per id (indexed by id - 1), an n_trials x n_images matrix whose rows are
    seeded permutations of the 1-based image numbers, or an empty matrix when the id is absent.
    The MAT header's creation date is replaced by a fixed text (byte-identical output)."""
    from scipy.io import savemat  # lazy: only SYSU needs it

    cells = np.empty((6, 1), dtype=object)
    for c in range(1, 7):
        entries = np.empty((n_ids, 1), dtype=object)
        for pid in range(1, n_ids + 1):
            k = sizes.get((c, pid), 0)
            entries[pid - 1, 0] = (np.argsort(rng.random((n_trials, k)), axis=1) + 1.0
                                   if k else np.zeros((0, 0)))
        cells[c - 1, 0] = entries
    buf = io.BytesIO()
    savemat(buf, {"rand_perm_cam": cells})
    header = b"MATLAB 5.0 MAT-file, written by vibench.data.synth".ljust(116, b" ")
    return header + buf.getvalue()[116:]


def regdb_splits(rng: np.random.Generator, n_ids: int, n_trials: int) -> list[np.ndarray]:
    """`n_trials` different half/half splits of ids 1..n_ids: the sorted training ids of each."""
    seen: set[tuple[int, ...]] = set()
    splits: list[np.ndarray] = []
    while len(splits) < n_trials:
        train = np.sort(rng.permutation(np.arange(1, n_ids + 1))[: n_ids // 2])
        if tuple(train) not in seen:
            seen.add(tuple(train))
            splits.append(train)
    return splits


def plan_regdb(rng: np.random.Generator, c: RegdbCounts) -> Plan:
    """RegDB: Visible/<id>/..bmp, Thermal/<id>/..bmp, idx/{train,test}_{visible,thermal}_{k}.txt.

    Visible image k and thermal image k of an id are one capture (the same pose), like the real
    co-located camera pair. Each trial k = 1..n_trials splits the ids half/half; labels are
    re-indexed from 0 by ascending id within each file, so visible and thermal label lists of a
    trial are identical."""
    if c.n_ids % 2 or c.n_ids < 4:
        raise ValueError(f"RegDB needs an even number of ids >= 4, not {c.n_ids}")
    folders = {"visible": [], "thermal": []}
    paths: list[str] = []
    who: list[int] = []
    cam: list[int] = []
    for row, (modality, top, tag, count) in enumerate((("visible", "Visible", "v", c.n_visible),
                                                        ("thermal", "Thermal", "t", c.n_thermal))):
        for pid in range(1, c.n_ids + 1):
            names = [f"{top}/{pid}/{pid:04d}_{tag}_{n:02d}.bmp" for n in range(1, count + 1)]
            folders[modality].append(names)
            paths += names
            who += [pid - 1] * count
            cam += [row] * count
    n_pair = min(c.n_visible, c.n_thermal)
    vis_rows = (np.arange(c.n_ids)[:, None] * c.n_visible + np.arange(n_pair)).ravel()
    th_rows = (c.n_ids * c.n_visible + np.arange(c.n_ids)[:, None] * c.n_thermal + np.arange(n_pair)).ravel()
    texts: dict[str, str] = {}
    for k, train in enumerate(regdb_splits(rng, c.n_ids, c.n_trials), start=1):
        test = np.setdiff1d(np.arange(1, c.n_ids + 1), train)
        for part, ids in (("train", train), ("test", test)):
            for modality in ("visible", "thermal"):
                texts[f"idx/{part}_{modality}_{k}.txt"] = "".join(
                    f"{name} {label}\n" for label, pid in enumerate(ids)
                    for name in folders[modality][pid - 1])
    return Plan(REGDB_CAMERAS, tuple(paths), np.array(who), np.array(cam), texts, c.n_ids, "BMP",
                pairs=(th_rows, vis_rows))


def plan_llcm(rng: np.random.Generator, c: LlcmCounts) -> Plan:
    """LLCM: {train,test}_{vis,nir}/camK/<pid:04d>/<n:04d>.jpg, idx/train_vis.txt and
    idx/train_nir.txt (`<path> <label>`, labels 0..n_train-1 by ascending id, shared by both
    files), idx/test_id.txt. Test NIR images avoid cam3; training NIR images use all 9 cameras."""
    n = c.n_train + c.n_test
    order = rng.permutation(np.arange(1, n + 1))
    train, test = np.sort(order[: c.n_train]), np.sort(order[c.n_train:])
    totals = c.totals or (None, None, None, None)
    paths: list[str] = []
    who: list[int] = []
    cam: list[int] = []
    texts = {"idx/test_id.txt": _id_line(test)}
    groups = (("train_vis", train, False, range(1, 10)), ("train_nir", train, True, range(1, 10)),
              ("test_vis", test, False, range(1, 10)), ("test_nir", test, True, LLCM_TEST_NIR_CAMS))
    for (group, ids, infrared, allowed), total in zip(groups, totals):
        allowed = np.array(list(allowed))
        n_cams = rng.integers(c.cams_per_id[0], c.cams_per_id[1] + 1, len(ids))
        choice = np.argsort(rng.random((len(ids), len(allowed))), axis=1)
        folders = [(f"{group}/cam{k}/{pid:04d}", int(pid), int(k) - 1 + 9 * infrared)
                   for pid, m, ch in zip(ids, n_cams, choice) for k in np.sort(allowed[ch[:m]])]
        p, w, k = _expand(folders, folder_sizes(rng, len(folders), c.per_folder, total), "{n:04d}.jpg")
        if group.startswith("train"):
            label = {int(pid): i for i, pid in enumerate(ids)}
            texts[f"idx/{group}.txt"] = "".join(f"{path} {label[wi + 1]}\n" for path, wi in zip(p, w))
        paths += p
        who += w
        cam += k
    return Plan(LLCM_CAMERAS, tuple(paths), np.array(who), np.array(cam), texts, n, "JPEG")


def build_plan(spec: ScaleSpec, rng: np.random.Generator) -> Plan:
    """The plan of `spec`'s dataset at its scale."""
    planner = {"sysu": plan_sysu, "regdb": plan_regdb, "llcm": plan_llcm}[spec.dataset]
    return planner(rng, spec.counts)  # type: ignore[arg-type]
