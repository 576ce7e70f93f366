"""build_lists on hand-made indexes: list sizes, orders and the invariants of every protocol."""
from __future__ import annotations

import numpy as np
import pytest

from vibench.errors import VibenchError
from vibench.protocols import build_lists, get_protocol, list_protocols, lists_sha256

EVAL_SPECS = [s for s in list_protocols() if s.kind == "evaluation"]
OFFICIAL = {s.name for s in EVAL_SPECS if s.sampler.kind == "official"}


def _folders(layout, pred):
    return {k: n for k, n in layout.items() if pred(k)}


@pytest.mark.parametrize("spec", [s for s in EVAL_SPECS if s.name not in OFFICIAL], ids=lambda s: s.name)
def test_every_protocol_invariants(spec, indexes, excludes):
    """For two trials of every protocol: own-index correctness, the query is never left in its
    own gallery after exclusion, each query's list is the same whatever the input order, and the
    stated rule yields at least one valid query."""
    index = indexes[spec.dataset]
    for trial in spec.trials[:2]:
        lists = build_lists(spec, index, trial)
        assert lists.query and lists.gallery
        assert lists.query_gallery_index.dtype == np.int64
        assert lists.query_gallery_index.shape == (len(lists.query),)
        assert lists.sha256 == lists_sha256(lists.query, lists.gallery)
        gpos = {g.path: j for j, g in enumerate(lists.gallery)}
        assert len(gpos) == len(lists.gallery)
        valid = 0
        for i, q in enumerate(lists.query):
            s = int(lists.query_gallery_index[i])
            assert s == gpos.get(q.path, -1)
            assert q.modality in spec.query.modalities and q.cam in spec.query.cams
            kept = [j for j, g in enumerate(lists.gallery) if not excludes(spec.rule, q, g, j, s)]
            assert s not in kept, f"{spec.name}: query {q.path} left in its own gallery"
            assert all(lists.gallery[j].path != q.path for j in kept)
            valid += any(lists.gallery[j].pid == q.pid for j in kept)
        assert valid > 0
        for g in lists.gallery:
            assert spec.gallery.contains(g.modality, g.cam)
        # deterministic: built again from a reversed index -> identical lists
        again = build_lists(spec, type(index)(index.name, index.root, index.splits,
                                              index.train_records,
                                              {k: tuple(reversed(v)) for k, v in index.test_records.items()},
                                              index.meta), trial)
        if spec.query.order == "grouped" and spec.gallery.order == "grouped":
            assert again.sha256 == lists.sha256


def test_sysu_all_single_sizes_and_order(sysu_index, hand):
    spec = get_protocol("sysu-all-single")
    lists = build_lists(spec, sysu_index, 0)
    queries = _folders(hand.SYSU_TEST, lambda k: k[1] in (3, 6))
    assert len(lists.query) == sum(queries.values())
    # AGW query order: ids ascending, cam3 then cam6, files sorted
    expected = [f"cam{c}/{p:04d}/{n:04d}.jpg" for (p, c) in sorted(queries, key=lambda k: (k[0], k[1]))
                for n in range(1, queries[(p, c)] + 1)]
    assert [q.path for q in lists.query] == expected
    gal = _folders(hand.SYSU_TEST, lambda k: k[1] in (1, 2, 4, 5))
    assert len(lists.gallery) == len(gal)
    assert [(g.pid, g.cam) for g in lists.gallery] == sorted(gal, key=lambda k: (k[0], [1, 2, 4, 5].index(k[1])))
    assert (lists.query_gallery_index == -1).all()
    # the queries are not re-sampled per trial; the gallery is
    other = build_lists(spec, sysu_index, 1)
    assert other.query == lists.query
    assert {build_lists(spec, sysu_index, t).sha256 for t in range(10)} != {lists.sha256}


def test_sysu_cam3_queries_keep_no_cam2(sysu_index, excludes):
    for name in ("sysu-all-single", "sysu-all-multi", "sysu-indoor-single", "sysu-indoor-multi"):
        lists = build_lists(get_protocol(name), sysu_index, 3)
        cam2 = [j for j, g in enumerate(lists.gallery) if g.cam == 2]
        assert cam2, name
        for q in lists.query:
            kept = [j for j, g in enumerate(lists.gallery) if not excludes("sysu", q, g, j, -1)]
            if q.cam == 3:
                assert not set(kept) & set(cam2)
            else:
                assert set(cam2) <= set(kept)


def test_sysu_multi_shot_sizes(sysu_index, hand):
    for name, cams in (("sysu-all-multi", (1, 2, 4, 5)), ("sysu-indoor-multi", (1, 2))):
        lists = build_lists(get_protocol(name), sysu_index, 7)
        gal = _folders(hand.SYSU_TEST, lambda k: k[1] in cams)
        assert len(lists.gallery) == sum(min(10, n) for n in gal.values())
        per_folder: dict = {}
        for g in lists.gallery:
            per_folder[(g.pid, g.cam)] = per_folder.get((g.pid, g.cam), 0) + 1
        assert per_folder == {k: min(10, n) for k, n in gal.items()}


def test_sysu_indoor_has_invalid_queries(sysu_index):
    lists = build_lists(get_protocol("sysu-indoor-single"), sysu_index, 0)
    gallery_pids = {g.pid for g in lists.gallery}
    assert 7 not in gallery_pids and any(q.pid == 7 for q in lists.query)


def test_regdb_trials_are_splits_in_file_order(regdb_index, hand):
    for k in (1, 10):
        train, test = hand.regdb_split(k)
        v2t = build_lists(get_protocol("regdb-v2t"), regdb_index, k)
        assert list(v2t.query) == [r for r in test if r.modality == "visible"]
        assert list(v2t.gallery) == [r for r in test if r.modality == "infrared"]
        t2v = build_lists(get_protocol("regdb-t2v"), regdb_index, k)
        assert t2v.query == v2t.gallery and t2v.gallery == v2t.query
    with pytest.raises(VibenchError, match=r"no trial 0.*split numbers are 1, 2"):
        build_lists(get_protocol("regdb-v2t"), regdb_index, 0)


def test_llcm_directions(llcm_index, hand):
    nir_cams = [1, 2, 4, 5, 6, 7, 8, 9]
    i2v = build_lists(get_protocol("llcm-i2v"), llcm_index, 0)
    nir = {k: n for k, n in hand.LLCM_TEST.items() if k[1] == "infrared" and k[2] != 3}
    vis = {k: n for k, n in hand.LLCM_TEST.items() if k[1] == "visible"}
    assert len(i2v.query) == sum(nir.values())
    assert all(q.cam != 3 for q in i2v.query)  # NIR cam3 is not in the reference camera list
    assert [(q.pid, q.cam) for q in i2v.query] == sorted(
        ((p, c) for (p, _, c), n in nir.items() for _ in range(n)), key=lambda k: (k[0], nir_cams.index(k[1])))
    assert len(i2v.gallery) == len(vis)
    v2i = build_lists(get_protocol("llcm-v2i"), llcm_index, 0)
    assert len(v2i.query) == sum(vis.values()) and len(v2i.gallery) == len(nir)
    assert all(g.modality == "infrared" for g in v2i.gallery)
    deen = build_lists(get_protocol("llcm-v2i-deen-compat"), llcm_index, 0)
    # transposed: the sampled NIR images (the llcm-v2i gallery draw) are the queries
    assert deen.query == v2i.gallery
    assert list(deen.gallery) == list(v2i.query)


def test_mixed_share_one_gallery_and_rules_differ(sysu_index, hand):
    names = ["sysu-mix-i", "sysu-mixcam-i", "sysu-mixcamid-i", "sysu-mixid-i", "sysu-mixp-i"]
    built = [build_lists(get_protocol(n), sysu_index, 2) for n in names]
    assert len({b.sha256 for b in built}) == 1
    lists = built[0]
    assert len(lists.gallery) == len(hand.SYSU_TEST)  # one image per (id, camera) folder, 6 cameras
    assert {g.modality for g in lists.gallery} == {"visible", "infrared"}
    assert len(lists.query) == sum(n for (p, c), n in hand.SYSU_TEST.items() if c in (3, 6))
    # a drawn infrared gallery image is also a query: its own index is recorded
    assert (lists.query_gallery_index >= 0).sum() == sum(1 for g in lists.gallery if g.modality == "infrared")


@pytest.mark.parametrize("name", ["sysu-mixid-i", "sysu-mixid-v", "regdb-mixid-i", "regdb-mixid-v",
                                  "llcm-mixid-i", "llcm-mixid-v"])
def test_mix_id_leaves_only_cross_modal_positives(name, indexes, excludes):
    spec = get_protocol(name)
    lists = build_lists(spec, indexes[spec.dataset], spec.trials[0])
    n_same_modality_distractors = 0
    for i, q in enumerate(lists.query):
        s = int(lists.query_gallery_index[i])
        kept = [g for j, g in enumerate(lists.gallery) if not excludes(spec.rule, q, g, j, s)]
        assert all(g.modality != q.modality for g in kept if g.pid == q.pid)
        n_same_modality_distractors += sum(g.modality == q.modality for g in kept)
    assert n_same_modality_distractors > 0  # other identities of the query modality stay


@pytest.mark.parametrize("name", ["sysu-mixp-i", "sysu-mixp-v"])
def test_mix_p_keeps_only_own_identity_in_query_modality(name, sysu_index, excludes):
    spec = get_protocol(name)
    lists = build_lists(spec, sysu_index, 4)
    same_id_same_mod = 0
    for i, q in enumerate(lists.query):
        s = int(lists.query_gallery_index[i])
        kept = [g for j, g in enumerate(lists.gallery) if not excludes(spec.rule, q, g, j, s)]
        assert all(g.pid == q.pid for g in kept if g.modality == q.modality)
        assert any(g.modality != q.modality for g in kept)
        same_id_same_mod += sum(g.modality == q.modality for g in kept)
    assert same_id_same_mod > 0


def test_mix_cam_drops_whole_query_camera(sysu_index, excludes, hand):
    spec = get_protocol("sysu-mixcam-i")
    lists = build_lists(spec, sysu_index, 0)
    for i, q in enumerate(lists.query):
        kept = [g for j, g in enumerate(lists.gallery)
                if not excludes(spec.rule, q, g, j, int(lists.query_gallery_index[i]))]
        assert all(g.cam != q.cam for g in kept)
        other_ir_cam = {3: 6, 6: 3}[q.cam]
        has_other = (q.pid, other_ir_cam) in hand.SYSU_TEST
        # the query identity's images from the other infrared camera stay (Fig. 3b)
        assert any(g.pid == q.pid and g.cam == other_ir_cam for g in kept) == has_other


def test_sysu_cross_i_is_the_standard_protocol(sysu_index):
    for t in (0, 9):
        assert build_lists(get_protocol("sysu-cross-i"), sysu_index, t).sha256 == \
            build_lists(get_protocol("sysu-all-single"), sysu_index, t).sha256


def test_unimodal_positives_from_other_cameras(sysu_index, regdb_index, excludes):
    spec = get_protocol("sysu-i2i")
    lists = build_lists(spec, sysu_index, 0)
    assert all(g.modality == "infrared" for g in lists.gallery)
    for i, q in enumerate(lists.query):
        kept = [g for j, g in enumerate(lists.gallery)
                if not excludes(spec.rule, q, g, j, int(lists.query_gallery_index[i]))]
        assert all(g.cam != q.cam for g in kept if g.pid == q.pid)
    # the v2v gallery is the sysu-all-single gallery draw (same folders, same visiting order)
    assert build_lists(get_protocol("sysu-v2v"), sysu_index, 5).gallery == \
        build_lists(get_protocol("sysu-all-single"), sysu_index, 5).gallery
    t2t = build_lists(get_protocol("regdb-t2t"), regdb_index, 3)
    assert list(t2t.query_gallery_index) == list(range(len(t2t.query)))


def test_wrong_inputs_raise(sysu_index, regdb_index):
    with pytest.raises(VibenchError, match=r"no trial 10; its trial seeds are 0, 1, .*9"):
        build_lists(get_protocol("sysu-all-single"), sysu_index, 10)
    with pytest.raises(VibenchError, match="defined on sysu, but the dataset index .* is 'regdb'"):
        build_lists(get_protocol("sysu-all-single"), regdb_index, 0)
    with pytest.raises(VibenchError, match="training variant"):
        build_lists(get_protocol("sysu-imb-ir10"), sysu_index, 0)
    empty = type(sysu_index)("sysu", sysu_index.root, (0,), {0: ()}, {0: ()}, {})
    with pytest.raises(VibenchError, match="query is empty"):
        build_lists(get_protocol("sysu-all-single"), empty, 0)


def test_lists_to_dict_shape(sysu_index):
    d = build_lists(get_protocol("sysu-mix-v"), sysu_index, 1).to_dict()
    assert set(d) >= {"query", "gallery", "sha256", "query_gallery_index", "trial", "protocol"}
    assert set(d["query"][0]) == {"path", "pid", "cam", "modality"}
    assert len(d["query_gallery_index"]) == len(d["query"])
