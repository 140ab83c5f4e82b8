"""Labelled glTF/GLB (and anything else trimesh reads, e.g. .obj) scenes: each mesh node becomes a SceneObject
whose class comes from the node or the nodes above it.

A node's class, in order of precedence:
1. its glTF `extras`: `"class_id": <int>` or `"class": "<name in the class table>"`;
2. the class map (`--class-map`): the longest key that the node's name, then its mesh's material name, starts
   with (case-insensitive); values are class names or IDs; the key "*" is the class of every node nothing else
   names (an .obj's single node is named after its file, or `geometry_0`);
3. its name: the longest class name the node name starts with, case-insensitive ("car.001", "Car_2" -> car).
A node none of these name takes the class of its nearest ancestor that has one (1, 2 or 3), so `Object_3` under
`car_group` is a car; only then does "*" apply. A node with no class at all is an error that names it.
`extras.instance_id` sets the instance (0 = stuff; nodes may share one); otherwise every node gets its own
instance ID from 1 up, in node order.
Nodes keep the file's transforms for every frame (glTF animations are not read); the camera path is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurender.common.errors import UserError
from neurender.engine_plugin.gbuffer.scene import Camera, Scene, SceneObject
from neurender.proto.classes import ClassInfo


class SceneFileError(UserError, ValueError):
    """A glTF file that cannot become a labelled scene; the message names the file and node."""


ClassMap = dict[str, int | str]


def _class_id(value: object, classes: tuple[ClassInfo, ...], where: str) -> int:
    ids = {c.id for c in classes}
    by_name = {c.name.lower(): c.id for c in classes}
    if isinstance(value, int) and not isinstance(value, bool):
        if value not in ids:
            raise SceneFileError(f"{where}: class ID {value} is not in the class table {sorted(ids)}")
        return value
    if str(value).lower() not in by_name:
        raise SceneFileError(f"{where}: class {value!r} is not a known class ({', '.join(sorted(by_name))})")
    return by_name[str(value).lower()]


def _longest_prefix(name: str, keys: list[str]) -> str | None:
    matches = [k for k in keys if name.lower().startswith(k.lower())]
    return max(matches, key=len) if matches else None


def own_class(
    name: str,
    extras: dict[str, Any],
    material: str | None,
    classes: tuple[ClassInfo, ...],
    path: Path,
    class_map: ClassMap | None = None,
) -> int | None:
    """The class one node names itself (rules 1-3 of the module docstring, without "*"), or None."""
    if "class_id" in extras:
        return _class_id(extras["class_id"], classes, f"{path}: node {name!r} extras.class_id")
    if "class" in extras:
        return _class_id(str(extras["class"]), classes, f"{path}: node {name!r} extras.class")
    keys = [k for k in (class_map or {}) if k != "*"]
    for candidate in (name, material):
        key = _longest_prefix(candidate, keys) if candidate else None
        if key is not None:
            return _class_id(class_map[key], classes, f"class map entry {key!r}")
    prefix = _longest_prefix(name, [c.name for c in classes])
    return None if prefix is None else _class_id(prefix, classes, path.name)


def load_class_map(path: str | Path) -> ClassMap:
    """A YAML or JSON mapping of node/material name prefixes (or "*") to class names or IDs."""
    import yaml

    path = Path(path)
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as err:
        raise SceneFileError(f"--class-map {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise SceneFileError(f"--class-map {path}: not YAML or JSON ({str(err).splitlines()[0]})") from None
    if not isinstance(loaded, dict) or not all(isinstance(v, (int, str)) for v in loaded.values()):
        raise SceneFileError(
            f"--class-map {path}: expected a mapping of node or material names to class names or "
            'IDs, e.g. {"Object_3": "car", "Material.002": 4, "*": "building"}'
        )
    return {str(k): v for k, v in loaded.items()}


def load_gltf(
    path: str | Path,
    classes: tuple[ClassInfo, ...],
    camera: Camera,
    fps: float = 10.0,
    class_map: ClassMap | None = None,
) -> Scene:
    """A glTF (.gltf/.glb) or other trimesh-readable file as a Scene with the given class table and camera path."""
    import trimesh

    path = Path(path)
    try:
        loaded = trimesh.load(str(path), force="scene")
    except Exception as err:  # trimesh raises many types for bad files
        raise SceneFileError(f"{path}: cannot read as glTF ({err})") from None
    graph = loaded.graph
    parents = graph.transforms.parents
    default = _class_id(class_map["*"], classes, "class map entry '*'") if class_map and "*" in class_map else None
    resolved: dict[str, int | None] = {}

    def extras_of(node: str) -> dict[str, Any]:
        return graph.transforms.edge_data.get((parents.get(node), node), {}).get("metadata") or {}

    def inherited(node: str | None) -> int | None:
        if node is None or node == graph.base_frame:
            return None
        if node not in resolved:
            resolved[node] = own_class(node, extras_of(node), None, classes, path, class_map)
            if resolved[node] is None:
                resolved[node] = inherited(parents.get(node))
        return resolved[node]

    objects: list[SceneObject] = []
    next_instance = 1
    for node in graph.nodes_geometry:
        transform, geometry_name = graph[node]
        mesh = loaded.geometry[geometry_name]
        if not isinstance(mesh, trimesh.Trimesh):
            continue  # points and paths draw nothing in a G-buffer
        extras = extras_of(node)
        material = getattr(getattr(mesh.visual, "material", None), "name", None)
        class_id = own_class(node, extras, material, classes, path, class_map)
        if class_id is None:
            class_id = inherited(parents.get(node))
        if class_id is None:
            class_id = default
        if class_id is None:
            raise SceneFileError(
                f'{path}: node {node!r} has no class: give it (or a node above it) extras {{"class_id": N}} or '
                f'{{"class": NAME}}, a name starting with a class name ({", ".join(sorted(c.name for c in classes))}), '
                "or name it in a --class-map file"
            )
        instance = extras.get("instance_id")
        if instance is None:
            instance, next_instance = next_instance, next_instance + 1
        elif not isinstance(instance, int) or not 0 <= instance < 65536:
            raise SceneFileError(f"{path}: node {node!r} has extras.instance_id {instance!r}; expected 0..65535")
        objects.append(SceneObject(node, class_id, instance, [mesh], np.asarray(transform, dtype=np.float64)))
    if not objects:
        raise SceneFileError(f"{path}: no mesh nodes")
    return Scene(objects=objects, camera=camera, classes=classes, fps=fps)


__all__ = ["ClassMap", "SceneFileError", "load_class_map", "load_gltf", "own_class"]
