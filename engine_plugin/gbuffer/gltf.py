"""Labelled glTF/GLB scenes: each mesh node becomes a SceneObject whose class comes from the node.

A node's class, in order of precedence:
1. its glTF `extras`: `"class_id": <int>` or `"class": "<name in the class table>"`;
2. its name: the longest class name the node name starts with, case-insensitive ("car.001", "Car_2" -> car).
A node matching neither is an error that names it. `extras.instance_id` sets the instance (0 = stuff; nodes
may share one); otherwise every node gets its own instance ID from 1 up, in node order.
Nodes keep the file's transforms for every frame (glTF animations are not read); the camera path is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurender.common.errors import UserError
from neurender.engine_plugin.gbuffer.scene import Camera, ClassInfo, Scene, SceneObject


class SceneFileError(UserError, ValueError):
    """A glTF file that cannot become a labelled scene; the message names the file and node."""


def node_class(name: str, extras: dict[str, Any], classes: tuple[ClassInfo, ...], path: Path) -> int:
    ids = {c.id for c in classes}
    if "class_id" in extras:
        cid = extras["class_id"]
        if not isinstance(cid, int) or cid not in ids:
            raise SceneFileError(f"{path}: node {name!r} has extras.class_id {cid!r}, not in the class table {sorted(ids)}")
        return cid
    by_name = {c.name.lower(): c.id for c in classes}
    if "class" in extras:
        label = str(extras["class"]).lower()
        if label not in by_name:
            raise SceneFileError(f"{path}: node {name!r} has extras.class {extras['class']!r}; known classes: {sorted(by_name)}")
        return by_name[label]
    matches = [n for n in by_name if name.lower().startswith(n)]
    if not matches:
        raise SceneFileError(
            f"{path}: node {name!r} has no class: give it extras {{\"class_id\": N}} or {{\"class\": NAME}}, "
            f"or a name starting with a class name ({', '.join(sorted(by_name))})"
        )
    return by_name[max(matches, key=len)]


def load_gltf(path: str | Path, classes: tuple[ClassInfo, ...], camera: Camera, fps: float = 10.0) -> Scene:
    """A glTF (.gltf/.glb) file as a Scene with the given class table and camera path."""
    import trimesh

    path = Path(path)
    try:
        loaded = trimesh.load(str(path), force="scene")
    except Exception as err:  # trimesh raises many types for bad files
        raise SceneFileError(f"{path}: cannot read as glTF ({err})") from None
    graph = loaded.graph
    objects: list[SceneObject] = []
    next_instance = 1
    for node in graph.nodes_geometry:
        transform, geometry_name = graph[node]
        mesh = loaded.geometry[geometry_name]
        if not isinstance(mesh, trimesh.Trimesh):
            continue  # points and paths draw nothing in a G-buffer
        parent = graph.transforms.parents.get(node)
        extras = graph.transforms.edge_data.get((parent, node), {}).get("metadata") or {}
        class_id = node_class(node, extras, classes, path)
        instance = extras.get("instance_id")
        if instance is None:
            instance, next_instance = next_instance, next_instance + 1
        elif not isinstance(instance, int) or not 0 <= instance < 65536:
            raise SceneFileError(f"{path}: node {node!r} has extras.instance_id {instance!r}; expected 0..65535")
        objects.append(SceneObject(node, class_id, instance, [mesh], np.asarray(transform, dtype=np.float64)))
    if not objects:
        raise SceneFileError(f"{path}: no mesh nodes")
    return Scene(objects=objects, camera=camera, classes=classes, fps=fps)


__all__ = ["SceneFileError", "load_gltf", "node_class"]
