"""The G-buffer renderer on the real headless OpenGL stack (Mesa EGL): motion vectors, depth, IDs."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from neurender.engine_plugin.gbuffer.gltf import SceneFileError, load_gltf
from neurender.engine_plugin.gbuffer.renderer import GBufferRenderer
from neurender.engine_plugin.gbuffer.scene import Camera, Scene, SceneObject, look_at, translation
from neurender.engine_plugin.gbuffer.scenes import CLASS_ID, STREET_CLASSES, street_scene
from neurender.proto.classes import ClassInfo

H, W = 96, 128
CLASSES = (ClassInfo(0, "sky", (0, 0, 0)), ClassInfo(1, "wall", (200, 0, 0)), ClassInfo(2, "car", (0, 0, 200)))


@pytest.fixture(scope="module")
def renderer():
    with GBufferRenderer(H, W) as r:
        yield r


@pytest.fixture(scope="module")
def street():
    return street_scene(seed=3, num_frames=6)


def warp_agreement(prev_ids: np.ndarray, ids: np.ndarray, motion: np.ndarray, valid: np.ndarray) -> float:
    """Fraction of valid pixels of frame t whose ID equals frame t-1's at p + motion (nearest pixel)."""
    h, w = ids.shape
    x = np.floor(np.arange(w)[None, :] + 0.5 + motion[..., 0].astype(np.float32)).astype(int)
    y = np.floor(np.arange(h)[:, None] + 0.5 + motion[..., 1].astype(np.float32)).astype(int)
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    mask = valid & inside
    warped = prev_ids[np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)]
    return float((warped[mask] == ids[mask]).mean())


def check_warps(renderer: GBufferRenderer, scene: Scene, min_motion: float) -> None:
    frames = list(renderer.render_sequence(scene))
    assert not frames[0].motion_valid.any() and not frames[0].motion.any()
    for prev, cur in zip(frames, frames[1:]):
        assert cur.motion_valid.mean() > 0.75, "most pixels should be visible in the previous frame"
        moving = np.abs(cur.motion.astype(np.float32)).max(axis=-1)
        assert np.percentile(moving[cur.classes > 0], 90) > min_motion, "the scene should move between frames"
        for name in ("classes", "instances"):
            agreement = warp_agreement(getattr(prev, name), getattr(cur, name), cur.motion, cur.motion_valid)
            assert agreement >= 0.99, f"{name} warp agreement {agreement:.4f} at frame {cur.index}"


def test_motion_vectors_warp_ids_under_camera_motion(renderer, street):
    static = [o for o in street.objects if len(o.poses) == 1]
    scene = Scene(static, street.camera, street.classes)
    check_warps(renderer, scene, min_motion=1.0)


def test_motion_vectors_warp_ids_under_object_motion(renderer, street):
    moving = [o for o in street.objects if len(o.poses) > 1 and o.class_id == CLASS_ID["car"]]
    still = Camera(np.repeat(street.camera.poses[:1], street.num_frames, axis=0), yfov=street.camera.yfov)
    road = [o for o in street.objects if o.class_id == CLASS_ID["road"]]
    # Look at the oncoming lane from the kerb so the cars fill part of the frame.
    camera = Camera(
        np.stack([look_at(np.array([6.0, 2.0, -10.0]), np.array([-2.2, 0.8, -30.0]))] * street.num_frames),
        yfov=still.yfov,
    )
    scene = Scene(road + moving, camera, street.classes)
    frames = list(renderer.render_sequence(scene))
    assert all((f.classes == CLASS_ID["car"]).mean() > 0.02 for f in frames), "cars should be in view"
    check_warps(renderer, scene, min_motion=0.3)


def test_motion_vectors_warp_ids_in_the_full_street(renderer, street):
    check_warps(renderer, street, min_motion=1.0)


def fronto_plane(distance: float, frames: int, camera_dx: float = 0.0, object_dx: float = 0.0) -> Scene:
    """A 200 x 200 wall facing the camera at `distance`; the camera or the wall slides along +X each frame."""
    wall = trimesh.creation.box(extents=(200.0, 200.0, 1.0), transform=translation(0, 0, -distance - 0.5))
    poses = np.stack([translation(object_dx * t, 0, 0) for t in range(frames)])
    camera = Camera(np.stack([translation(camera_dx * t, 0, 0) for t in range(frames)]), yfov=np.deg2rad(50))
    return Scene([SceneObject("wall", 1, 1, [wall], poses)], camera, CLASSES)


def test_depth_of_a_facing_plane_is_its_distance(renderer):
    frame = renderer.render(fronto_plane(7.25, 1), 0)
    assert (frame.classes == 1).all()
    np.testing.assert_allclose(frame.depth.astype(np.float32), 7.25, rtol=1e-3)


def test_depth_of_the_ground_matches_the_analytic_distance(renderer):
    h = 1.5  # camera height over a ground plane, looking along -Z
    ground = trimesh.creation.box(extents=(400.0, 1.0, 400.0), transform=translation(0, -h - 0.5, -150))
    camera = Camera(np.eye(4)[None], yfov=np.deg2rad(60), znear=0.1, zfar=1000.0)
    frame = renderer.render(Scene([SceneObject("ground", 1, 0, [ground])], camera, CLASSES), 0)
    fx, fy, cx, cy = camera.intrinsics(H, W)
    rows = np.arange(H) + 0.5
    below = rows - cy  # pixels below the horizon see the ground at view depth h * fy / below
    expected = np.where(below > 0, h * fy / np.maximum(below, 1e-9), np.inf)
    visible = (below > 2) & (h * fy / np.maximum(below, 1e-9) < 150)  # clear of the horizon and the far edge
    np.testing.assert_allclose(
        frame.depth[visible].astype(np.float32), np.broadcast_to(expected[:, None], (H, W))[visible], rtol=2e-3
    )
    assert np.isinf(frame.depth[below < 0]).all() and (frame.classes[below < 0] == 0).all()


@pytest.mark.parametrize(
    "extents, centre_z, change, seen_at",
    [
        ((20.0, 20.0, 20.0), 0.0, None, 10.0),  # the camera inside the box sees its far (back) face
        ((400.0, 400.0, 6.0), -3.1, None, 6.1),  # the near plane (0.25) cuts into the box: its far face again
        ((400.0, 400.0, 6.0), -5.0, None, 2.0),  # the camera well outside: the near (front) face
        ((400.0, 400.0, 6.0), -5.0, "mirrored", 2.0),  # the same, the box mirrored (its faces wound the other way)
        ((400.0, 400.0, 6.0), -5.0, "inside-out", 2.0),  # the same, the faces wound inwards: not a solid
        ((400.0, 400.0, 6.0), -5.0, "open", 8.0),  # its near face removed: the inside of the far face shows
    ],
    ids=["camera-inside", "cut-by-near-plane", "outside", "mirrored", "inside-out", "open"],
)
def test_back_faces_are_culled_only_where_they_cannot_show(renderer, extents, centre_z, change, seen_at):
    """Back faces of closed meshes are culled only where that cannot change the image; a wall of another
    class behind the box would show through wrongly culled faces."""
    box = trimesh.creation.box(extents=extents)
    if change == "inside-out":
        box.faces = box.faces[:, ::-1]
    if change == "open":
        box.update_faces(box.face_normals[:, 2] < 0.5)
    pose = translation(0, 0, centre_z) @ np.diag([-1.0 if change == "mirrored" else 1.0, 1.0, 1.0, 1.0])
    wall = trimesh.creation.box(extents=(400.0, 400.0, 1.0), transform=translation(0, 0, -30.0))
    camera = Camera(np.eye(4)[None], yfov=np.deg2rad(50), znear=0.25, zfar=100.0)
    scene = Scene([SceneObject("box", 2, 1, [box], pose), SceneObject("wall", 1, 0, [wall])], camera, CLASSES)
    frame = renderer.render(scene, 0)
    assert (frame.classes == 2).all()
    np.testing.assert_allclose(frame.depth[H // 2, W // 2].astype(np.float32), seen_at, rtol=1e-3)


def test_objects_mostly_out_of_view_are_still_drawn(renderer):
    """Objects are skipped only when wholly outside the view: a box whose centre lies beside the camera, reaching
    into the view from behind it and from beyond the left edge, covers the frame's left part."""
    box = trimesh.creation.box(extents=(20.0, 2.0, 40.0), transform=translation(-14.0, 0.0, 0.0))
    camera = Camera(np.eye(4)[None], yfov=np.deg2rad(50), znear=0.25, zfar=100.0)
    frame = renderer.render(Scene([SceneObject("box", 2, 1, [box])], camera, CLASSES), 0)
    columns = np.flatnonzero((frame.classes == 2).any(axis=0))
    assert len(columns) and columns[0] == 0 and columns[-1] < W // 2, "the box should cover the left part"


@pytest.mark.parametrize("camera_dx, object_dx", [(0.3, 0.0), (0.0, 0.3)])
def test_motion_of_a_sliding_plane_is_analytic(renderer, camera_dx, object_dx):
    distance = 10.0
    scene = fronto_plane(distance, 3, camera_dx=camera_dx, object_dx=object_dx)
    fx = scene.camera.intrinsics(H, W)[0]
    # A camera moving right makes the wall's points come from further right; a wall moving right, from the left.
    expected = fx * (camera_dx - object_dx) / distance
    for frame in renderer.render_sequence(scene):
        if frame.index == 0:
            continue
        np.testing.assert_allclose(frame.motion[..., 0].astype(np.float32), expected, atol=0.01)
        np.testing.assert_allclose(frame.motion[..., 1].astype(np.float32), 0.0, atol=0.01)
        edge = int(np.ceil(abs(expected)))  # columns whose source lies outside frame t-1
        inner = frame.motion_valid[:, edge : W - edge]
        assert inner.all()


def test_instance_ids_are_stable_over_frames(renderer, street):
    frames = list(renderer.render_sequence(street))
    objects_of = {0: {0}}  # the background: sky, no instance
    for o in street.objects:
        objects_of.setdefault(o.instance_id, set()).add(o.class_id)
    for f in frames:
        assert f.instances.dtype == np.uint16
        for instance in np.unique(f.instances):
            classes = set(np.unique(f.classes[f.instances == instance]).tolist())
            assert classes <= objects_of[int(instance)], f"instance {instance} drawn with classes {classes}"
    cars = {int(o.instance_id) for o in street.objects if o.class_id == CLASS_ID["car"]}
    seen = [set(np.unique(f.instances).tolist()) & cars for f in frames]
    assert seen[0] and all(seen[0] & s for s in seen[1:]), "some car should keep its instance ID in every frame"


def test_ids_are_exact_and_dtypes_follow_the_contract(renderer, street):
    frame = renderer.render(street, 2)
    assert frame.classes.dtype == np.uint8 and frame.depth.dtype == np.float16 and frame.motion.dtype == np.float16
    assert set(np.unique(frame.classes).tolist()) <= {c.id for c in STREET_CLASSES}
    assert ((frame.classes == 0) == np.isinf(frame.depth)).all()
    assert frame.motion.shape == (H, W, 2) and frame.photo is None


def test_rendering_is_deterministic_and_random_access_matches_sequential(renderer, street):
    sequential = list(renderer.render_sequence(street, photo=True))
    again = renderer.render(street_scene(seed=3, num_frames=6), 4, photo=True)
    for name in ("classes", "instances", "depth", "motion", "motion_valid", "photo"):
        np.testing.assert_array_equal(getattr(sequential[4], name), getattr(again, name), err_msg=name)
    photo = sequential[4].photo
    assert photo.shape == (H, W, 3) and photo.dtype == np.uint8 and photo.std() > 10


def test_labelled_gltf_scene(renderer, tmp_path):
    s = trimesh.Scene()
    s.add_geometry(
        trimesh.creation.box(extents=(40, 40, 1)),
        node_name="backdrop",
        transform=translation(0, 0, -20),
        metadata={"class": "wall", "instance_id": 0},
    )
    s.add_geometry(trimesh.creation.box(extents=(2, 2, 2)), node_name="Car.001", transform=translation(-2, 0, -8))
    s.add_geometry(
        trimesh.creation.box(extents=(2, 2, 2)),
        node_name="thing",
        transform=translation(2, 0, -8),
        metadata={"class_id": 2, "instance_id": 9},
    )
    path = tmp_path / "scene.glb"
    path.write_bytes(s.export(file_type="glb"))
    camera = Camera(np.eye(4)[None].repeat(2, axis=0))
    scene = load_gltf(path, CLASSES, camera)
    frame = renderer.render(scene, 1)
    assert frame.classes[H // 2, W // 2 - 25] == 2 and frame.classes[H // 2, W // 2 + 25] == 2
    assert frame.classes[5, 5] == 1 and frame.instances[5, 5] == 0
    assert frame.instances[H // 2, W // 2 + 25] == 9 and frame.instances[H // 2, W // 2 - 25] not in (0, 9)
    s.add_geometry(trimesh.creation.box(), node_name="lamp")
    path.write_bytes(s.export(file_type="glb"))
    with pytest.raises(SceneFileError, match="'lamp' has no class"):
        load_gltf(path, CLASSES, camera)
