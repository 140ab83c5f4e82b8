"""The target person the renderer plays: a clothed, textured body posed by canonical 3D joints.

Every body part is a rigid mesh attached to canonical BODY_25 points (neurender.retarget.canonical), so a
retargeted clip (bone lengths constant) moves it without stretching: capsules around the limbs, a lofted torso
of elliptical sections (jeans below the waist, a striped shirt above), an ellipsoid head with a hair cap,
hands, and shoes spanning heel to toes. Sizes are shares of the body's leg length (hip to ankle), as the
canonical body is, so any target's units work. The scene is rendered by the one G-buffer renderer
(neurender.engine_plugin.gbuffer.renderer) through the camera that retargeting framed the clip with, so the rendered
person lies exactly under the projected keypoints the pose maps are drawn from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from neurender.engine_plugin.gbuffer import textures as tx
from neurender.engine_plugin.gbuffer.scene import Camera, Scene, SceneObject
from neurender.proto.classes import ClassInfo
from neurender.retarget.camera import Camera as PoseCamera
from neurender.retarget.canonical import INDEX, body_axes, leg_length

PERSON_CLASSES: tuple[ClassInfo, ...] = (
    ClassInfo(0, "background", (0, 0, 0)),
    ClassInfo(1, "floor", (128, 96, 64)),
    ClassInfo(2, "person", (220, 20, 60)),
)
PERSON_INSTANCE = 1
LEG_METRES = 0.9  # the scene is scaled so that the leg (hip to ankle) is this long: plausible clip planes

# Torso sections along the mid-hip -> neck axis: (height, half-width, half-depth) in leg lengths, for a torso
# 0.59 leg lengths long (the canonical body's); heights scale with the actual torso.
_PELVIS = ((-0.13, 0.09, 0.07), (-0.07, 0.165, 0.10), (0.04, 0.175, 0.105), (0.15, 0.16, 0.10))
_CHEST = (
    (0.13, 0.16, 0.10),
    (0.28, 0.15, 0.095),
    (0.44, 0.18, 0.105),
    (0.55, 0.20, 0.095),
    (0.61, 0.15, 0.07),
    (0.645, 0.07, 0.05),
)
_CANONICAL_TORSO = 0.59

# Limb capsules: (name, from point, to point, radius in leg lengths, material).
_LIMBS = (
    ("neck", "neck", None, 0.045, "skin"),  # to the head's centre
    ("r_upper_arm", "r_shoulder", "r_elbow", 0.056, "shirt"),
    ("l_upper_arm", "l_shoulder", "l_elbow", 0.056, "shirt"),
    ("r_forearm", "r_elbow", "r_wrist", 0.043, "skin"),
    ("l_forearm", "l_elbow", "l_wrist", 0.043, "skin"),
    ("r_thigh", "r_hip", "r_knee", 0.085, "trousers"),
    ("l_thigh", "l_hip", "l_knee", 0.085, "trousers"),
    ("r_shin", "r_knee", "r_ankle", 0.060, "trousers"),
    ("l_shin", "l_knee", "l_ankle", 0.060, "trousers"),
)
_HEAD_RADII = np.array([0.095, 0.12, 0.11])  # lateral, up, front-back (leg lengths)
_HAND_RADII = np.array([0.030, 0.042, 0.075])  # across the palm, palm width, along the forearm
_SHOE = (0.11, 0.10)  # width, height (leg lengths); length: heel to toes + margin


@dataclass(frozen=True)
class Outfit:
    """The target person's look (RGB)."""

    skin: tuple[int, int, int] = (222, 170, 135)
    shirt: tuple[int, int, int] = (200, 45, 40)
    stripes: tuple[int, int, int] = (240, 235, 225)
    trousers: tuple[int, int, int] = (40, 60, 110)
    shoes: tuple[int, int, int] = (235, 235, 230)
    hair: tuple[int, int, int] = (70, 45, 30)


def _striped(
    rng: np.random.Generator, base: tuple[int, int, int], stripe: tuple[int, int, int], size: int = 64, stripes: int = 3
) -> np.ndarray:
    """A cloth texture with `stripes` broad horizontal stripes per tile."""
    image = tx.paint(rng, base, size)
    band = np.arange(size) % (size // stripes) < size // (3 * stripes)
    image[band] = tx.paint(rng, stripe, size)[band]
    return image


def outfit_materials(outfit: Outfit, seed: int) -> dict[str, trimesh.visual.material.PBRMaterial]:
    rng = np.random.default_rng(seed)
    return {
        "skin": tx.material(tx.paint(rng, outfit.skin, grain=0.05), 0.7),
        "shirt": tx.material(_striped(rng, outfit.shirt, outfit.stripes)),
        "trousers": tx.material(
            tx.tint(
                tx.fractal_noise(rng, 64, 4, 8),
                tuple(int(c * 0.7) for c in outfit.trousers),
                tuple(min(255, int(c * 1.3)) for c in outfit.trousers),
            )
        ),
        "shoes": tx.material(tx.paint(rng, outfit.shoes, grain=0.08), 0.5),
        "hair": tx.material(tx.paint(rng, outfit.hair, grain=0.3)),
    }


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _frames(
    origin: np.ndarray, axis: np.ndarray, reference: np.ndarray, axis_column: int, reference_column: int
) -> np.ndarray:
    """World-from-local [F, 4, 4] at `origin`: local axis `axis_column` (0 x, 1 y, 2 z) along `axis`, local axis
    `reference_column` along `reference` made orthogonal to it, the third completing a right-handed frame."""
    a = _unit(axis)
    r = reference - np.sum(reference * a, axis=-1, keepdims=True) * a
    fallback = np.cross(a, np.array([0.0, 0.0, 1.0]))
    r = _unit(np.where(np.linalg.norm(r, axis=-1, keepdims=True) > 1e-6, r, fallback))
    third = 3 - axis_column - reference_column
    columns: list[np.ndarray] = [a, a, a]
    columns[axis_column], columns[reference_column] = a, r
    cyclic = (reference_column - axis_column) % 3 == 1
    columns[third] = np.cross(a, r) if cyclic else np.cross(r, a)
    m = np.zeros((len(origin), 4, 4))
    m[:, :3, :3] = np.stack(columns, axis=-1)
    m[:, :3, 3] = origin
    m[:, 3, 3] = 1.0
    return m


def _loft(sections: tuple[tuple[float, float, float], ...], height_scale: float, segments: int = 20) -> trimesh.Trimesh:
    """A closed tube along +y through elliptical sections (y, half-width along x, half-depth along z)."""
    angles = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    rings = [
        np.stack([a * np.cos(angles), np.full(segments, y * height_scale), b * np.sin(angles)], axis=1)
        for y, a, b in sections
    ]
    vertices = np.concatenate(
        rings + [np.array([[0.0, sections[0][0] * height_scale, 0.0], [0.0, sections[-1][0] * height_scale, 0.0]])]
    )
    faces = []
    for k in range(len(rings) - 1):
        for i in range(segments):
            a, b = k * segments + i, k * segments + (i + 1) % segments
            faces += [(a, b + segments, b), (a, a + segments, b + segments)]
    bottom, top, last = len(vertices) - 2, len(vertices) - 1, (len(rings) - 1) * segments
    for i in range(segments):
        faces += [(bottom, i, (i + 1) % segments), (top, last + (i + 1) % segments, last + i)]
    mesh = trimesh.Trimesh(vertices, np.array(faces), process=False)
    mesh.fix_normals()
    return mesh


def _ellipsoid(radii: np.ndarray) -> trimesh.Trimesh:
    return trimesh.creation.icosphere(2, 1.0).apply_scale(radii)


def _capsule(length: float, radius: float) -> trimesh.Trimesh:
    """A capsule along +z from 0 to `length` (hemispherical caps around both ends)."""
    return trimesh.creation.capsule(height=length, radius=radius, count=[14, 10]).apply_translation((0, 0, length / 2))


def body_objects(points: np.ndarray, materials: dict[str, trimesh.visual.material.PBRMaterial]) -> list[SceneObject]:
    """The person's parts as scene objects (class "person", one instance) for canonical points [F, 25, 3]
    (y-up, any units, bone lengths constant over frames)."""
    p = {name: points[:, i] for name, i in INDEX.items()}
    leg = float(np.median(leg_length(points)))
    forward = body_axes(points)[..., 0]

    def part(name: str, meshes: list[trimesh.Trimesh], poses: np.ndarray) -> SceneObject:
        return SceneObject(name, 2, PERSON_INSTANCE, meshes, poses)

    def uv(mesh: trimesh.Trimesh, material: str, tile: float = 0.5, smooth: bool = True) -> trimesh.Trimesh:
        return tx.box_uv(mesh, materials[material], (tile * leg, tile * leg), smooth=smooth)

    objects = []
    # Torso: local x towards the body's left, y up the spine (so z points forward).
    spine = p["neck"] - p["mid_hip"]
    torso_scale = float(np.median(np.linalg.norm(spine, axis=-1))) / _CANONICAL_TORSO
    lateral = (p["l_shoulder"] - p["r_shoulder"]) + (p["l_hip"] - p["r_hip"])
    torso = _frames(p["mid_hip"], spine, lateral, 1, 0)
    objects.append(
        part(
            "torso",
            [
                uv(_loft(_PELVIS, torso_scale).apply_scale(leg), "trousers"),
                uv(_loft(_CHEST, torso_scale).apply_scale(leg), "shirt", tile=0.6),
            ],
            torso,
        )
    )

    # Head: centred between the ears, a little forward and up; local x to the left ear, y up, z forward.
    ears = 0.5 * (p["l_ear"] + p["r_ear"])
    head_up = ears - p["neck"]
    head = _frames(ears, p["l_ear"] - p["r_ear"], head_up, 0, 1)
    centre_local = np.array([0.0, 0.03, 0.015]) * leg
    centre = head[:, :3, 3] + np.einsum("fij,j->fi", head[:, :3, :3], centre_local)
    head[:, :3, 3] = centre
    face = _ellipsoid(_HEAD_RADII * leg)
    hair = _ellipsoid(_HEAD_RADII * leg * 1.07)
    c = hair.triangles_center / leg
    hair.update_faces(c[:, 1] + 0.8 * np.maximum(-c[:, 2], 0.0) > 0.05)  # the top, lower down at the back
    hair.remove_unreferenced_vertices()
    objects.append(part("head", [uv(face, "skin", 0.3), uv(hair, "hair", 0.3)], head))

    # Limbs: capsules from joint to joint, rolled so their local x follows the body's forward.
    for name, a, b, radius, material in _LIMBS:
        end = centre if b is None else p[b]
        direction = end - p[a]
        length = float(np.median(np.linalg.norm(direction, axis=-1)))
        objects.append(
            part(name, [uv(_capsule(length, radius * leg), material, 0.4)], _frames(p[a], direction, forward, 2, 0))
        )

    # Hands: ellipsoids beyond the wrists along the forearms.
    for side in ("r", "l"):
        forearm = _unit(p[f"{side}_wrist"] - p[f"{side}_elbow"])
        pose = _frames(p[f"{side}_wrist"] + forearm * 0.07 * leg, forearm, forward, 2, 0)
        objects.append(part(f"{side}_hand", [uv(_ellipsoid(_HAND_RADII * leg), "skin", 0.3)], pose))

    # Shoes: boxes from heel to toes, sole at the foot points, local x along the foot, y up the leg.
    width, height = _SHOE
    for side in ("r", "l"):
        toes = 0.5 * (p[f"{side}_big_toe"] + p[f"{side}_small_toe"])
        heel = p[f"{side}_heel"]
        along = toes - heel
        length = float(np.median(np.linalg.norm(along, axis=-1))) + 0.06 * leg
        frame = _frames(0.5 * (toes + heel), along, p[f"{side}_ankle"] - heel, 0, 1)
        box = trimesh.creation.box(extents=(length, height * leg, width * leg))
        box.apply_translation((0.0, 0.35 * height * leg, 0.0))
        objects.append(part(f"{side}_shoe", [tx.box_uv(box, materials["shoes"], (0.3 * leg, 0.3 * leg))], frame))
    return objects


def floor_object(points: np.ndarray, seed: int, metres_per_tile: float) -> SceneObject:
    """A tiled floor at y = 0 (retargeting puts the floor there) around the whole clip, 10 leg lengths beyond it."""
    rng = np.random.default_rng([seed, 1])
    leg = float(np.median(leg_length(points)))
    lo, hi = points[..., [0, 2]].reshape(-1, 2).min(axis=0), points[..., [0, 2]].reshape(-1, 2).max(axis=0)
    size = hi - lo + 20.0 * leg
    centre = 0.5 * (lo + hi)
    thickness = 0.05 * leg
    box = trimesh.creation.box(extents=(size[0], thickness, size[1]))
    box.apply_translation((centre[0], -thickness / 2, centre[1]))
    surface = tx.material(tx.paving(rng, 128, 4))
    return SceneObject("floor", 1, 0, [tx.box_uv(box, surface, (metres_per_tile, metres_per_tile))])


def engine_camera(camera: PoseCamera, height: int, frames: int, scale: float) -> Camera:
    """The renderer's camera for retargeting's (OpenCV axes, world -> camera): the same pinhole, so a point
    lands on the same pixel in both, with the world scaled by `scale`."""
    pose = np.eye(4)
    pose[:3, :3] = (np.diag([1.0, -1.0, -1.0]) @ camera.rotation).T  # columns right, up, back
    pose[:3, 3] = camera.position * scale
    yfov = 2.0 * np.arctan(0.5 * height / camera.focal)
    return Camera(np.repeat(pose[None], frames, axis=0), yfov=yfov, znear=0.05, zfar=300.0)


def person_scene(
    points: np.ndarray, camera: PoseCamera, size: tuple[int, int], fps: float, seed: int = 0, outfit: Outfit = Outfit()
) -> Scene:
    """The clothed person performing canonical points [F, 25, 3] (retargeted: floor at y = 0), on a tiled
    floor, seen by `camera` (retargeting's, fixed) at `size` (height, width). Scaled to metres (leg 0.9 m)."""
    scale = LEG_METRES / float(np.median(leg_length(points)))
    points = points * scale
    materials = outfit_materials(outfit, seed)
    objects = [floor_object(points, seed, 1.0)] + body_objects(points, materials)
    return Scene(
        objects,
        engine_camera(camera, size[0], len(points), scale),
        PERSON_CLASSES,
        fps=fps,
        background=(205, 210, 220),
        ambient=0.45,
    )


__all__ = ["Outfit", "PERSON_CLASSES", "PERSON_INSTANCE", "body_objects", "engine_camera", "person_scene"]
