"""FCI: votes from 2D label maps, FLAME masks, face parser, selections."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from engine.avatar.demo import load_demo_avatar
from engine.data.vhap_format import read_dataset
from engine.head.components import LABEL
from engine.head.flame_file import FlameFileError
from engine.head.flame_masks import face_labels_from_flame_masks, read_flame_masks
from engine.semantics.fci import (agreement, dataset_label_views, identify, triangle_labels, vote_labels,
                                  voted_labels)
from engine.semantics.selection import Selection, knn_neighbours, load_selection, save_selection


@pytest.fixture(scope="module")
def synth(synth_128):
    return read_dataset(synth_128)  # shared with test_masks_cli (tests/conftest.py)


@pytest.mark.slow
def test_votes_agree_with_triangle_labels(synth):
    avatar = load_demo_avatar()
    votes = vote_labels(avatar, dataset_label_views(avatar, synth, "train"))
    labels, seen = voted_labels(votes)
    opacity = torch.sigmoid(avatar.gaussians.opacity_logit)
    tri = triangle_labels(avatar)
    share = agreement(labels, tri, opacity, seen)
    print("agreement", share, "seen", float(seen.float().mean()))
    # the spec's floor; deterministic (conftest pins the threads): measured 0.9518 in every run, margin 0.0018
    # (Gaussians with votes of at least SEEN_SHARE of a view's pixels)
    assert share >= 0.95
    assert float((opacity * seen).sum() / opacity.sum()) > 0.6  # measured 0.742
    fused = identify(tri, votes)
    assert agreement(fused.labels, tri, opacity) >= share
    assert ((fused.confidence > 0) & (fused.confidence <= 1)).all()
    assert torch.equal(fused.labels[~fused.seen], tri[~fused.seen])


def test_flame_masks_to_face_labels(tmp_path):
    head = load_demo_avatar().head
    rest = head(head.neutral_params())[0]
    faces = head.faces
    def verts_of(name):
        return np.unique(faces[head.face_labels == LABEL[name]].numpy())
    masks = {"face": np.setdiff1d(np.arange(head.n_verts), verts_of("hair")), "lips": np.concatenate([verts_of("upper_lip"), verts_of("lower_lip")]),
             "left_eyeball": verts_of("left_eye"), "right_eyeball": verts_of("right_eye"), "scalp": verts_of("hair")}
    path = tmp_path / "FLAME_masks.pkl"
    path.write_bytes(pickle.dumps(masks, protocol=2))
    read = read_flame_masks(path)
    assert set(read) == set(masks)
    labels = face_labels_from_flame_masks(read, faces, rest)
    for name in ("left_eye", "right_eye", "hair"):
        assert float((labels[head.face_labels == LABEL[name]] == LABEL[name]).float().mean()) > 0.8
    lips = torch.isin(head.face_labels, torch.tensor([LABEL["upper_lip"], LABEL["lower_lip"]]))
    assert float((labels[lips] == head.face_labels[lips]).float().mean()) > 0.7
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    with pytest.raises(FlameFileError, match="evil.pkl"):
        read_flame_masks(evil)


# CelebAMask-HQ classes and the component each must become, written out here independently of the engine's table
CELEBAMASK_EXPECTED = {
    "background": None, "skin": "skin", "nose": "nose", "eye_g": "accessory", "l_eye": "left_eye",
    "r_eye": "right_eye", "l_brow": "left_brow", "r_brow": "right_brow", "l_ear": "ears", "r_ear": "ears",
    "mouth": "mouth_interior", "u_lip": "upper_lip", "l_lip": "lower_lip", "hair": "hair", "hat": "accessory",
    "ear_r": "accessory", "neck_l": "accessory", "neck": "neck", "cloth": None,
}


def test_face_parser_tiny_segformer(tmp_path, synth):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    from engine.semantics.face_parser import FaceParser

    names = sorted(CELEBAMASK_EXPECTED, reverse=True)  # class ids in another order than the engine's table
    cfg = SegformerConfig(num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
                          hidden_sizes=[8, 8, 16, 16], depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 1, 1],
                          decoder_hidden_size=16)
    torch.manual_seed(0)
    SegformerForSemanticSegmentation(cfg).save_pretrained(tmp_path / "parser")
    parser = FaceParser.from_path(tmp_path / "parser", input_size=64)
    avatar = load_demo_avatar()
    views = dataset_label_views(avatar, synth, "train", size=64, stride=10, parser=parser)
    assert views and views[0].labels.shape == (64, 64)
    assert set(views[0].labels.unique().tolist()) <= set(parser.table.tolist())
    votes = vote_labels(avatar, views)
    assert votes.shape == (avatar.gaussians.count, 13) and float(votes.sum()) > 0
    # logits set by hand: the classifier answers one class everywhere; the parse must be that class's component
    classifier = parser.model.decode_head.classifier
    image = torch.rand(40, 48, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        classifier.weight.zero_()
        for class_id, name in enumerate(names):
            classifier.bias.copy_(torch.nn.functional.one_hot(torch.tensor(class_id), len(names)).float())
            expected = CELEBAMASK_EXPECTED[name]
            want = -1 if expected is None else LABEL[expected]
            parsed = parser.parse(image)
            assert parsed.shape == (40, 48) and bool((parsed == want).all()), (name, parsed.unique().tolist())
        # and a view parsed as all upper lip votes upper lip for every Gaussian it sees
        classifier.bias.copy_(torch.nn.functional.one_hot(torch.tensor(names.index("u_lip")), len(names)).float())
    lip_views = dataset_label_views(avatar, synth, "train", size=64, stride=10, parser=parser)
    lip_votes = vote_labels(avatar, lip_views)
    voted = lip_votes.sum(0)
    assert float(voted[LABEL["upper_lip"]]) > 0 and float(voted.sum() - voted[LABEL["upper_lip"]]) == 0.0
    with pytest.raises(ValueError, match="no-such"):
        FaceParser.from_path(tmp_path / "no-such")


def test_selection_ops_and_file(tmp_path):
    pts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2.5, 0, 0], [4.5, 0, 0]])
    nb = knn_neighbours(pts, 1)
    assert nb.tolist() == [[1], [0], [1], [2]]
    s = Selection(torch.tensor([0.0, 1.0, 0.0, 0.0]))
    assert s.grown(nb).mask.tolist() == [True, True, True, False]
    assert s.shrunk(nb).mask.sum() == 0
    assert s.inverted().mask.tolist() == [True, False, True, True]
    assert s.union(torch.tensor([1.0, 0, 0, 0])).subtract(torch.tensor([0, 1.0, 0, 0])).mask.tolist() == [True, False, False, False]
    save_selection(s.with_threshold(0.3), tmp_path / "sel.npz")
    back = load_selection(tmp_path / "sel.npz", 4)
    assert torch.equal(back.weights, s.weights) and back.threshold == pytest.approx(0.3)
    with pytest.raises(ValueError, match="sel.npz.*5"):
        load_selection(tmp_path / "sel.npz", 5)
