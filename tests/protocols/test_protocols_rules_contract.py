"""The exclusion rules the protocols name, checked against vibench.metrics (when it exists):
the rule table of docs/protocols.md is the contract between the two subsystems."""
from __future__ import annotations

import numpy as np
import pytest

from vibench.protocols import build_lists, list_protocols

rules_mod = pytest.importorskip("vibench.metrics.rules")

EVAL = [s for s in list_protocols() if s.kind == "evaluation" and s.sampler.kind != "official"]


def test_every_protocol_rule_is_known_to_evaluate():
    used = {s.rule for s in list_protocols() if s.rule}
    assert used <= set(rules_mod.rule_names()), sorted(used - set(rules_mod.rule_names()))


@pytest.mark.parametrize("spec", EVAL, ids=lambda s: s.name)
def test_metrics_mask_matches_the_documented_rule(spec, indexes, excludes):
    lists = build_lists(spec, indexes[spec.dataset], spec.trials[-1])
    q, g = lists.query, lists.gallery
    mask = rules_mod.exclusion_mask(
        spec.rule, [r.pid for r in q], [r.pid for r in g], [r.cam for r in q], [r.cam for r in g],
        q_modalities=[r.modality for r in q], g_modalities=[r.modality for r in g],
        q_gallery_index=lists.query_gallery_index).cpu().numpy()
    expected = np.array([[excludes(spec.rule, qr, gr, j, int(lists.query_gallery_index[i]))
                          for j, gr in enumerate(g)] for i, qr in enumerate(q)], dtype=bool)
    assert mask.shape == expected.shape
    assert (mask == expected).all()
