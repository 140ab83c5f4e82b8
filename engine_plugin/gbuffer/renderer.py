"""The headless G-buffer renderer: a Scene along its camera path -> class IDs, instance IDs, depth, exact
backward motion vectors, and optionally a shaded "photo" pass. The one renderer of the project: the engine
plugin streams its frames and the synthetic dataset is made from it.

Per frame (rows top to bottom, H x W):
- classes   uint8 [H, W] (uint16 when a class ID exceeds 255), 0 where no object covers the pixel (sky)
- instances uint16 [H, W], 0 for stuff and background
- depth     float16 [H, W]: view depth (distance along the camera's -Z axis) in scene units; +inf where no
            surface (background). Drawn in the same pass as the IDs; float16 values are correctly rounded.
- motion    float16 [H, W, 2]: backward motion in pixels, (x, y): pixel p of frame t shows the point that was
            at p + motion in frame t-1. Exact, not estimated: each pixel's 3D point (its ray at its view
            depth) is carried back through its object's transform and the camera of frame t-1 and projected
            (background pixels are directions at infinity, moved by the camera rotation only). Zero on
            frame 0. Offsets beyond 8 x max(H, W) (a source far outside frame t-1) are clipped to that;
            motion_valid is False there.
- motion_valid bool [H, W]: the point was visible in frame t-1 (inside the frame and not hidden: its depth
            there matches frame t-1's depth buffer); False on frame 0.
- photo     uint8 [H, W, 3] (optional): textured, lit, anti-aliased shading with directional shadows.

The geometry passes (IDs, depth, motion) come from two flat OpenGL passes (engine_plugin/gbuffer/id_pass.py): integer
object indices with no lighting, blending or anti-aliasing, so every pixel holds exactly one object's IDs.
The shaded pass uses pyrender. Rendering is headless through Mesa EGL (no GPU needed); set
PYOPENGL_PLATFORM=osmesa before anything imports OpenGL to use OSMesa instead (apt-get install libosmesa6).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurender.common.errors import UserError
from neurender.engine_plugin.gbuffer.id_pass import IdPass, IdPassOutput, perspective
from neurender.engine_plugin.gbuffer.scene import Camera, Scene, look_at

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")  # before pyrender (and so OpenGL) is first imported


@dataclass
class GBufferFrame:
    """One rendered frame; see the module docstring for each pass's meaning and dtype."""

    index: int
    classes: np.ndarray
    instances: np.ndarray
    depth: np.ndarray
    motion: np.ndarray
    motion_valid: np.ndarray
    photo: np.ndarray | None = None


class RendererError(UserError, RuntimeError):
    """The OpenGL context could not be created; the message says which platform was tried and what to do."""


def _import_pyrender() -> Any:
    try:
        import pyrender
    except ImportError as err:
        raise RendererError(f"pyrender is not installed ({err}); install neurender[render]") from None
    return pyrender


@dataclass
class _Prepared:
    """A Scene made ready once: its geometry uploaded to the ID pass, every object's pose at frame 0 (row k
    for object index k; row 0, the background, is the identity), which objects move, whether class IDs fit
    uint8, and (for the shaded pass, built on first use) a pyrender scene."""

    scene: Scene
    poses: np.ndarray
    dynamic: list[int]
    narrow_classes: bool
    photo_scene: Any = None
    photo_nodes: list[Any] | None = None
    photo_camera: Any = None


class GBufferRenderer:
    """Renders Scenes at a fixed frame size. Reuse one renderer for many frames and scenes; close() it after
    (or use it as a context manager): it owns OpenGL contexts."""

    def __init__(self, height: int, width: int) -> None:
        if height < 1 or width < 1:
            raise ValueError(f"frame size {height}x{width}: both sides must be positive")
        self.height, self.width = height, width
        self._motion_limit = 8.0 * max(height, width)  # sources far outside frame t-1 (points that were near
        # the previous camera's plane project to huge offsets): clipped so they fit float16; such pixels are not valid
        try:
            self._ids = IdPass(height, width)
        except Exception as err:  # EGL/OSMesa report failures with many exception types
            platform = os.environ.get("PYOPENGL_PLATFORM")
            raise RendererError(
                f"could not create a headless OpenGL context with PYOPENGL_PLATFORM={platform} ({err}). "
                "EGL needs Mesa's libEGL (apt-get install libegl1 libgl1-mesa-dri); to use OSMesa instead "
                "install libosmesa6 and set PYOPENGL_PLATFORM=osmesa before starting Python."
            ) from None
        self._photo_renderer: Any = None
        self._prepared: _Prepared | None = None
        self._last: tuple[int, int] | None = None  # (id of scene, frame) whose geometry the ID pass holds

    def __enter__(self) -> GBufferRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._photo_renderer is not None:
            self._ids.platform.make_current()
            self._photo_renderer.delete()
            self._photo_renderer = None
        if self._ids is not None:
            self._ids.delete()
            self._ids = None
        self._prepared = None

    # ---- scene preparation ----

    def _prepare(self, scene: Scene) -> _Prepared:
        if self._prepared is not None and self._prepared.scene is scene:
            return self._prepared
        meshes = [[(np.asarray(m.vertices), np.asarray(m.faces)) for m in obj.meshes] for obj in scene.objects]
        labels = np.array([(o.class_id, o.instance_id) for o in scene.objects], np.uint16).reshape(-1, 2)
        self._ids.upload(meshes, labels)
        poses = np.repeat(np.eye(4)[None], len(scene.objects) + 1, axis=0)  # row 0: the background
        for k, obj in enumerate(scene.objects, start=1):
            poses[k] = obj.poses[0]
        self._last = None
        self._prepared = _Prepared(
            scene,
            poses,
            [k for k, o in enumerate(scene.objects, start=1) if len(o.poses) > 1],
            narrow_classes=int(labels[:, 0].max(initial=0)) < 256,
        )
        return self._prepared

    # ---- rendering ----

    def render_sequence(
        self, scene: Scene, photo: bool = False, frames: Iterable[int] | None = None
    ) -> Iterator[GBufferFrame]:
        """Frames of `scene` in order: all of them, or those in `frames`."""
        for t in range(scene.num_frames) if frames is None else frames:
            yield self.render(scene, t, photo=photo)

    def render(self, scene: Scene, t: int, photo: bool = False) -> GBufferFrame:
        """Frame `t` of `scene`. Rendering frames in order is cheapest: the visibility test reads frame t-1's
        depth, which is kept from the last call or else drawn first."""
        if not 0 <= t < scene.num_frames:
            raise IndexError(f"frame {t} out of range 0..{scene.num_frames - 1}")
        if self._ids is None:
            raise RendererError("the renderer is closed")
        p = self._prepare(scene)
        if t > 0 and self._last != (id(scene), t - 1):
            self._draw(p, t - 1, read=False)
        out = self._draw(p, t, read=True)
        return GBufferFrame(
            index=t,
            classes=out.classes.astype(np.uint8) if p.narrow_classes else out.classes,
            instances=out.instances,
            depth=out.depth,
            motion=out.motion,
            motion_valid=out.motion_valid,
            photo=self._render_photo(p, t, np.isfinite(out.depth)) if photo else None,
        )

    def _poses(self, p: _Prepared, t: int) -> np.ndarray:
        """Every object's world-from-local pose at frame t: row k for object index k (row 0: identity)."""
        poses = p.poses.copy()
        for k in p.dynamic:
            poses[k] = p.scene.objects[k - 1].poses[t]
        return poses

    def _draw(self, p: _Prepared, t: int, read: bool) -> IdPassOutput | None:
        cam = p.scene.camera
        before = max(t - 1, 0)
        models, previous = self._poses(p, t), self._poses(p, before)
        projection = perspective(cam.yfov, self.width / self.height, cam.znear, cam.zfar)
        camera_from_local = np.linalg.inv(cam.poses[t]) @ models
        previous_from_current = np.linalg.inv(cam.poses[before]) @ previous @ np.linalg.inv(models) @ cam.poses[t]
        result = self._ids.render(
            projection,
            cam.intrinsics(self.height, self.width),
            camera_from_local,
            previous_from_current,
            has_previous=t > 0,
            motion_limit=self._motion_limit,
            read=read,
        )
        self._last = (id(p.scene), t)
        return result

    def _render_photo(self, p: _Prepared, t: int, surface: np.ndarray) -> np.ndarray:
        pyrender = _import_pyrender()
        if self._photo_renderer is None:  # pyrender's renderer on the shared context (see id_pass.acquire_context)
            self._photo_renderer = pyrender.Renderer(self.width, self.height)
        self._ids.platform.make_current()
        if p.photo_scene is None:
            self._build_photo_scene(p, pyrender)
        for obj, node in zip(p.scene.objects, p.photo_nodes):
            if node is not None:
                p.photo_scene.set_pose(node, obj.pose(t))
        p.photo_scene.set_pose(p.photo_camera, p.scene.camera.poses[t])
        flags = pyrender.RenderFlags.SHADOWS_DIRECTIONAL | pyrender.RenderFlags.OFFSCREEN
        color, _ = self._photo_renderer.render(p.photo_scene, flags)
        sky = sky_gradient(p.scene.camera, t, self.height, self.width, p.scene.background)
        return np.where(surface[..., None], color[..., :3], sky).astype(np.uint8)

    def _build_photo_scene(self, p: _Prepared, pyrender: Any) -> None:
        """pyrender draws each primitive with dozens of Python GL calls, so meshes sharing a material are
        merged: all static objects' per material (in world space), and each moving object's per material."""
        scene = p.scene
        bg = np.array([*scene.background, 255], dtype=np.float64) / 255.0
        pr_scene = pyrender.Scene(bg_color=bg, ambient_light=np.full(3, scene.ambient))
        static = [(m, o.poses[0]) for o in scene.objects if len(o.poses) == 1 for m in o.meshes]
        for mesh in merge_by_material(static):
            pr_scene.add(pyrender.Mesh.from_trimesh(mesh, smooth=bool(mesh.metadata.get("smooth", False))))
        nodes = []
        for obj in scene.objects:
            if len(obj.poses) == 1:
                nodes.append(None)
                continue
            primitives = []
            for m in merge_by_material([(m, None) for m in obj.meshes]):
                primitives += pyrender.Mesh.from_trimesh(m, smooth=bool(m.metadata.get("smooth", False))).primitives
            nodes.append(pr_scene.add(pyrender.Mesh(primitives=primitives, name=obj.name), pose=obj.pose(0)))
        cam = scene.camera
        camera = pyrender.PerspectiveCamera(
            yfov=cam.yfov, znear=cam.znear, zfar=cam.zfar, aspectRatio=self.width / self.height
        )
        p.photo_camera = pr_scene.add(camera, pose=cam.poses[0])
        pr_scene.add(pyrender.DirectionalLight(color=np.array([1.0, 0.96, 0.88]), intensity=3.2), pose=_sun_pose())
        p.photo_scene, p.photo_nodes = pr_scene, nodes


def merge_by_material(meshes: list[tuple[Any, np.ndarray | None]]) -> list[Any]:
    """(mesh, transform or None) pairs -> meshes, those sharing a textured material (and smoothing) merged
    into one, transformed. Materials are compared by identity (trimesh's copy() duplicates them)."""
    import trimesh

    groups: dict[tuple[int, bool], list[tuple[Any, np.ndarray | None]]] = {}
    rest = []
    for m, transform in meshes:
        if isinstance(m.visual, trimesh.visual.TextureVisuals) and m.visual.uv is not None:
            groups.setdefault((id(m.visual.material), bool(m.metadata.get("smooth", False))), []).append((m, transform))
        else:
            rest.append(m if transform is None else m.copy().apply_transform(transform))
    merged = []
    for (_, smooth), group in groups.items():
        vertices = [
            np.asarray(m.vertices) if t is None else np.asarray(m.vertices) @ t[:3, :3].T + t[:3, 3] for m, t in group
        ]
        offsets = np.cumsum([0] + [len(v) for v in vertices[:-1]])
        mesh = trimesh.Trimesh(
            vertices=np.concatenate(vertices),
            faces=np.concatenate([m.faces + o for (m, _), o in zip(group, offsets)]),
            visual=trimesh.visual.TextureVisuals(
                uv=np.concatenate([m.visual.uv for m, _ in group]), material=group[0][0].visual.material
            ),
            process=False,
        )
        mesh.metadata["smooth"] = smooth
        merged.append(mesh)
    return merged + rest


def _sun_pose() -> np.ndarray:
    """A sun from the upper left-front: the light travels along the pose's -Z axis."""
    return look_at(np.array([-0.5, 1.0, 0.35]), np.zeros(3))


def pixel_rays(camera: Camera, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera-space ray directions through pixel centres, scaled so their z is -1: (x [H,W], y [H,W])."""
    fx, fy, cx, cy = camera.intrinsics(height, width)
    x = (np.arange(width, dtype=np.float32) + 0.5 - cx) / fx
    y = -(np.arange(height, dtype=np.float32) + 0.5 - cy) / fy
    return np.broadcast_to(x[None, :], (height, width)), np.broadcast_to(y[:, None], (height, width))


def sky_gradient(camera: Camera, t: int, height: int, width: int, horizon: tuple[int, int, int]) -> np.ndarray:
    """A sky for the shaded pass: the horizon colour fading to a deeper blue with the view ray's elevation,
    so it turns with the camera like a real sky."""
    rx, ry = pixel_rays(camera, height, width)
    directions = np.stack([rx, ry, -np.ones_like(rx)], axis=-1) @ camera.poses[t][:3, :3].T
    elevation = np.clip(directions[..., 1] / np.linalg.norm(directions, axis=-1), 0.0, 1.0)[..., None]
    zenith = np.array([40, 90, 170], np.float32)
    return (np.asarray(horizon, np.float32) * (1 - elevation) + zenith * elevation).astype(np.uint8)


__all__ = ["GBufferFrame", "GBufferRenderer", "RendererError", "pixel_rays"]
