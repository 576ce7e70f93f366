"""Local-patch identities: identities differ only inside the code region; the modalities share the
code's geometry; bad sizes and too many identities are refused."""
from __future__ import annotations

import numpy as np
import pytest

from vibench.data.synth.local_patch import identity_codes, local_patch_set
from vibench.errors import VibenchError


def test_identities_differ_only_in_the_code_cells():
    d = local_patch_set(6, 2, seed=3, jitter=0, noise=0.0)
    assert d.vis.shape == (12, 3, 64, 32) and d.ir.shape == (12, 3, 64, 32)
    assert d.vis_label.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert len({tuple(c) for c in d.codes}) == 6
    # undo the per-image brightness factor: divide by the background pixel (fixed colour)
    norm = d.vis / d.vis[:, :, :1, :1]
    top, left = 64 // 4, (32 - 12) // 2  # the 12x12 code of 3x3 cells of 4 px
    diff = np.abs(norm[0] - norm[2]).max(0) > 1e-4
    assert diff[top:top + 12, left:left + 12].any()
    outside = diff.copy()
    outside[top:top + 12, left:left + 12] = False
    assert not outside.any()
    # the same identity is the same picture up to brightness
    assert np.allclose(norm[0], norm[1], atol=1e-4)
    # cell (r, c) is on iff the code bit r * 3 + c is set, in both modalities
    for k in (0, 2):
        code = d.codes[d.vis_label[k]].reshape(3, 3)
        v_cells = d.vis[k, 2, top + 1:top + 12:4, left + 1:left + 12:4]  # blue channel: cells are yellow
        i_cells = d.ir[k, 0, top + 1:top + 12:4, left + 1:left + 12:4]
        assert ((v_cells < d.vis[k, 2, top - 2, left + 1]) == code).all()  # yellow cells have less blue than the torso
        assert ((i_cells < d.ir[k, 0, top - 2, left + 1]) == code).all()   # infrared cells darker than the torso


def test_deterministic_and_checked():
    a, b = local_patch_set(4, 3, seed=1), local_patch_set(4, 3, seed=1)
    assert np.array_equal(a.vis, b.vis) and np.array_equal(a.ir, b.ir)
    codes = identity_codes(np.random.default_rng(0), 10, 3)
    train = local_patch_set(6, 1, codes=codes, first_id=0)
    test = local_patch_set(4, 1, codes=codes, first_id=6)
    assert not {tuple(c) for c in train.codes} & {tuple(c) for c in test.codes}
    with pytest.raises(VibenchError, match="codes of a 2x2 grid"):
        identity_codes(np.random.default_rng(0), 20, 2)
    with pytest.raises(VibenchError, match="too small"):
        local_patch_set(2, 1, size=(20, 16))
