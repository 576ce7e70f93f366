"""Retrieval grids (as in the papers' figures): for a few queries, the query image and its
top-10 gallery images, green border = same identity, red = different.

Built from the stored raw rankings ``rankings/<protocol>/trial-<t>.npz``. The array of ranked
gallery indices is read under one of the names in ``INDEX_KEYS`` (N queries x k); gallery and
query image paths come from the file itself when it stores them (``gallery_paths``,
``query_paths``), otherwise from the protocol lists rebuilt with ``vibench.protocols.build_lists``
on the dataset root recorded in spec.json. When the images (or the lists) are unavailable the
grid is skipped with a note — nothing is drawn in their place.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from vibench.data import load_dataset
from vibench.errors import VibenchError
from vibench.io import sha256_bytes, write_bytes_atomic
from vibench.protocols import build_lists, get_protocol
from vibench.store import StoredCell

INDEX_KEYS = ("topk_index", "topk", "indices", "ranked", "ranking", "gallery_index", "order")
THUMB = (48, 96)
BORDER = 4
GREEN, RED, BLUE = (0, 160, 0), (210, 0, 0), (40, 90, 220)


@dataclass
class RankedQuery:
    """One query and its top-k gallery items (paths relative to the dataset root)."""

    query_path: str
    gallery_paths: list[str]
    correct: list[bool]


def _first(npz: Any, names: tuple[str, ...]) -> np.ndarray | None:
    for n in names:
        if n in npz.files:
            return np.asarray(npz[n])
    return None


def read_rankings(path: Path, cell: StoredCell, protocol: str, trial: int, n_queries: int,
                  top_k: int) -> list[RankedQuery]:
    """Up to `n_queries` evenly spaced queries of one rankings file. Raises VibenchError
    naming the file when it cannot be interpreted or mapped to image paths."""
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise VibenchError(f"{path}: cannot read rankings ({exc})") from exc
    idx = _first(npz, INDEX_KEYS)
    if idx is None or idx.ndim != 2:
        raise VibenchError(f"{path}: expected a (queries x k) index array named one of "
                           f"{', '.join(INDEX_KEYS)}; found {', '.join(npz.files)}")
    qpaths = _first(npz, ("query_paths", "q_paths"))
    gpaths = _first(npz, ("gallery_paths", "g_paths"))
    qp = _first(npz, ("q_pids", "query_pids"))
    gp = _first(npz, ("g_pids", "gallery_pids"))
    if qpaths is None or gpaths is None or qp is None or gp is None:
        lists = _protocol_lists(cell, protocol, trial)
        qpaths = np.array([r.path for r in lists.query])
        gpaths = np.array([r.path for r in lists.gallery])
        qp = np.array([r.pid for r in lists.query])
        gp = np.array([r.pid for r in lists.gallery])
    matches = _first(npz, ("matches", "correct"))
    if len(qpaths) != idx.shape[0]:
        raise VibenchError(f"{path}: {idx.shape[0]} ranked queries but the protocol lists have "
                           f"{len(qpaths)}")
    picks = np.unique(np.linspace(0, idx.shape[0] - 1, num=min(n_queries, idx.shape[0]))
                      .round().astype(int))
    out = []
    for q in picks:
        top = [int(j) for j in idx[q, :top_k] if 0 <= int(j) < len(gpaths)]
        corr = ([bool(x) for x in matches[q, :len(top)]] if matches is not None
                else [bool(gp[j] == qp[q]) for j in top])
        out.append(RankedQuery(str(qpaths[q]), [str(gpaths[j]) for j in top], corr))
    return out


def _protocol_lists(cell: StoredCell, protocol: str, trial: int) -> Any:
    root = (cell.spec.get("data") or {}).get("root")
    if not root or not Path(root).is_dir():
        raise VibenchError(f"{cell.path / 'spec.json'}: data root {root!r} is not available here")
    index = load_dataset(cell.dataset, root)
    return build_lists(get_protocol(protocol), index, trial)


def _thumb(path: Path, colour: tuple[int, int, int]) -> Image.Image:
    with Image.open(path) as im:
        im = im.convert("RGB").resize(THUMB)
    canvas = Image.new("RGB", (THUMB[0] + 2 * BORDER, THUMB[1] + 2 * BORDER), colour)
    canvas.paste(im, (BORDER, BORDER))
    return canvas


def draw_grid(queries: list[RankedQuery], root: Path, out: Path, title: str) -> Path:
    """Compose the grid as a small JPEG; raises VibenchError when an image file is missing."""
    tw, th = THUMB[0] + 2 * BORDER, THUMB[1] + 2 * BORDER
    k = max(len(q.gallery_paths) for q in queries)
    gap, head = 12, 18
    img = Image.new("RGB", (tw * (k + 1) + gap + 4, head + th * len(queries)), "white")
    draw = ImageDraw.Draw(img)
    draw.text((2, 2), title[:120], fill=(0, 0, 0))
    for i, q in enumerate(queries):
        y = head + i * th
        for j, (rel, colour) in enumerate([(q.query_path, BLUE)] + [
                (g, GREEN if c else RED) for g, c in zip(q.gallery_paths, q.correct)]):
            p = root / rel
            if not p.is_file():
                raise VibenchError(f"image {p} not found")
            x = j * tw + (gap if j else 0)
            img.paste(_thumb(p, colour), (x, y))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80, optimize=True)
    write_bytes_atomic(out, buf.getvalue())
    return out


def build_grids(cells: list[StoredCell], out_dir: Path, protocols: list[str], n_queries: int = 4,
                top_k: int = 10, max_grids: int = 4) -> tuple[list[tuple[Path, str]], list[str]]:
    """Grids (JPEG) for the first seed/trial of each (method, protocol) in `protocols`, at most
    `max_grids` of them; returns (figures, notes) — a note for every grid that had to be skipped
    and why. The caller passes real-data cells or synthetic cells, never both together."""
    figures: list[tuple[Path, str]] = []
    notes: list[str] = []
    seen: set[tuple[str, str | None, str]] = set()
    # the paper config first: the grid shows the most meaningful cell
    for cell in sorted(cells, key=lambda c: (c.method, str(c.variant), c.data_kind != "real",
                                                   c.config_name != "paper", c.config_label,
                                                   c.data_label, c.seed, c.split)):
        for proto in protocols:
            key = (cell.method, cell.variant, proto)
            if proto not in cell.metrics or key in seen or len(figures) >= max_grids:
                continue
            trials = sorted(int(t) for t in cell.metrics[proto]["trials"])
            if not trials:
                continue
            seen.add(key)
            trial = trials[0]
            rpath = cell.path / "rankings" / proto / f"trial-{trial}.npz"
            label = (f"{cell.method} {cell.variant or ''} {proto} trial {trial} "
                     f"[config {cell.config_label}; data {cell.data_label}]").replace("  ", " ")
            if not rpath.is_file():
                notes.append(f"{label}: skipped, no rankings file {rpath.name}")
                continue
            try:
                qs = read_rankings(rpath, cell, proto, trial, n_queries, top_k)
                root = Path(str((cell.spec.get("data") or {}).get("root") or ""))
                if not qs:
                    raise VibenchError("no queries")
                name = (f"grid-{_slug(cell.method)}-{_slug(cell.variant or 'standard')}-{proto}-"
                        f"{_slug(cell.config_label + ' ' + cell.data_label)}.jpg")
                draw_grid(qs, root, out_dir / name, label)
                syn = " (synthetic data)" if cell.data_kind != "real" else ""
                figures.append((out_dir / name, f"Retrieval examples: {label}{syn}"))
            except VibenchError as exc:
                notes.append(f"{label}: skipped, images unavailable ({exc})")
    return figures, notes


def _slug(text: str) -> str:
    """A file-name-safe version of a method name (which may be hostile)."""
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in text)
    return f"{safe[:40]}-{sha256_bytes(text.encode('utf-8'))[:6]}"
