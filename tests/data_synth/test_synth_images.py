"""Image content: single-channel infrared, the shared cam2/cam3 room, and identities that are
separable within a modality but much harder to match across modalities on raw pixels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def _gray(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("L")
        if size is not None:
            im = im.resize(size, Image.BILINEAR)
        return np.asarray(im, dtype=np.float32)


def test_infrared_files_are_single_channel(sysu_root: Path, regdb_root: Path, llcm_root: Path) -> None:
    groups = [(sysu_root, "cam3/*/*.jpg", "JPEG"), (sysu_root, "cam6/*/*.jpg", "JPEG"),
              (llcm_root, "*_nir/*/*/*.jpg", "JPEG"), (regdb_root, "Thermal/*/*.bmp", "BMP")]
    for root, pattern, fmt in groups:
        files = sorted(root.glob(pattern))
        assert files, pattern
        for path in files[::7]:
            with Image.open(path) as im:
                assert (im.format, im.mode) == (fmt, "L"), path
    for path in sorted(sysu_root.glob("cam[1245]/*/*.jpg"))[::13]:
        with Image.open(path) as im:
            assert im.mode == "RGB", path


def _row_edges(root: Path, cam: int) -> np.ndarray:
    """Standardised vertical edge profile of a camera's background (image borders, averaged)."""
    mean = np.mean([_gray(p) for p in sorted(root.glob(f"cam{cam}/*/*.jpg"))], axis=0)
    border = np.concatenate([mean[:, :4], mean[:, -4:]], axis=1).mean(axis=1)
    edges = np.abs(np.diff(border))
    return (edges - edges.mean()) / (edges.std() + 1e-6)


def test_cam2_and_cam3_share_a_room(sysu_root: Path) -> None:
    edges = {c: _row_edges(sysu_root, c) for c in (1, 2, 3, 6)}
    corr = {c: float(np.corrcoef(edges[3], edges[c])[0, 1]) for c in (1, 2, 6)}
    print(f"\nbackground edge-profile correlation with cam3: {corr}")
    assert corr[2] > 0.5
    assert corr[2] > corr[1] + 0.3 and corr[2] > corr[6] + 0.3


def _features(root: Path, cams: tuple[int, ...], pids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    feats, labels = [], []
    for cam in cams:
        for pid in pids:
            for path in sorted(root.glob(f"cam{cam}/{pid:04d}/*.jpg")):
                x = _gray(path, (8, 16)).ravel()
                x -= x.mean()
                feats.append(x / (np.linalg.norm(x) + 1e-6))
                labels.append(pid)
    return np.array(feats), np.array(labels)


def _rank1(q: np.ndarray, qy: np.ndarray, g: np.ndarray, gy: np.ndarray) -> float:
    keep = np.isin(qy, gy)
    dist = ((q[keep, None, :] - g[None, :, :]) ** 2).sum(-1)
    return float((gy[dist.argmin(1)] == qy[keep]).mean())


def test_identities_learnable_but_not_trivial(sysu_root: Path) -> None:
    test = [int(x) for x in (sysu_root / "exp/test_id.txt").read_text().split("\n")[0].split(",")]
    gallery, gy = _features(sysu_root, (1, 2), test)
    outdoor, oy = _features(sysu_root, (4, 5), test)
    infrared, iy = _features(sysu_root, (3, 6), test)
    chance = 1.0 / len(set(gy))
    within = _rank1(outdoor, oy, gallery, gy)
    across = _rank1(infrared, iy, gallery, gy)
    print(f"\nraw-pixel rank-1: visible->visible {within:.2f}, infrared->visible {across:.2f}, "
          f"chance {chance:.2f}")
    assert within > 5 * chance and within > 0.3
    assert across < within / 2
