"""Exclusion rules: which gallery items a query's ranked list drops before scoring.

Each rule is a pairwise predicate over (query, gallery) attributes; ``True`` means "remove this
gallery item from this query's list". Sources and definitions: docs/metrics.md#exclusion-rules.

* ``sysu``   (AGW eval_sysu): a cam-3 query drops every cam-2 gallery item, whatever its identity.
* ``llcm``   (DEEN eval_llcm): drop gallery items with the same pid AND the same camera number
  (camera numbers are shared across modalities on LLCM, so a NIR cam-k query loses the VIS
  cam-k images of its own identity).
* ``regdb``  (AGW eval_regdb): drop nothing (AGW fixes query cams to 1 and gallery cams to 2).
* ``market`` (torchreid ``eval_market1501``): same pid AND same camera.
* ``none``: drop nothing.
* Mixed-modal and uni-modal rules (docs/protocols.md#mixed-rules); all of them drop the query's
  own image, identified by ``q_gallery_index`` (never by distance 0). A camera is its
  camera number, so on LLCM "same camera" spans both modalities (see the same section);
  SYSU/RegDB camera numbers are single-modality, where this equals (modality, camera):

  ====================  ==================================================================
  ``mix``               the query's own image only (MixER (1))
  ``mix-cam``           own image + every gallery image from the query's camera (MixER (2))
  ``mix-cam-id``        own image + same pid AND same camera (MixER (3))
  ``mix-id``            own image + same pid AND same modality: positives are cross-modal
                        only, same-modality distractors stay (MixER (4))
  ``mix-p``             own image + other identities' images of the query's modality: the
                        cross-modal gallery plus the query identity's same-modality images
                        (MixER (5), read as a predicate on the full mixed pool)
  ``unimodal``          own image + same pid AND same camera (Market convention)
  ====================  ==================================================================
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from vibench.errors import VibenchError, unknown_name

#: modality string -> code. ImageRecord uses "visible"/"infrared" (RegDB thermal and LLCM NIR are
#: "infrared"); 0/1 integer arrays are accepted as they are (0 = visible, 1 = infrared).
MODALITY_CODES: dict[str, int] = {"visible": 0, "infrared": 1}


@dataclass(frozen=True)
class Side:
    """Per-item attributes of one side (query or gallery), as int64 tensors on one device.

    ``index`` is the query's own gallery position (-1 = not in the gallery) for the query side and
    the gallery position for the gallery side; ``mod`` is None when modalities were not given.
    """

    pid: torch.Tensor
    cam: torch.Tensor
    mod: torch.Tensor | None
    index: torch.Tensor | None

    def rows(self, start: int, stop: int) -> "Side":
        """The slice [start, stop) of every attribute."""
        return Side(
            self.pid[start:stop],
            self.cam[start:stop],
            None if self.mod is None else self.mod[start:stop],
            None if self.index is None else self.index[start:stop],
        )

    def to(self, device: torch.device | str) -> "Side":
        return Side(
            self.pid.to(device),
            self.cam.to(device),
            None if self.mod is None else self.mod.to(device),
            None if self.index is None else self.index.to(device),
        )


Predicate = Callable[[Side, Side], "torch.Tensor | None"]


@dataclass(frozen=True)
class Rule:
    """An exclusion rule: `predicate(q, g)` gets query attributes shaped (B, 1) and gallery
    attributes shaped (1, G) and returns the (B, G) "remove" mask, or None for "remove nothing".

    ``needs_modalities`` / ``needs_self`` say which optional inputs the rule reads;
    ``max_ids_removed`` bounds how many distinct identities the rule can remove from one query's
    list (None = unbounded), which lets the engine skip counting surviving identities.
    """

    name: str
    predicate: Predicate
    needs_modalities: bool
    needs_self: bool
    max_ids_removed: int | None
    doc: str


def _own(q: Side, g: Side) -> torch.Tensor:
    assert q.index is not None and g.index is not None
    return q.index == g.index


def _same_id_cam(q: Side, g: Side) -> torch.Tensor:
    return (q.pid == g.pid) & (q.cam == g.cam)


def _same_mod(q: Side, g: Side) -> torch.Tensor:
    assert q.mod is not None and g.mod is not None
    return q.mod == g.mod


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("sysu", lambda q, g: (q.cam == 3) & (g.cam == 2), False, False, None,
             "cam-3 queries drop every cam-2 gallery item, any identity (docs/metrics.md#exclusion-rules)"),
        Rule("llcm", _same_id_cam, False, False, 1,
             "same pid AND same camera number (docs/metrics.md#exclusion-rules)"),
        Rule("regdb", lambda q, g: None, False, False, 0, "nothing removed (docs/metrics.md#exclusion-rules)"),
        Rule("market", _same_id_cam, False, False, 1,
             "same pid AND same camera (torchreid eval_market1501)"),
        Rule("none", lambda q, g: None, False, False, 0, "nothing removed"),
        Rule("mix", _own, False, True, 1, "the query's own image (MixER Mix)"),
        Rule("mix-cam", lambda q, g: _own(q, g) | (q.cam == g.cam), False, True, None,
             "own image + every image of the query's camera (MixER Mix-Cam)"),
        Rule("mix-cam-id", lambda q, g: _own(q, g) | _same_id_cam(q, g), False, True, 1,
             "own image + same pid AND same camera (MixER Mix-Cam-ID)"),
        Rule("mix-id", lambda q, g: _own(q, g) | ((q.pid == g.pid) & _same_mod(q, g)), True, True, 1,
             "own image + same pid AND same modality (MixER Mix-ID)"),
        Rule("mix-p", lambda q, g: _own(q, g) | ((q.pid != g.pid) & _same_mod(q, g)), True, True, None,
             "own image + other ids' images of the query's modality (MixER Mix-P)"),
        Rule("unimodal", lambda q, g: _own(q, g) | _same_id_cam(q, g), False, True, 1,
             "own image + same pid AND same camera (uni-modal V->V / I->I)"),
    )
}

#: Alternative spellings accepted by `get_rule` (they resolve to the canonical names above).
ALIASES: dict[str, str] = {
    "agw": "sysu",
    "sysu-mm01": "sysu",
    "deen": "llcm",
    "torchreid": "market",
    "mix-camera": "mix-cam",
    "mix-camera-id": "mix-cam-id",
    "uni-modal": "unimodal",
    "uni": "unimodal",
    "mixp": "mix-p",
}


def rule_names() -> list[str]:
    """The canonical rule names."""
    return sorted(RULES)


def get_rule(name: str) -> Rule:
    """The rule called `name` (aliases accepted); unknown names raise with a did-you-mean."""
    if not isinstance(name, str):
        raise VibenchError(f"exclusion rule must be a string, got {name!r}")
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in RULES:
        raise unknown_name("exclusion rule", name, list(RULES) + list(ALIASES))
    return RULES[key]


def encode_modalities(values: Any, what: str) -> np.ndarray:
    """Modalities as an int64 array (0 = visible, 1 = infrared) from strings or 0/1 numbers."""
    arr = np.asarray(values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values)
    if arr.ndim != 1:
        raise VibenchError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind in "USO":
        out = np.empty(arr.shape[0], dtype=np.int64)
        for i, v in enumerate(arr.tolist()):
            code = MODALITY_CODES.get(str(v).lower())
            if code is None:
                raise VibenchError(
                    f"{what}[{i}] = {v!r} is not a modality; expected 'visible' or 'infrared' (or 0/1)"
                )
            out[i] = code
        return out
    if arr.dtype.kind == "b" or arr.dtype.kind in "iu" or arr.dtype.kind == "f":
        if arr.size and not np.isin(arr, (0, 1)).all():
            raise VibenchError(f"{what} must hold 0 (visible) / 1 (infrared) or modality names")
        return arr.astype(np.int64)
    raise VibenchError(f"{what} has unsupported dtype {arr.dtype}")


def as_int_array(values: Any, what: str, length: int | None = None) -> np.ndarray:
    """A one-dimensional int64 array (pids, cams, indices) with a clear error otherwise."""
    arr = np.asarray(values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values)
    if arr.ndim != 1:
        raise VibenchError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iub":
        if arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all():
            arr = arr.astype(np.int64)
        else:
            raise VibenchError(f"{what} must hold integers, got dtype {arr.dtype}")
    if length is not None and arr.shape[0] != length:
        raise VibenchError(f"{what} has length {arr.shape[0]}, expected {length}")
    return arr.astype(np.int64)


def make_sides(
    rule: Rule,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    q_modalities: Any = None,
    g_modalities: Any = None,
    q_gallery_index: Any = None,
    nq: int | None = None,
    ng: int | None = None,
) -> tuple[Side, Side]:
    """Validate and convert the per-item arrays into CPU `Side`s for `rule`."""
    qp = as_int_array(q_pids, "q_pids", nq)
    gp = as_int_array(g_pids, "g_pids", ng)
    nq, ng = qp.shape[0], gp.shape[0]
    qc = as_int_array(q_camids, "q_camids", nq)
    gc = as_int_array(g_camids, "g_camids", ng)
    qm = gm = None
    if q_modalities is not None or g_modalities is not None or rule.needs_modalities:
        if q_modalities is None or g_modalities is None:
            raise VibenchError(f"rule {rule.name!r} needs q_modalities and g_modalities")
        qm = encode_modalities(q_modalities, "q_modalities")
        gm = encode_modalities(g_modalities, "g_modalities")
        if qm.shape[0] != nq:
            raise VibenchError(f"q_modalities has length {qm.shape[0]}, expected {nq}")
        if gm.shape[0] != ng:
            raise VibenchError(f"g_modalities has length {gm.shape[0]}, expected {ng}")
    qi = None
    if q_gallery_index is not None or rule.needs_self:
        if q_gallery_index is None:
            raise VibenchError(
                f"rule {rule.name!r} removes the query's own image: pass q_gallery_index "
                "(the query's position in the gallery, -1 if absent)"
            )
        qi = as_int_array(q_gallery_index, "q_gallery_index", nq)
        bad = (qi < -1) | (qi >= ng)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise VibenchError(f"q_gallery_index[{i}] = {qi[i]} is outside [-1, {ng})")
        inside = qi >= 0
        mismatch = inside & (gp[np.where(inside, qi, 0)] != qp)
        if mismatch.any():
            i = int(np.flatnonzero(mismatch)[0])
            raise VibenchError(
                f"q_gallery_index[{i}] = {qi[i]} points at a gallery item of pid {gp[qi[i]]}, "
                f"but the query's pid is {qp[i]}"
            )
    t = torch.from_numpy
    q = Side(t(qp), t(qc), None if qm is None else t(qm), None if qi is None else t(qi))
    g = Side(t(gp), t(gc), None if gm is None else t(gm), torch.arange(ng, dtype=torch.int64))
    return q, g


def block_mask(rule: Rule, q: Side, g: Side) -> torch.Tensor | None:
    """The (B, G) remove-mask of query rows `q` against gallery `g`, or None if nothing is removed."""
    qq = Side(
        q.pid[:, None], q.cam[:, None],
        None if q.mod is None else q.mod[:, None],
        None if q.index is None else q.index[:, None],
    )
    gg = Side(
        g.pid[None, :], g.cam[None, :],
        None if g.mod is None else g.mod[None, :],
        None if g.index is None else g.index[None, :],
    )
    m = rule.predicate(qq, gg)
    if m is None:
        return None
    return m.expand(q.pid.shape[0], g.pid.shape[0])


def exclusion_mask(
    rule: str,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    q_modalities: Any = None,
    g_modalities: Any = None,
    q_gallery_index: Any = None,
    *,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The (nq, ng) boolean tensor of gallery items removed from each query's list under `rule`.

    Used by refinement stages (BIT's top-K re-scoring, docs/metrics.md#refinement-sees-the-exclusion-mask) and the pipeline.
    """
    r = get_rule(rule)
    q, g = make_sides(r, q_pids, g_pids, q_camids, g_camids, q_modalities, g_modalities, q_gallery_index)
    q, g = q.to(device), g.to(device)
    m = block_mask(r, q, g)
    if m is None:
        return torch.zeros(q.pid.shape[0], g.pid.shape[0], dtype=torch.bool, device=device)
    return m.contiguous()


def describe_rules() -> Sequence[tuple[str, str]]:
    """(name, description) for every rule, for docs and CLI help."""
    return [(r.name, r.doc) for r in RULES.values()]
