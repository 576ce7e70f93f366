"""PMT's two cross-modal losses (Lu et al., AAAI'23, §3.3-3.4; docs/methods.md#pmt-notes).

Both read the pre-BN features of a batch that holds every identity in both modalities.

* DCL, the discriminative centre loss: centre c_y = mean feature of identity y over both
  modalities; d(c_y, x) Euclidean.
      ap = mean over (y, x) with label(x) == y of d(c_y, x)
      for each centre y: N_y = {d(c_y, x): label(x) != y, d(c_y, x) < mean_x' d(c_y, x')}
                         (the negatives closer than that centre's mean negative distance)
      an = mean over centres of mean(N_y)
      L_DCL = ap / an
* MSEL, the modality-shared enhancement loss: for each visible sample v_i,
      intra_i = mean_{j != i, y_j = y_i} d(v_i, v_j),  cross_i = mean_{j: y_j = y_i} d(v_i, r_j)
      L_V = mean_i (intra_i - cross_i)^2, the same for infrared anchors; L_MSEL = (L_V + L_I) / 2.
"""
from __future__ import annotations

import torch

from vibench_methods.losses.triplet import pairwise_distance


def discriminative_center_loss(feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    ids = torch.unique(labels)
    onehot = (labels.unsqueeze(0) == ids.unsqueeze(1)).float()  # (I, N)
    centers = onehot @ feats.float() / onehot.sum(1, keepdim=True)
    dist = pairwise_distance(centers, feats)  # (I, N)
    pos = onehot.bool()
    ap = dist[pos].mean()
    neg_means = []
    for row, negmask in zip(dist, ~pos):
        d_neg = row[negmask]
        keep = d_neg[d_neg < d_neg.mean()]
        if keep.numel() == 0:  # all negatives equidistant: keep them all
            keep = d_neg
        neg_means.append(keep.mean())
    an = torch.stack(neg_means).mean()
    return ap / an


def modality_shared_enhancement_loss(vis: torch.Tensor, ir: torch.Tensor, vis_labels: torch.Tensor, ir_labels: torch.Tensor) -> torch.Tensor:
    def one_side(a: torch.Tensor, la: torch.Tensor, b: torch.Tensor, lb: torch.Tensor) -> torch.Tensor:
        same = la.unsqueeze(1) == la.unsqueeze(0)
        eye = torch.eye(len(la), dtype=torch.bool, device=a.device)
        d_intra = pairwise_distance(a)
        intra_mask = same & ~eye
        intra = (d_intra * intra_mask).sum(1) / intra_mask.sum(1).clamp(min=1)
        cross_mask = la.unsqueeze(1) == lb.unsqueeze(0)
        cross = (pairwise_distance(a, b) * cross_mask).sum(1) / cross_mask.sum(1).clamp(min=1)
        return (intra - cross).pow(2).mean()

    return 0.5 * (one_side(vis, vis_labels, ir, ir_labels) + one_side(ir, ir_labels, vis, vis_labels))
