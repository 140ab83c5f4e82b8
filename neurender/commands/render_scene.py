"""`neurender render-scene`: render a 3D scene's G-buffers headless and stream them through a server."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from neurender.common.args import (
    add_frames_option,
    add_model_option,
    add_output_options,
    add_server_options,
    parse_size,
)
from neurender.common.errors import UserError
from neurender.local_render import DEFAULT_MODEL, MODELS_DIR

OWNED = ("frames", "labels", "classes.json")

SCENE_HELP = """\
scene files (--gltf): glTF/GLB, or anything trimesh reads (e.g. .obj). Each mesh node gets a class of the
street's class table (sky terrain road sidewalk building vegetation pole car person), in this order:
  1. the node's glTF extras: {"class_id": 7} or {"class": "car"};
  2. --class-map FILE (YAML or JSON): the longest key the node's name, then its material's name, starts
     with, e.g. {"Object_3": "car", "Material.002": 4, "*": "building"}; "*" is the class of every node
     nothing else names (an .obj's one node is named after its file, or geometry_0);
  3. the node's name: the longest class name it starts with, case-insensitive (car.001, Car_2 -> car).
A node that none of these name inherits the class of its nearest ancestor that has one (Object_3 under
car_group is a car). extras {"instance_id": N} sets instances (0 = stuff); else each node gets its own.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render-scene",
        help="render a 3D scene's G-buffers and stream them through a neurender server",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Render the built-in street (or a labelled glTF/GLB with a camera orbit) with the headless "
        "G-buffer renderer, send each frame's class IDs (and instances, depth, motion when the model "
        "takes them) to a server (a private local one unless --server is given), and write "
        "OUT/frames/*.png (neural), OUT/labels/*.png and OUT/classes.json.",
        epilog=SCENE_HELP,
    )
    add_server_options(p)
    add_model_option(p, DEFAULT_MODEL, MODELS_DIR)
    add_output_options(p, "output folder")
    p.add_argument(
        "--gltf",
        type=Path,
        default=None,
        help="scene file instead of the built-in street (see below); the camera orbits its centre",
    )
    p.add_argument(
        "--class-map", type=Path, default=None, help="YAML/JSON: node or material names -> classes (see below)"
    )
    p.add_argument("--size", type=parse_size, default=(128, 128), help="HEIGHTxWIDTH (default 128x128)")
    add_frames_option(p, 24, "frames to render")
    p.add_argument("--seed", type=int, default=0, help="street scene seed (default 0)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from neurender.common.args import read_credentials
    from neurender.common.outputs import prepare_output
    from neurender.engine_plugin.gbuffer.gltf import load_class_map
    from neurender.engine_plugin.gbuffer.renderer import GBufferRenderer
    from neurender.engine_plugin.gbuffer.scenes import STREET_CLASSES, street_scene
    from neurender.engine_plugin.gbuffer.stream import stream_scene, write_results
    from neurender.local_render import connect

    if args.frames < 1:
        raise UserError(f"--frames must be at least 1, got {args.frames}")
    if args.class_map is not None and args.gltf is None:
        raise UserError("--class-map applies to a --gltf scene; the built-in street has its own classes")
    token, roots = read_credentials(args)
    if args.gltf is not None:
        class_map = load_class_map(args.class_map) if args.class_map else None
        scene = _gltf_scene(args.gltf, args.frames, STREET_CLASSES, class_map)
    else:
        scene = street_scene(seed=args.seed, num_frames=args.frames)
    prepare_output(args.out, OWNED, args.overwrite)
    with connect(args.server, args.model, token, roots) as (client, model):
        _check_segmentation(client, model)
        with client.session(model, args.size) as session, GBufferRenderer(*args.size) as renderer:
            count = write_results(args.out, stream_scene(session, renderer, scene, progress=True), scene.classes)
    (args.out / "classes.json").write_text(json.dumps([c.to_dict() for c in scene.classes], indent=1))
    print(f"{args.out}: {count} frames (frames/ neural, labels/ coloured class IDs), model {model}")
    return 0


def _check_segmentation(client, model: str) -> None:
    from neurender.proto.neurender.v1 import model_pb2

    modality = client.get_model(model).modality
    if modality != model_pb2.SEGMENTATION:
        raise UserError(
            f"--model {model} is a {model_pb2.Modality.Name(modality)} model; render-scene sends the "
            "G-buffer's class IDs, so it needs a SEGMENTATION model"
        )


def _gltf_scene(path: Path, frames: int, classes, class_map):  # -> Scene
    import numpy as np

    from neurender.engine_plugin.gbuffer.gltf import load_gltf
    from neurender.engine_plugin.gbuffer.scene import Camera, look_at

    probe = load_gltf(path, classes, Camera(np.eye(4)[None]), class_map=class_map)
    corners = np.concatenate(
        [(np.asarray(m.bounds) @ o.poses[0][:3, :3].T + o.poses[0][:3, 3]) for o in probe.objects for m in o.meshes]
    )
    centre, radius = corners.mean(axis=0), float(np.linalg.norm(corners.max(0) - corners.min(0))) * 0.9 + 1e-3
    angles = np.linspace(0, np.pi / 2, frames)
    poses = np.stack([look_at(centre + radius * np.array([np.sin(a), 0.4, np.cos(a)]), centre) for a in angles])
    probe.camera = Camera(poses, znear=radius * 0.01, zfar=radius * 10)
    return probe


__all__ = ["register"]
