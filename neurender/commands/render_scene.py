"""`neurender render-scene`: render a 3D scene's G-buffers headless and stream them through a server."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from neurender.common.args import parse_size
from neurender.common.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render-scene", help="render a 3D scene's G-buffers and stream them through a neurender server",
        description="Render the built-in street (or a labelled glTF/GLB with a camera orbit) with the headless "
                    "G-buffer renderer, send each frame's class IDs (and instances, depth, motion when the model "
                    "takes them) to a server, and write out/frames/*.png (neural) and out/labels/*.png.")
    p.add_argument("--server", default="127.0.0.1:50051", help="server address (default 127.0.0.1:50051)")
    p.add_argument("--token", default=None, help="bearer token, if the server asks for one")
    p.add_argument("--model", required=True, help="model name on the server")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--gltf", type=Path, default=None,
                   help="labelled glTF/GLB instead of the built-in street: node classes from extras or names, "
                        "using the street's class table (engine_plugin/gbuffer/scenes.py); the camera orbits its centre")
    p.add_argument("--size", type=parse_size, default=(128, 128), help="HEIGHTxWIDTH (default 128x128)")
    p.add_argument("--frames", type=int, default=24, help="frames (default 24)")
    p.add_argument("--seed", type=int, default=0, help="street scene seed (default 0)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from neurender.engine_plugin.gbuffer.renderer import GBufferRenderer
    from neurender.engine_plugin.gbuffer.scenes import STREET_CLASSES, street_scene
    from neurender.engine_plugin.gbuffer.stream import stream_scene, write_results
    from neurender.engine_plugin.sdk.client import NeurenderError, RenderClient

    if args.frames < 1:
        raise UserError(f"--frames must be at least 1, got {args.frames}")
    if args.gltf is not None:
        scene = _gltf_scene(args.gltf, args.frames, STREET_CLASSES)
    else:
        scene = street_scene(seed=args.seed, num_frames=args.frames)
    try:
        with RenderClient(args.server, token=args.token) as client:
            _check_segmentation(client, args.model)
            with client.session(args.model, args.size) as session, GBufferRenderer(*args.size) as renderer:
                count = write_results(args.out, stream_scene(session, renderer, scene, progress=True), scene.classes)
    except NeurenderError as err:
        raise UserError(str(err)) from None
    (args.out / "classes.json").write_text(json.dumps([c.to_dict() for c in scene.classes], indent=1))
    print(f"{args.out}: {count} frames (frames/ neural, labels/ coloured class IDs)")
    return 0


def _check_segmentation(client, model: str) -> None:
    from neurender.proto.neurender.v1 import model_pb2

    modality = client.get_model(model).modality
    if modality != model_pb2.SEGMENTATION:
        raise UserError(f"--model {model} is a {model_pb2.Modality.Name(modality)} model; render-scene sends the "
                        "G-buffer's class IDs, so it needs a SEGMENTATION model")


def _gltf_scene(path: Path, frames: int, classes):  # -> Scene
    import numpy as np

    from neurender.engine_plugin.gbuffer.gltf import SceneFileError, load_gltf
    from neurender.engine_plugin.gbuffer.scene import Camera, look_at

    try:
        probe = load_gltf(path, classes, Camera(np.eye(4)[None]))
    except SceneFileError as err:
        raise UserError(str(err)) from None
    corners = np.concatenate([(np.asarray(m.bounds) @ o.poses[0][:3, :3].T + o.poses[0][:3, 3]) for o in probe.objects for m in o.meshes])
    centre, radius = corners.mean(axis=0), float(np.linalg.norm(corners.max(0) - corners.min(0))) * 0.9 + 1e-3
    angles = np.linspace(0, np.pi / 2, frames)
    poses = np.stack([look_at(centre + radius * np.array([np.sin(a), 0.4, np.cos(a)]), centre) for a in angles])
    probe.camera = Camera(poses, znear=radius * 0.01, zfar=radius * 10)
    return probe


__all__ = ["register"]
