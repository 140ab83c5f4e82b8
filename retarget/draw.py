"""The one pose-map drawing function: the dataset maker, the retargeting CLI and the server all call it.

A pose map is OpenPose-style: every limb is a straight line in its own colour on black. The convention is the
bundle's `PoseConvention` message (skeleton "body25" or "coco18", optional face and hands, limb width), so a
server that receives keypoints draws them exactly as the training data was drawn.

Keypoint layout, per person, in this order (K = body + 70 if face + 42 if hands):
    body   25 (BODY_25) or 18 (COCO-18) OpenPose keypoints
    face   70 OpenPose face keypoints (68 landmarks + 2 pupils)
    hands  21 left-hand then 21 right-hand OpenPose keypoints
Each keypoint is (x, y, confidence) in pixels; confidence 0 means "missing" and a limb is drawn only when both
its ends have confidence > 0 (filter low-confidence detections before drawing).

`limb_width` is OpenCV's line thickness (as OpenPose draws): a limb w thick covers w to w + 2 pixels across.
Drawing is deterministic: no anti-aliasing (limb pixels carry exactly the convention's colours), subpixel
end points, body limbs first then face then hands, later limbs over earlier ones. Face and hand lines are
half the limb width (at least 1 px).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from neurender.proto.neurender.v1 import model_pb2

Colour = tuple[int, int, int]
Limb = tuple[int, int, Colour]

# Limb colours follow OpenPose's renderer: a limb takes the colour of its second keypoint. RGB.
_BODY25_COLOURS: tuple[Colour, ...] = (
    (255, 0, 85),
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (255, 0, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
    (255, 0, 170),
    (170, 0, 255),
    (255, 0, 255),
    (85, 0, 255),
    (0, 0, 255),
    (0, 0, 255),
    (0, 0, 255),
    (0, 255, 255),
    (0, 255, 255),
    (0, 255, 255),
)
_BODY25_PAIRS = (
    (1, 8),
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (8, 9),
    (9, 10),
    (10, 11),
    (8, 12),
    (12, 13),
    (13, 14),
    (1, 0),
    (0, 15),
    (15, 17),
    (0, 16),
    (16, 18),
    (14, 19),
    (19, 20),
    (14, 21),
    (11, 22),
    (22, 23),
    (11, 24),
)
_COCO18_COLOURS: tuple[Colour, ...] = (
    (255, 0, 85),
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
    (255, 0, 170),
    (170, 0, 255),
    (255, 0, 255),
    (85, 0, 255),
)
_COCO18_PAIRS = (
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
)
# Hand: wrist 0; thumb 1-4, index 5-8, middle 9-12, ring 13-16, little 17-20; one hue per finger.
_HAND_COLOURS: tuple[Colour, ...] = (
    (100, 100, 100),
    (100, 0, 0),
    (150, 0, 0),
    (200, 0, 0),
    (255, 0, 0),
    (100, 100, 0),
    (150, 150, 0),
    (200, 200, 0),
    (255, 255, 0),
    (0, 100, 50),
    (0, 150, 75),
    (0, 200, 100),
    (0, 255, 125),
    (0, 50, 100),
    (0, 75, 150),
    (0, 100, 200),
    (0, 125, 255),
    (100, 0, 100),
    (150, 0, 150),
    (200, 0, 200),
    (255, 0, 255),
)
_HAND_PAIRS = tuple((0 if j == 0 else base + j - 1, base + j) for base in (1, 5, 9, 13, 17) for j in range(4))
# Face (68-point landmark order): open and closed contours, drawn in white; pupils 68 and 69 as dots.
_FACE_COLOUR: Colour = (255, 255, 255)
_FACE_CHAINS = (
    (0, 17, False),
    (17, 22, False),
    (22, 27, False),
    (27, 31, False),
    (31, 36, False),
    (36, 42, True),
    (42, 48, True),
    (48, 60, True),
    (60, 68, True),
)
_FACE_PAIRS = tuple(
    pair
    for start, stop, closed in _FACE_CHAINS
    for pair in [(i, i + 1) for i in range(start, stop - 1)] + ([(stop - 1, start)] if closed else [])
) + ((68, 68), (69, 69))

BODY_SIZES = {"body25": 25, "coco18": 18}
FACE_SIZE = 70
HAND_SIZE = 21
SUBPIXEL_BITS = 4


def _limbs(pairs: tuple[tuple[int, int], ...], colours: tuple[Colour, ...], offset: int) -> tuple[Limb, ...]:
    return tuple((a + offset, b + offset, colours[b]) for a, b in pairs)


@dataclass(frozen=True)
class Layout:
    """Where each part's keypoints sit in a [P, K, 3] array, and every limb with its colour and width."""

    skeleton: str
    size: int
    body: slice
    face: slice | None
    left_hand: slice | None
    right_hand: slice | None
    limbs: tuple[tuple[int, int, Colour, int], ...]  # (a, b, rgb, width)


def pose_layout(convention: model_pb2.PoseConvention) -> Layout:
    """The keypoint layout and limb table a convention implies; raises ValueError for a bad convention."""
    if convention.skeleton not in BODY_SIZES:
        raise ValueError(f"pose convention skeleton {convention.skeleton!r}: expected one of {sorted(BODY_SIZES)}")
    if convention.limb_width < 1:
        raise ValueError(f"pose convention limb_width {convention.limb_width}: expected >= 1")
    n_body = BODY_SIZES[convention.skeleton]
    width, fine = int(convention.limb_width), max(1, int(convention.limb_width) // 2)
    body_pairs, body_colours = (
        (_BODY25_PAIRS, _BODY25_COLOURS) if convention.skeleton == "body25" else (_COCO18_PAIRS, _COCO18_COLOURS)
    )
    limbs = [(a, b, c, width) for a, b, c in _limbs(body_pairs, body_colours, 0)]
    size, face, left, right = n_body, None, None, None
    if convention.face:
        face = slice(size, size + FACE_SIZE)
        limbs += [(a, b, _FACE_COLOUR, fine) for a, b, _ in _limbs(_FACE_PAIRS, (_FACE_COLOUR,) * FACE_SIZE, size)]
        size += FACE_SIZE
    if convention.hands:
        left, right = slice(size, size + HAND_SIZE), slice(size + HAND_SIZE, size + 2 * HAND_SIZE)
        for hand in (left, right):
            limbs += [(a, b, c, fine) for a, b, c in _limbs(_HAND_PAIRS, _HAND_COLOURS, hand.start)]
        size += 2 * HAND_SIZE
    return Layout(convention.skeleton, size, slice(0, n_body), face, left, right, tuple(limbs))


def draw_pose_map(keypoints: np.ndarray, height: int, width: int, convention: model_pb2.PoseConvention) -> np.ndarray:
    """Draw people's keypoints as an OpenPose-style pose map.

    keypoints: float [P, K, 3] (x, y, confidence) in pixels, K as `pose_layout(convention).size`
    (a single person may be given as [K, 3]). Returns uint8 [height, width, 3] RGB.
    """
    layout = pose_layout(convention)
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[1:] != (layout.size, 3):
        raise ValueError(
            f"keypoints shape {tuple(np.shape(keypoints))}: expected [people, {layout.size}, 3] (x, y, confidence) "
            f"for skeleton {layout.skeleton!r} with face={bool(convention.face)}, hands={bool(convention.hands)}"
        )
    if height < 1 or width < 1:
        raise ValueError(f"pose map size {height}x{width}: expected positive height and width")
    canvas = np.zeros((height, width, 3), np.uint8)
    scale = 1 << SUBPIXEL_BITS
    # Keep coordinates far outside the frame from overflowing OpenCV's fixed-point arithmetic.
    limit = 4 * max(height, width)
    present = np.isfinite(kp).all(axis=-1) & (kp[..., 2] > 0)
    xy = np.where(present[..., None], kp[..., :2], 0.0)
    points = np.rint(np.clip(xy, -limit, limit) * scale).astype(np.int64)
    for person, visible in zip(points.tolist(), present.tolist()):
        for a, b, colour, thickness in layout.limbs:
            if visible[a] and visible[b]:
                cv2.line(canvas, person[a], person[b], colour, thickness, cv2.LINE_8, SUBPIXEL_BITS)
    return canvas
