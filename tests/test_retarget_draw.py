"""The pose-map drawing function: the convention's colours per limb, widths, layouts, errors; part maps."""

from __future__ import annotations

import numpy as np
import pytest

from neurender.proto.neurender.v1 import model_pb2
from neurender.retarget.canonical import INDEX
from neurender.retarget.draw import draw_pose_map, pose_layout
from neurender.retarget.keypoints_io import COCO18_TO_CANONICAL
from neurender.retarget.part_maps import PARTS, draw_part_map

CONVENTIONS = [
    model_pb2.PoseConvention(skeleton="body25", limb_width=3),
    model_pb2.PoseConvention(skeleton="coco18", limb_width=2),
    model_pb2.PoseConvention(skeleton="body25", face=True, hands=True, limb_width=4),
    model_pb2.PoseConvention(skeleton="coco18", face=True, hands=False, limb_width=1),
]

# A spread-out BODY_25 person in a 128x136 frame: no two limbs cross, so every limb shows its colour.
SPREAD = {
    "nose": (64, 20),
    "neck": (64, 40),
    "r_shoulder": (44, 40),
    "r_elbow": (26, 40),
    "r_wrist": (8, 40),
    "l_shoulder": (84, 40),
    "l_elbow": (102, 40),
    "l_wrist": (120, 40),
    "mid_hip": (64, 80),
    "r_hip": (52, 80),
    "r_knee": (44, 100),
    "r_ankle": (38, 118),
    "l_hip": (76, 80),
    "l_knee": (84, 100),
    "l_ankle": (90, 118),
    "r_eye": (58, 12),
    "l_eye": (70, 12),
    "r_ear": (48, 18),
    "l_ear": (80, 18),
    "l_big_toe": (104, 128),
    "l_small_toe": (100, 134),
    "l_heel": (82, 130),
    "r_big_toe": (24, 128),
    "r_small_toe": (28, 134),
    "r_heel": (46, 130),
}


def _spread_body(skeleton: str) -> np.ndarray:
    body = np.zeros((25, 3))
    for name, xy in SPREAD.items():
        body[INDEX[name]] = (*xy, 1.0)
    return body if skeleton == "body25" else body[list(COCO18_TO_CANONICAL)]


@pytest.mark.parametrize(
    "convention", CONVENTIONS, ids=lambda c: f"{c.skeleton}-face{int(c.face)}-hands{int(c.hands)}-w{c.limb_width}"
)
def test_each_limb_is_drawn_in_its_own_colour_only(convention):
    layout = pose_layout(convention)
    for a, b, colour, width in layout.limbs:
        keypoints = np.zeros((1, layout.size, 3))
        keypoints[0, a] = (20.3, 30.6, 0.9)
        keypoints[0, b] = (90.0, 70.2, 0.5) if b != a else (20.3, 30.6, 0.9)
        pose_map = draw_pose_map(keypoints, 100, 120, convention)
        drawn = pose_map.reshape(-1, 3)[pose_map.reshape(-1, 3).any(axis=1)]
        assert len(drawn) > 0, f"limb {a}-{b} not drawn"
        assert (drawn == colour).all(), f"limb {a}-{b}: colours {np.unique(drawn, axis=0)}, expected {colour}"
        if a != b:
            assert tuple(pose_map[int(round((30.6 + 70.2) / 2)), int(round((20.3 + 90.0) / 2))]) == colour


@pytest.mark.parametrize("skeleton", ["body25", "coco18"])
def test_a_whole_body_shows_every_limb_colour_at_its_midpoint(skeleton):
    convention = model_pb2.PoseConvention(skeleton=skeleton, limb_width=1)
    body = _spread_body(skeleton)
    pose_map = draw_pose_map(body[None], 136, 128, convention)
    layout = pose_layout(convention)
    for a, b, colour, _ in layout.limbs:
        x, y = (body[a, :2] + body[b, :2]) / 2
        assert tuple(pose_map[int(round(y)), int(round(x))]) == colour, f"limb {a}-{b}"
    assert {tuple(c) for c in np.unique(pose_map.reshape(-1, 3), axis=0)} == {(0, 0, 0)} | {
        c for _, _, c, _ in layout.limbs
    }
    # OpenPose's colours: the torso (neck to mid-hip) red, the right upper arm orange, the left shin blue.
    if skeleton == "body25":
        assert tuple(pose_map[60, 64]) == (255, 0, 0)
        assert tuple(pose_map[40, 35]) == (255, 170, 0)
        assert tuple(pose_map[109, 87]) == (0, 0, 255)


def test_drawing_is_deterministic_and_skips_missing_points():
    convention = CONVENTIONS[2]
    layout = pose_layout(convention)
    rng = np.random.default_rng(0)
    keypoints = np.c_[rng.uniform(0, 64, (2 * layout.size, 2)), rng.uniform(0, 1, 2 * layout.size)].reshape(
        2, layout.size, 3
    )
    first = draw_pose_map(keypoints, 64, 64, convention)
    assert first.dtype == np.uint8 and first.shape == (64, 64, 3)
    assert np.array_equal(first, draw_pose_map(keypoints.copy(), 64, 64, convention))
    keypoints[..., 2] = 0
    assert not draw_pose_map(keypoints, 64, 64, convention).any()
    keypoints[..., 2] = np.nan
    assert not draw_pose_map(keypoints, 64, 64, convention).any()


def test_limb_width_follows_the_convention():
    keypoints = np.zeros((18, 3))
    keypoints[1] = (10, 32, 1)  # neck
    keypoints[2] = (54, 32, 1)  # right shoulder: a horizontal limb
    widths = []
    for width in (1, 3, 5, 7):
        pose_map = draw_pose_map(keypoints, 64, 64, model_pb2.PoseConvention(skeleton="coco18", limb_width=width))
        widths.append(int(pose_map[:, 32].any(axis=1).sum()))
    # limb_width is OpenCV's line thickness, as OpenPose draws: a line `w` thick covers w to w + 2 pixel rows.
    assert all(w <= drawn <= w + 2 for w, drawn in zip((1, 3, 5, 7), widths)) and widths == sorted(set(widths))


def test_bad_shapes_and_conventions_are_named():
    body25 = model_pb2.PoseConvention(skeleton="body25", hands=True, limb_width=3)
    with pytest.raises(
        ValueError, match=r"expected \[people, 67, 3\] .* skeleton 'body25' with face=False, hands=True"
    ):
        draw_pose_map(np.zeros((1, 25, 3)), 32, 32, body25)
    with pytest.raises(ValueError, match="skeleton 'mpii'"):
        draw_pose_map(np.zeros((1, 25, 3)), 32, 32, model_pb2.PoseConvention(skeleton="mpii", limb_width=3))
    with pytest.raises(ValueError, match="limb_width 0"):
        draw_pose_map(np.zeros((1, 25, 3)), 32, 32, model_pb2.PoseConvention(skeleton="body25"))


def test_part_maps_label_parts_and_put_nearer_limbs_on_top():
    body = _spread_body("body25")
    parts = draw_part_map(body, 136, 128)
    assert set(np.unique(parts)) == {0, *PARTS}
    assert parts[60, 64] == 1  # the torso
    # Cross the right forearm over the torso: in front of it when nearer, behind when farther.
    crossed = body.copy()
    crossed[INDEX["r_wrist"], :2] = (70, 60)
    depth = np.full(25, 5.0)
    depth[[INDEX["r_elbow"], INDEX["r_wrist"]]] = 3.0
    near = draw_part_map(crossed, 136, 128, depth)
    depth[[INDEX["r_elbow"], INDEX["r_wrist"]]] = 8.0
    far = draw_part_map(crossed, 136, 128, depth)
    assert near[57, 64] == 4 and far[57, 64] == 1
