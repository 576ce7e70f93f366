"""TMPA's modality-feature losses (Sec. III-C, Eq. 4-8).

* MSS (Eq. 4-6): for each identity p of the batch,
  d_sp^p = mean_i ||F_sp^V_i - F_sp^I_i||_2 over p's index-aligned (visible, infrared) rows and
  d_ss^p = mean_j ||F_sh_j - F_sp_j||_2 over p's rows of F_sp = Cat(F_sp^V, F_sp^I) (batch
  concatenation, row j of F_sh being the PedMix image built from row j), and
  L_MSS = sum_p max(rho - d_sp^p - d_ss^p, 0), rho = 0.65.
  With k visible views per sample (an extra augmentation view, view-major rows) visible row j
  pairs with infrared row j mod B, and F_sh has one row per row of Cat(F_sp^V, F_sp^I).
  The distances are pushed *up* to the margin (modality-specific features apart from each other and
  from the shared ones). [G] features are L2-normalised first (``normalize``), otherwise a margin of
  0.65 has no scale; ``reduction`` "sum" follows Eq. 4, "mean" divides by the number of identities.
* MSI (Eq. 7): CE(C^V(F_sp^V), y) + CE(C^I(F_sp^I), y) — the model supplies the logits.
* L_MFE = L_MSI + lambda_1 L_MSS (Eq. 8).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vibench.errors import VibenchError


def mss_loss(
    f_sp_vis: torch.Tensor,
    f_sp_ir: torch.Tensor,
    f_sh: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 0.65,
    normalize: bool = True,
    reduction: str = "sum",
) -> torch.Tensor:
    """L_MSS (Eq. 4-6). `f_sp_ir`: (B, D); `f_sp_vis`: (kB, D), k views of the B samples,
    view-major; `f_sh`: (kB + B, D) rows of Cat(x^V_hat, x^I_hat) aligned with Cat(F_sp^V, F_sp^I);
    `labels`: (B,) identities of the infrared rows (row j of the visible views has labels[j % B])."""
    b, nv = f_sp_ir.shape[0], f_sp_vis.shape[0]
    if b == 0 or nv % b or f_sh.shape[0] != nv + b or labels.shape[0] != b:
        raise VibenchError(
            f"MSS loss needs B infrared rows, k*B visible rows, k*B + B shared rows and B labels; got {b}, "
            f"{nv}, {f_sh.shape[0]}, {labels.shape[0]}"
        )
    if reduction not in ("sum", "mean"):
        raise VibenchError(f"tmpa MSS reduction must be 'sum' or 'mean', got {reduction!r}")
    if normalize:
        f_sp_vis, f_sp_ir, f_sh = (F.normalize(t.float(), dim=1) for t in (f_sp_vis, f_sp_ir, f_sh))
    views = nv // b
    labels_vis = labels.repeat(views)
    d_sp_rows = (f_sp_vis - f_sp_ir.repeat(views, 1)).norm(dim=1)  # (kB,)
    f_sp = torch.cat([f_sp_vis, f_sp_ir], 0)
    d_ss_rows = (f_sh - f_sp).norm(dim=1)  # (kB + B,)
    labels_all = torch.cat([labels_vis, labels], 0)
    terms = []
    for p in torch.unique(labels):
        d_sp = d_sp_rows[labels_vis == p].mean()
        d_ss = d_ss_rows[labels_all == p].mean()
        terms.append(torch.clamp(margin - d_sp - d_ss, min=0.0))
    total = torch.stack(terms)
    return total.sum() if reduction == "sum" else total.mean()


def msi_loss(
    logits_vis: torch.Tensor, logits_ir: torch.Tensor, labels: torch.Tensor, ir_labels: torch.Tensor | None = None
) -> torch.Tensor:
    """L_MSI (Eq. 7), and L_MFT (Eq. 13) on the generated features: identity CE of the visible and
    infrared classifiers' logits; `ir_labels` defaults to `labels` (equal row counts)."""
    return F.cross_entropy(logits_vis, labels) + F.cross_entropy(logits_ir, labels if ir_labels is None else ir_labels)
