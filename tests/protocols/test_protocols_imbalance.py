"""Imbalance training variants (BIT supplementary §8): exact per-identity removal counts."""
from __future__ import annotations

import warnings

import pytest

from vibench.data.records import ImageRecord
from vibench.errors import VibenchError
from vibench.protocols import apply_training_variant, get_protocol, plan_reduction
from vibench.protocols.imbalance import removal_count
from vibench.protocols.spec import ProtocolSpec, ReductionSpec

#: pid -> (#infrared, #visible) training images
COUNTS = {1: (1, 3), 2: (2, 20), 3: (5, 7), 4: (10, 10), 5: (15, 25), 6: (19, 40), 7: (33, 1), 8: (0, 12)}
#: round half up of 0.1*n and 0.2*n, written out by hand
EXPECTED_10 = {0: 0, 1: 0, 2: 0, 3: 0, 5: 1, 7: 1, 10: 1, 12: 1, 15: 2, 19: 2, 20: 2, 25: 3, 33: 3, 40: 4}
EXPECTED_20 = {0: 0, 1: 0, 2: 0, 3: 1, 5: 1, 7: 1, 10: 2, 12: 2, 15: 3, 19: 4, 20: 4, 25: 5, 33: 7, 40: 8}


def _records():
    recs = []
    for pid, (n_ir, n_vis) in COUNTS.items():
        recs += [ImageRecord(f"cam3/{pid:04d}/{k:04d}.jpg", pid, 3, "infrared") for k in range(n_ir)]
        recs += [ImageRecord(f"cam1/{pid:04d}/{k:04d}.jpg", pid, 1, "visible") for k in range(n_vis)]
    return tuple(recs)


def _count(records, modality):
    out = {}
    for r in records:
        if r.modality == modality:
            out[r.pid] = out.get(r.pid, 0) + 1
    return out


@pytest.mark.parametrize("name,modality,table", [
    ("sysu-imb-ir10", "infrared", EXPECTED_10), ("sysu-imb-ir20", "infrared", EXPECTED_20),
    ("sysu-imb-vis10", "visible", EXPECTED_10), ("sysu-imb-vis20", "visible", EXPECTED_20)])
def test_removes_stated_fraction_per_identity(name, modality, table):
    spec = get_protocol(name)
    records = _records()
    kept = apply_training_variant(spec, records, seed=0)
    before, after = _count(records, modality), _count(kept, modality)
    for pid, n in before.items():
        assert n - after.get(pid, 0) == table[n], (pid, n)
        assert after.get(pid, 0) >= 1  # never all of an identity's images
    other = "visible" if modality == "infrared" else "infrared"
    assert _count(kept, other) == _count(records, other)
    assert [r for r in records if r in set(kept)] == list(kept)  # order kept


def test_seeded_deterministic_and_nested():
    ir10, ir20 = get_protocol("sysu-imb-ir10"), get_protocol("sysu-imb-ir20")
    records = _records()
    a = set(plan_reduction(ir10, records, 3).removed)
    assert a == set(plan_reduction(ir10, list(reversed(records)), 3).removed)
    assert a != set(plan_reduction(ir10, records, 4).removed)
    assert a <= set(plan_reduction(ir20, records, 3).removed)


def test_removal_count_rounding_and_cap():
    assert removal_count(0.1, 5) == 1 and removal_count(0.1, 15) == 2 and removal_count(0.1, 4) == 0
    assert removal_count(0.5, 1) == 0 and removal_count(0.9, 3) == 2 and removal_count(0.2, 0) == 0


def test_cap_warns_instead_of_removing_everything():
    spec = ProtocolSpec(name="imb-big", family="t", version=1, dataset="sysu", description="d",
                        kind="training", reduction=ReductionSpec("infrared", 0.6),
                        evaluate_with=("sysu-all-single",))
    records = _records()
    with pytest.warns(UserWarning, match=r"imb-big: identities \[1\] keep one infrared image"):
        kept = apply_training_variant(spec, records, 0)
    assert _count(kept, "infrared")[1] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        apply_training_variant(get_protocol("sysu-imb-ir20"), records, 0)


def test_errors():
    with pytest.raises(VibenchError, match="not a training variant"):
        apply_training_variant(get_protocol("sysu-all-single"), _records(), 0)
    with pytest.raises(VibenchError, match="seed: expected an integer"):
        apply_training_variant(get_protocol("sysu-imb-ir10"), _records(), "0")
