"""Build a cross-modality image mixer from a method config, so that any method can swap mixers the
way the papers' ablations do (TMPA Table IV, PMCM Table 4).

Config block (a dict)::

    mixing:
      kind: pedmix | patchmix | none
      pedmix:   {patch: 12, ratios: [0.65, 0.70, 0.75], box1: [0.6667, 0.3333], box2: [0.8333, 0.6667],
                 ratio_counts: other, same_mask_for_pair: false}
      patchmix: {patch: 16, p: 0.1, sampling: exact}

A mixer is a callable ``(vis, ir, generator=None) -> MixOutput`` on index-aligned same-identity rows.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from vibench.errors import VibenchError, unknown_name
from vibench_methods.mixing.patchmix import PatchMix
from vibench_methods.mixing.pedmix import MixOutput, PedMix

Mixer = Callable[..., MixOutput]

_PEDMIX_KEYS = {"patch", "ratios", "box1", "box2", "ratio_counts", "same_mask_for_pair"}
_PATCHMIX_KEYS = {"patch", "p", "sampling"}


def _check_keys(block: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(block) - allowed)
    if extra:
        raise VibenchError(f"unknown key(s) {extra} in {where}; expected some of {sorted(allowed)}")


def build_mixer(cfg: dict[str, Any] | None) -> Mixer | None:
    """The mixer named by ``cfg['kind']`` (None for 'none' or an empty config)."""
    if not cfg:
        return None
    kind = cfg.get("kind", "none")
    if kind == "none":
        return None
    if kind == "pedmix":
        block = dict(cfg.get("pedmix") or {})
        _check_keys(block, _PEDMIX_KEYS, "mixing.pedmix")
        return PedMix(**block)
    if kind == "patchmix":
        block = dict(cfg.get("patchmix") or {})
        _check_keys(block, _PATCHMIX_KEYS, "mixing.patchmix")
        return PatchMix(**block)
    raise unknown_name("mixing.kind", str(kind), ["pedmix", "patchmix", "none"])


def mixer_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A CPU generator for mask sampling (masks are drawn on the CPU, then moved to the images)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed))
    return g
