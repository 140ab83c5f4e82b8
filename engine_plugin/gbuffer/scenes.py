"""The built-in procedural demo scene: a street with buildings, trees, lamp posts, driving and parked cars and
walking people, made of textured primitives, lit by a sun, seen from a camera driving down the road.

Deterministic: the same seed and frame count give the same scene, frame for frame.
"""

from __future__ import annotations

import numpy as np
import trimesh

from neurender.engine_plugin.gbuffer import textures as tx
from neurender.engine_plugin.gbuffer.scene import Camera, Scene, SceneObject, rotation_y, translation
from neurender.proto.classes import ClassInfo

# Class table of the street scene (Cityscapes colours). 9 classes: fits the `tiny` presets (num_classes=12).
STREET_CLASSES: tuple[ClassInfo, ...] = (
    ClassInfo(0, "sky", (70, 130, 180)),
    ClassInfo(1, "terrain", (152, 251, 152)),
    ClassInfo(2, "road", (128, 64, 128)),
    ClassInfo(3, "sidewalk", (244, 35, 232)),
    ClassInfo(4, "building", (70, 70, 70)),
    ClassInfo(5, "vegetation", (107, 142, 35)),
    ClassInfo(6, "pole", (153, 153, 153)),
    ClassInfo(7, "car", (0, 0, 142)),
    ClassInfo(8, "person", (220, 20, 60)),
)
CLASS_ID = {c.name: c.id for c in STREET_CLASSES}

ROAD_HALF_WIDTH = 5.0
SIDEWALK_OUTER = 8.0
LANE_X = 2.2
PARKED_X = 4.05
SIDEWALK_HEIGHT = 0.15
CAMERA_HEIGHT = 1.6


def _box(extents: tuple[float, float, float], centre: tuple[float, float, float]) -> trimesh.Trimesh:
    return trimesh.creation.box(extents=extents, transform=translation(*centre))


class _Builder:
    """Collects objects, handing out instance IDs to things (instance 0 stays with stuff)."""

    def __init__(self, num_frames: int) -> None:
        self.objects: list[SceneObject] = []
        self.num_frames = num_frames
        self.next_instance = 1

    def stuff(self, name: str, cls: str, meshes: list[trimesh.Trimesh]) -> None:
        self.objects.append(SceneObject(name, CLASS_ID[cls], 0, meshes))

    def thing(
        self,
        name: str,
        cls: str,
        meshes: list[trimesh.Trimesh],
        poses: np.ndarray | None = None,
        instance: int | None = None,
    ) -> int:
        if instance is None:
            instance, self.next_instance = self.next_instance, self.next_instance + 1
        self.objects.append(SceneObject(name, CLASS_ID[cls], instance, meshes, np.eye(4) if poses is None else poses))
        return instance


def street_scene(seed: int = 0, num_frames: int = 24, fps: float = 10.0, camera_speed: float | None = None) -> Scene:
    """A seeded street. The camera drives along -Z in the right lane with a gentle sway; cars drive in both
    lanes or stand parked; people walk on the sidewalks swinging their legs."""
    if num_frames < 1:
        raise ValueError(f"num_frames {num_frames}: expected at least 1")
    rng = np.random.default_rng(seed)
    b = _Builder(num_frames)
    times = np.arange(num_frames) / fps
    speed = float(rng.uniform(4.0, 8.0)) if camera_speed is None else camera_speed
    travel = speed * times[-1]
    z_near, z_far = 25.0, -(travel + 110.0)  # the street's extent along Z
    length = z_near - z_far
    z_mid = 0.5 * (z_near + z_far)

    # Ground: grass, road, sidewalks (stuff).
    b.stuff(
        "terrain",
        "terrain",
        [tx.box_uv(_box((240.0, 0.1, length + 60), (0, -0.07, z_mid)), tx.material(tx.grass(rng)), (4.0, 4.0))],
    )
    b.stuff(
        "road",
        "road",
        [
            tx.box_uv(
                _box((2 * ROAD_HALF_WIDTH, 0.1, length), (0, -0.05, z_mid)),
                tx.material(tx.asphalt(rng)),
                (2 * ROAD_HALF_WIDTH, 6.0),
                offset=(ROAD_HALF_WIDTH, 0.0),
            )
        ],
    )
    paving = tx.material(tx.paving(rng))
    width = SIDEWALK_OUTER - ROAD_HALF_WIDTH
    for side in (-1, 1):
        x = side * (ROAD_HALF_WIDTH + 0.5 * width)
        b.stuff(
            f"sidewalk{side:+d}",
            "sidewalk",
            [
                tx.box_uv(
                    _box((width, SIDEWALK_HEIGHT, length), (x, SIDEWALK_HEIGHT / 2 - 0.02, z_mid)), paving, (2.0, 2.0)
                )
            ],
        )

    # Buildings along both sides, each a thing with its own facade.
    for side in (-1, 1):
        z = z_near
        while z > z_far:
            w = float(rng.uniform(7.0, 16.0))
            if rng.random() < 0.8:
                depth, height = float(rng.uniform(8.0, 14.0)), float(rng.uniform(6.0, 24.0))
                x = side * (SIDEWALK_OUTER + 2.5 + float(rng.uniform(0.0, 3.0)) + depth / 2)
                mesh = tx.box_uv(
                    _box((depth, height, w), (x, height / 2, z - w / 2)), tx.material(tx.facade(rng)), (6.0, 6.4)
                )
                b.thing(f"building{len(b.objects)}", "building", [mesh])
            z -= w + float(rng.uniform(0.5, 4.0))

    # Trees and lamp posts at the sidewalks' outer edge.
    leaves, wood = tx.material(tx.foliage(rng)), tx.material(tx.bark(rng))
    for side in (-1, 1):
        for z in np.arange(z_near, z_far, -float(rng.uniform(9.0, 14.0))):
            zt = float(z + rng.uniform(-2.0, 2.0))
            x = side * (SIDEWALK_OUTER + 1.0)
            trunk_h = float(rng.uniform(1.8, 3.0))
            radius = float(rng.uniform(1.2, 2.2))
            trunk = tx.box_uv(
                trimesh.creation.cylinder(
                    0.18, trunk_h, sections=10, transform=translation(x, trunk_h / 2, zt) @ _x_to_y()
                ),
                wood,
                (1.0, 1.0),
            )
            crown = tx.box_uv(_sphere(radius, (x, trunk_h + radius * 0.8, zt)), leaves, (1.5, 1.5), smooth=True)
            b.thing(f"tree{len(b.objects)}", "vegetation", [trunk, crown])
        metal = tx.material(tx.paint(rng, (120, 122, 125)), 0.5)
        for z in np.arange(z_near - 6.0, z_far, -16.0):
            x = side * (ROAD_HALF_WIDTH + 0.4)
            post = tx.box_uv(
                trimesh.creation.cylinder(0.09, 5.0, sections=8, transform=translation(x, 2.5, float(z)) @ _x_to_y()),
                metal,
                (1.0, 1.0),
            )
            arm = tx.box_uv(_box((1.2, 0.12, 0.25), (x - side * 0.55, 5.0, float(z))), metal, (1.0, 1.0))
            b.thing(f"lamp{len(b.objects)}", "pole", [post, arm])

    # Cars: the camera's lane (-Z direction, x > 0), the oncoming lane, and parked at the kerbs.
    for _ in range(int(rng.integers(1, 4))):  # ahead of the camera, never slower than it by much
        z0 = float(rng.uniform(z_far + 40.0, -15.0))
        v = -(speed + float(rng.uniform(-1.0, 3.0)))
        poses = np.stack([translation(LANE_X, 0.0, z0 + v * t) for t in times])
        b.thing(f"car{len(b.objects)}", "car", _car_meshes(rng), poses)
    for _ in range(int(rng.integers(2, 5))):  # oncoming
        z0 = float(rng.uniform(z_far + 20.0, z_near - 15.0))
        v = float(rng.uniform(3.0, 12.0))
        poses = np.stack([translation(-LANE_X, 0.0, z0 + v * t) @ rotation_y(np.pi) for t in times])
        b.thing(f"car{len(b.objects)}", "car", _car_meshes(rng), poses)
    for side in (-1, 1):
        for _ in range(int(rng.integers(1, 4))):
            z0 = float(rng.uniform(z_far + 10.0, z_near - 10.0))
            b.thing(
                f"parked{len(b.objects)}",
                "car",
                _car_meshes(rng),
                translation(side * PARKED_X, 0.0, z0) @ rotation_y(float(rng.integers(0, 2)) * np.pi),
            )

    # People walking on the sidewalks, legs swinging (legs are objects of the same instance).
    for _ in range(int(rng.integers(3, 8))):
        side = float(rng.choice([-1.0, 1.0]))
        x = side * float(rng.uniform(ROAD_HALF_WIDTH + 0.6, SIDEWALK_OUTER - 0.5))
        z0 = float(rng.uniform(-travel - 40.0, 0.0))
        direction = float(rng.choice([-1.0, 1.0]))
        walk = direction * float(rng.uniform(0.8, 1.6))
        heading = 0.0 if direction < 0 else np.pi
        phase = float(rng.uniform(0, 2 * np.pi))
        root = np.stack([translation(x, SIDEWALK_HEIGHT, z0 + walk * t) @ rotation_y(heading) for t in times])
        shirt = tx.material(tx.paint(rng, tuple(int(c) for c in rng.integers(30, 230, 3))))
        trousers = tx.material(tx.paint(rng, tuple(int(c) for c in rng.integers(20, 120, 3))))
        skin = tx.material(
            tx.paint(
                rng, tuple(int(c) for c in rng.choice([(230, 190, 160), (190, 140, 100), (120, 80, 55)])), grain=0.05
            )
        )
        torso = tx.box_uv(_box((0.45, 0.65, 0.25), (0, 1.2, 0)), shirt, (0.5, 0.5))
        head = tx.box_uv(_sphere(0.13, (0, 1.68, 0)), skin, (0.3, 0.3), smooth=True)
        instance = b.thing(f"person{len(b.objects)}", "person", [torso, head], root)
        for leg_x, leg_phase in ((-0.11, 0.0), (0.11, np.pi)):
            leg = tx.box_uv(_box((0.16, 0.85, 0.16), (0, -0.425, 0)), trousers, (0.5, 0.5))
            swing = 0.45 * np.sin(2 * np.pi * 1.8 * times * abs(walk) / 1.2 + phase + leg_phase)
            poses = np.stack([r @ translation(leg_x, 0.87, 0) @ _rotation_x(s) for r, s in zip(root, swing)])
            b.thing(f"leg{len(b.objects)}", "person", [leg], poses, instance=instance)

    # Camera: drives down the right lane, a slight sway and yaw.
    x0 = float(rng.uniform(LANE_X - 0.7, LANE_X + 0.7))
    sway = float(rng.uniform(0.0, 0.4))
    yaw_amp = float(rng.uniform(0.0, 0.08))
    phase = float(rng.uniform(0, 2 * np.pi))
    cam_poses = np.stack(
        [
            translation(x0 + sway * np.sin(0.8 * t + phase), CAMERA_HEIGHT, -speed * t)
            @ rotation_y(yaw_amp * np.sin(0.6 * t + phase))
            @ _rotation_x(-0.05)
            for t in times
        ]
    )
    camera = Camera(poses=cam_poses, yfov=np.deg2rad(60.0), znear=0.25, zfar=400.0)
    return Scene(objects=b.objects, camera=camera, classes=STREET_CLASSES, fps=fps)


def _sphere(radius: float, centre: tuple[float, float, float]) -> trimesh.Trimesh:
    return trimesh.creation.icosphere(2, radius).apply_translation(centre)


def _x_to_y() -> np.ndarray:
    """trimesh cylinders run along Z; this stands them up along Y."""
    return _rotation_x(np.pi / 2)


def _rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    m = np.eye(4)
    m[1, 1], m[1, 2], m[2, 1], m[2, 2] = c, -s, s, c
    return m


def _car_meshes(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """A car along Z (front towards -Z): body, cabin with glass, four wheels."""
    colour = tuple(
        int(c)
        for c in rng.choice(
            [(180, 20, 20), (20, 60, 160), (220, 220, 220), (30, 30, 30), (200, 170, 40), (60, 120, 70)]
        )
    )
    length, width = float(rng.uniform(3.8, 4.8)), float(rng.uniform(1.7, 1.9))
    body = tx.box_uv(_box((width, 0.75, length), (0, 0.65, 0)), tx.material(tx.paint(rng, colour), 0.4), (1.0, 1.0))
    cabin = tx.box_uv(
        _box((width * 0.9, 0.6, length * 0.5), (0, 1.3, 0.1 * length)),
        tx.material(tx.paint(rng, (40, 50, 60), grain=0.3), 0.2),
        (1.0, 1.0),
    )
    tyre = tx.material(tx.paint(rng, (25, 25, 25)))
    wheels = [
        tx.box_uv(
            trimesh.creation.cylinder(
                0.33,
                0.22,
                sections=14,
                transform=translation(sx * width / 2, 0.33, sz * length * 0.32) @ _rotation_y90(),
            ),
            tyre,
            (1.0, 1.0),
        )
        for sx in (-1, 1)
        for sz in (-1, 1)
    ]
    return [body, cabin, *wheels]


def _rotation_y90() -> np.ndarray:
    return rotation_y(np.pi / 2)


__all__ = ["CLASS_ID", "STREET_CLASSES", "street_scene"]
