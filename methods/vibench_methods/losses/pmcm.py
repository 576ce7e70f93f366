"""PMCM losses (Qian, Lin, Du, Pattern Recognition 2025, Sec. 3): sample-to-sample, part alignment,
memory-bank center-to-center, patch-mixed modality learning, and the mu ramp.

* :class:`SampleToSample` (Eq. 2): L_s2s = (1/N) sum_i ||F(f_i^V) - F(f_i^I)||_2 over the N
  index-aligned (visible, infrared) pairs, F = two fully connected layers. [G, after MMN's code,
  which the paper cites for this loss]: F = L2-normalise -> Linear(D, h, no bias) -> BN -> ReLU ->
  Linear(h, h, no bias) -> BN -> L2-normalise, h = 256.
* :func:`part_align_kl` (Eq. 4): sum_k KL(C_g(f^g) || C_pk(f^pk)) with C(.) the softmax outputs of
  the global and part classifiers; [G] averaged over the batch (Eq. 4 sums over samples).
* :class:`CenterMemory` (Eq. 6-7): identity centres per modality in a memory bank, a registered
  buffer (checkpoints carry it). Every mini-batch the centre of each identity y present in the
  batch becomes m_y <- eta * m_y.detach() + (1 - eta) * mean(batch features of y) (the first time:
  the batch mean); the loss (1/Y) sum_y ||m_y^V - m_y^I||^2 runs over the Y identities of the batch
  (their updated centres carry the gradient of the batch mean; [G] eta = 0.9). The loss starts at a
  "threshold epoch" (value not given in the paper; [G] 10) while the bank is updated from the first
  batch, so the centres are warm when the loss starts.
* :func:`pmml_loss` (Eq. 8-9): L^{M,V} = sum_i KL(C_g(f_i^V) || C_g(f_i^M)) + sum_i sum_k
  KL(C_pk(f_i^{V,pk}) || C_pk(f_i^{M,pk})) (the C_pk in the paper's global term is read as C_g),
  likewise L^{M,I}; L_pmml = p L^{M,V} + (1 - p) L^{M,I}. [G] the original-modality distributions
  are detached targets; batch mean instead of sum.
* :func:`mu_ramp` (Sec. 4.1.3, Table 5): mu = mu_max * min(1, epoch / ramp_epochs), 0 -> 0.5 over
  the first 50 epochs, then 0.5.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vibench.errors import VibenchError


def kl_div_probs(p_logits: torch.Tensor, q_logits: torch.Tensor, detach_p: bool = False) -> torch.Tensor:
    """KL(softmax(p) || softmax(q)) per row, summed over the classes (last dim)."""
    if detach_p:
        p_logits = p_logits.detach()
    log_p = F.log_softmax(p_logits.float(), dim=-1)
    log_q = F.log_softmax(q_logits.float(), dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def part_align_kl(global_logits: torch.Tensor, part_logits: torch.Tensor, detach_global: bool = False) -> torch.Tensor:
    """Eq. 4: mean_i sum_k KL(C_g(f_i^g) || C_pk(f_i^pk)); global (B, C), parts (B, P, C)."""
    if part_logits.dim() != 3 or part_logits.shape[0] != global_logits.shape[0]:
        raise VibenchError(f"part_align_kl expects (B, C) and (B, P, C) logits, got {tuple(global_logits.shape)} and {tuple(part_logits.shape)}")
    kl = kl_div_probs(global_logits[:, None, :].expand_as(part_logits), part_logits, detach_p=detach_global)
    return kl.sum(1).mean()


def pmml_loss(
    vis: tuple[torch.Tensor, torch.Tensor],
    ir: tuple[torch.Tensor, torch.Tensor],
    mixed_for_vis: tuple[torch.Tensor, torch.Tensor],
    mixed_for_ir: tuple[torch.Tensor, torch.Tensor],
    p: float,
    detach_targets: bool = True,
) -> torch.Tensor:
    """Eq. 8-9. Each argument is (global logits (N, C), part logits (N, P, C)); the mixed rows are
    aligned with the visible (resp. infrared) rows of the same identity; p weighs the M-V term."""

    def one(src: tuple[torch.Tensor, torch.Tensor], mix: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        g = kl_div_probs(src[0], mix[0], detach_p=detach_targets)
        parts = kl_div_probs(src[1], mix[1], detach_p=detach_targets).sum(1)
        return (g + parts).mean()

    return p * one(vis, mixed_for_vis) + (1.0 - p) * one(ir, mixed_for_ir)


def mu_ramp(epoch: float, mu_max: float = 0.5, ramp_epochs: float = 50.0) -> float:
    """The part-loss weight mu: linear from 0 at epoch 0 to mu_max at `ramp_epochs`, then constant."""
    if ramp_epochs <= 0:
        return float(mu_max)
    return float(mu_max) * min(1.0, max(0.0, float(epoch)) / float(ramp_epochs))


class SampleToSample(nn.Module):
    """Eq. 2 with its two-layer projection F (MMN form, [G])."""

    def __init__(self, in_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden, bias=False)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, hidden, bias=False)
        self.bn2 = nn.BatchNorm1d(hidden)

    def project(self, f: torch.Tensor) -> torch.Tensor:
        x = F.normalize(f, dim=1)
        x = F.relu(self.bn1(self.fc1(x)))
        return F.normalize(self.bn2(self.fc2(x)), dim=1)

    def forward(self, f_vis: torch.Tensor, f_ir: torch.Tensor) -> torch.Tensor:
        z = self.project(torch.cat([f_vis, f_ir], 0))
        zv, zi = z[: f_vis.shape[0]], z[f_vis.shape[0]:]
        return (zv - zi).norm(dim=1).mean()


class CenterMemory(nn.Module):
    """Per-modality identity centres (memory bank) and the center-to-center loss (Eq. 6).

    Buffers: ``centers`` (M, num_classes, D) and ``filled`` (M, num_classes) bool, M = modalities
    (0 = visible, 1 = infrared, optionally 2 = mixed).
    """

    def __init__(self, num_classes: int, dim: int, modalities: int = 2, momentum: float = 0.9) -> None:
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise VibenchError(f"pmcm c2c memory momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.register_buffer("centers", torch.zeros(modalities, num_classes, dim))
        self.register_buffer("filled", torch.zeros(modalities, num_classes, dtype=torch.bool))

    def update(self, feats: torch.Tensor, labels: torch.Tensor, modality: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Update the bank of `modality` with a batch; returns (ids present, their new centres with grad)."""
        ids, inverse = torch.unique(labels, return_inverse=True)
        sums = torch.zeros(ids.numel(), feats.shape[1], device=feats.device, dtype=feats.dtype).index_add(0, inverse, feats)
        counts = torch.bincount(inverse, minlength=ids.numel()).to(feats.dtype)[:, None]
        batch_mean = sums / counts
        old = self.centers[modality, ids].to(feats.dtype)
        filled = self.filled[modality, ids][:, None]
        new = torch.where(filled, self.momentum * old + (1.0 - self.momentum) * batch_mean, batch_mean)
        with torch.no_grad():
            self.centers[modality, ids] = new.detach().to(self.centers.dtype)
            self.filled[modality, ids] = True
        return ids, new

    def forward(
        self, f_vis: torch.Tensor, y_vis: torch.Tensor, f_ir: torch.Tensor, y_ir: torch.Tensor, active: bool = True
    ) -> torch.Tensor:
        """Update both banks; L_c2c = mean over identities in both batches of ||m^V - m^I||^2 (0 if not active)."""
        ids_v, new_v = self.update(f_vis, y_vis, 0)
        ids_i, new_i = self.update(f_ir, y_ir, 1)
        if not active:
            return f_vis.new_zeros(())
        common = ids_v[torch.isin(ids_v, ids_i)]
        if common.numel() == 0:
            return f_vis.new_zeros(())
        pos_v = torch.searchsorted(ids_v, common)
        pos_i = torch.searchsorted(ids_i, common)
        return ((new_v[pos_v] - new_i[pos_i]) ** 2).sum(1).mean()
