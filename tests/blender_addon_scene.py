"""Runs inside Blender's Python (the .venv-blender environment with bpy), started by tests/test_blender_addon.py.

Installs the add-on's extension zip into a private user-resources folder (BLENDER_USER_RESOURCES), builds the
scene described by the test's JSON spec, and drives the add-on's operators against the server the test runs:
refresh the model list, render a frame (object and material pass indices), render the animation as PNGs and
as an MP4, live mode, cancelling an animation midway, the failures an artist can meet, and the local server
(start, a server that dies mid-animation, stop, stopped with the add-on and with Blender). It records what
Blender shows and the add-on's messages in result.json and .npy files; the pytest side checks them against the
scene and the server.

    python tests/blender_addon_scene.py --addon ZIP --address HOST:PORT --token T --spec SPEC.json --out DIR \
        --server-python PYTHON --models DIR
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import bpy
import numpy as np
from bpy_extras import anim_utils

ADDON = "bl_ext.user_default.neurender"


def build_scene(spec: dict) -> dict[str, bpy.types.Object]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.system.use_online_access = True
    scene = bpy.context.scene
    height, width = spec["size"]
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = width, height, 100
    scene.frame_start, scene.frame_end = spec["frames"]
    camera = bpy.data.cameras.new("camera")
    camera.type, camera.ortho_scale = "ORTHO", spec["ortho_scale"]
    camera_object = bpy.data.objects.new("camera", camera)
    camera_object.location = (0.0, 0.0, spec["camera_z"])  # looking down -Z: +X right, +Y up in the image
    scene.collection.objects.link(camera_object)
    scene.camera = camera_object
    objects = {}
    for item in spec["objects"]:
        if item["kind"] == "plane":
            bpy.ops.mesh.primitive_plane_add(size=item["size"], location=item["location"])
        else:
            bpy.ops.mesh.primitive_cube_add(size=item["size"], location=item["location"])
        obj = bpy.context.object
        obj.name = item["name"]
        obj.pass_index = item["pass_index"]
        if "material_index" in item:
            material = bpy.data.materials.new(item["name"])
            material.pass_index = item["material_index"]
            obj.data.materials.append(material)
        if "velocity" in item:  # linear keys at frame 0 and 10: constant motion through the frame range
            start = np.asarray(item["location"], float)
            for frame in (0, 10):
                obj.location = start + np.asarray(item["velocity"], float) * (frame - 1)
                obj.keyframe_insert("location", frame=frame)
            for curve in anim_utils.action_get_channelbag_for_slot(
                obj.animation_data.action, obj.animation_data.action_slot
            ).fcurves:
                for key in curve.keyframe_points:
                    key.interpolation = "LINEAR"
        objects[item["name"]] = obj
    return objects


def image_rgb(name: str) -> np.ndarray:
    """A Blender image's pixels as uint8 RGB, rows top to bottom (Blender stores them bottom-up)."""
    image = bpy.data.images[name]
    width, height = image.size
    pixels = np.empty(width * height * 4, np.float32)
    image.pixels.foreach_get(pixels)
    return np.rint(pixels.reshape(height, width, 4)[::-1, :, :3] * 255).astype(np.uint8)


def render_settings(scene: bpy.types.Scene) -> dict:
    """Settings the add-on changes while it captures passes, which it must give back."""
    layer = scene.view_layers[0]
    return {
        "engine": scene.render.engine,
        "samples": scene.cycles.samples,
        "filter": scene.cycles.filter_width,
        "format": scene.render.image_settings.file_format,
        "filepath": scene.render.filepath,
        "compositing": scene.render.use_compositing,
        "z": layer.use_pass_z,
        "vector": layer.use_pass_vector,
        "combined": layer.use_pass_combined,
    }


class CheckingLayout:
    """Stands in for a UILayout, which exists only in Blender's UI, and checks each call the add-on's draw code
    makes against Blender's own RNA: the function and its keywords, property names, operators, icons, lists."""

    _functions = bpy.types.UILayout.bl_rna.functions
    _icons = {item.identifier for item in _functions["label"].parameters["icon"].enum_items}

    def __init__(self, problems: list[str], drawn: list[str]) -> None:
        self.problems, self.drawn = problems, drawn

    def __getattr__(self, name: str):
        if name not in self._functions:
            raise AttributeError(name)

        def call(*args, **kwargs):
            known = self._functions[name].parameters.keys()
            unknown = [k for k in kwargs if k not in known]
            if unknown:
                self.problems.append(f"{name}() has no parameter {unknown}")
            if kwargs.get("icon", "NONE") not in self._icons:
                self.problems.append(f"{name}(): no icon {kwargs['icon']!r}")
            if name in {"prop", "prop_search"}:
                self._check_property(args[0], args[1])
            if name == "prop_search":
                self._check_property(args[2], args[3])
            if name == "operator":
                group, op = args[0].split(".")
                if not hasattr(getattr(bpy.ops, group), op):
                    self.problems.append(f"operator {args[0]!r} is not registered")
            if name == "template_list" and not hasattr(bpy.types, args[0]):
                self.problems.append(f"UIList {args[0]!r} is not registered")
            if name == "template_list":
                self._check_property(args[2], args[3])
            self.drawn.append(kwargs.get("text") or (args[0] if args and isinstance(args[0], str) else name))
            return CheckingLayout(self.problems, self.drawn)

        return call

    def __setattr__(self, name: str, value) -> None:  # layout.enabled = ..., operator properties
        object.__setattr__(self, name, value)

    def _check_property(self, data, name: str) -> None:
        if name not in data.bl_rna.properties:
            self.problems.append(f"{type(data).__name__} has no property {name!r}")


def check_ui(addon, context) -> dict:
    """Draw the panel, the class map rows and the preferences with a CheckingLayout."""
    problems: list[str] = []
    drawn: list[str] = []
    addon.ui.draw_panel(CheckingLayout(problems, drawn), context)
    settings = context.scene.neurender
    for index, item in enumerate(settings.class_map):
        addon.ui.NEURENDER_UL_class_map.draw_item(
            None, context, CheckingLayout(problems, drawn), settings, item, 0, settings, "class_map_index", index
        )
    prefs = context.preferences.addons[ADDON].preferences

    class WithLayout:  # the preferences as their draw() sees them, with the checking layout
        layout = CheckingLayout(problems, drawn)

        def __getattr__(self, name: str):
            return getattr(prefs, name)

    type(prefs).draw(WithLayout(), context)
    return {"problems": problems, "drawn": drawn}


def attempt(operator) -> dict:
    """Run an operator; return its result or the error message it reported."""
    try:
        return {"result": sorted(operator()), "error": None}
    except RuntimeError as err:
        return {"result": None, "error": str(err)}


def pump_until(addon, done, seconds: float = 60.0) -> bool:
    """Drive the add-on's timer callback as Blender's event loop would, until done() or the deadline."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        addon.runtime.pump()
        time.sleep(0.005)
    return done()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def cancel_midway(addon, scene, settings, state, out: Path, frames: int) -> dict:
    """An animation started without waiting, cancelled once two frames are back."""
    first, last = scene.frame_start, scene.frame_end
    scene.frame_end = first + frames - 1
    scene.frame_set(last)
    settings.output_path, settings.output_format = str(out) + os.sep, "PNG"
    started = attempt(lambda: bpy.ops.neurender.render_animation(wait=False))
    job = addon.runtime.current_job()
    arrived = pump_until(addon, lambda: len(list(out.glob("frame_*.png"))) >= 2)
    during = {
        "progress": state.progress,
        "progress_text": state.progress_text,
        "status": state.status,
        "ui": check_ui(addon, bpy.context),
    }
    cancelled = attempt(bpy.ops.neurender.cancel)
    at_cancel = len(list(out.glob("frame_*.png")))
    pump_until(addon, lambda: False, seconds=1.0)  # answers to frames already in flight must not be written
    result = {
        "started": started,
        "arrived": arrived,
        "during": during,
        "cancel": cancelled,
        "frames": frames,
        "written_at_cancel": at_cancel,
        "written_after": len(list(out.glob("frame_*.png"))),
        "job_done": job.done,
        "job_error": job.error,
        "status": state.status,
        "progress_after": state.progress,
        "frame_before": last,
        "frame_after": scene.frame_current,
    }
    scene.frame_start, scene.frame_end = first, last
    return result


def local_server(addon, prefs, scene, settings, state, args, out: Path) -> dict:
    """Start Local Server from an environment with neurender; a server killed mid-animation; Stop; the add-on
    disabled; and one left running for Blender's exit (the pytest side checks that it is gone afterwards)."""
    result: dict = {}
    prefs.server_environment, prefs.server_models, prefs.server_port = args.server_python, args.models, 0
    prefs.token = ""
    result["start"] = attempt(bpy.ops.neurender.start_server)
    server = addon.runtime.local_server()
    result["state"], result["address"] = server.state(), prefs.address
    result["refresh"] = attempt(bpy.ops.neurender.refresh_models)
    result["models"] = [item.name for item in state.models]
    result["ui_running"] = check_ui(addon, bpy.context)

    # The server dies mid-animation.
    first, last = scene.frame_start, scene.frame_end
    scene.frame_end = first + 29
    settings.output_path, settings.output_format = str(out / "died") + os.sep, "PNG"
    result["animation"] = attempt(lambda: bpy.ops.neurender.render_animation(wait=False))
    job = addon.runtime.current_job()
    pump_until(addon, lambda: len(list((out / "died").glob("frame_*.png"))) >= 1)
    os.kill(server.pid, signal.SIGKILL)
    result["job_ended"] = pump_until(addon, lambda: job.done and not server.running)
    result["job_error"], result["written"] = job.error, len(list((out / "died").glob("frame_*.png")))
    result["died_state"], result["died_log_tail"] = server.state(), server.tail(3)
    result["ui_died"] = check_ui(addon, bpy.context)
    scene.frame_start, scene.frame_end = first, last

    # Started again: it renders; Stop stops it.
    result["restart"] = attempt(bpy.ops.neurender.start_server)
    server = addon.runtime.local_server()
    settings.output_path = str(out / "local") + os.sep
    result["render_frame"] = attempt(bpy.ops.neurender.render_frame)
    np.save(out / "local_image.npy", image_rgb("neurender"))
    pid = server.pid
    result["stop"] = attempt(bpy.ops.neurender.stop_server)
    result["stopped_state"], result["stopped_alive"] = server.state(), alive(pid)

    # Disabling the add-on stops it (here while it is still starting).
    attempt(lambda: bpy.ops.neurender.start_server(wait=False))
    pid = addon.runtime.local_server().pid
    bpy.ops.preferences.addon_disable(module=ADDON)
    result["disabled_alive"] = alive(pid)
    bpy.ops.preferences.addon_enable(module=ADDON)
    addon = sys.modules[ADDON]
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.server_environment, prefs.server_models, prefs.server_port = args.server_python, args.models, 0

    # A bad environment is refused by name.
    prefs.server_environment = str(out / "no-such-env")
    result["bad_environment"] = attempt(bpy.ops.neurender.start_server)
    prefs.server_environment = args.server_python

    # Left running: Blender's exit stops it.
    result["left_running"] = attempt(lambda: bpy.ops.neurender.start_server(wait=False))
    result["left_running_pid"] = addon.runtime.local_server().pid
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--addon", required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--spec", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--server-python", required=True, help="a Python with neurender, for the local server")
    parser.add_argument("--models", required=True, help="the models folder the local server serves")
    args = parser.parse_args()
    spec = json.loads(args.spec.read_text())
    out = args.out
    result: dict = {"blender": bpy.app.version_string}

    objects = build_scene(spec)  # first: loading factory settings would disable the add-on again
    bpy.ops.extensions.package_install_files(filepath=args.addon, repo="user_default", enable_on_install=True)
    addon = sys.modules[ADDON]
    import google.protobuf
    import grpc

    from neurender.engine_plugin.sdk import client

    result["imported_from"] = {"grpc": grpc.__file__, "protobuf": google.protobuf.__file__, "sdk": client.__file__}
    prefs = bpy.context.preferences.addons[ADDON].preferences
    scene = bpy.context.scene
    settings = scene.neurender
    state = bpy.context.window_manager.neurender
    prefs.address, prefs.token = args.address, args.token

    result["refresh"] = attempt(bpy.ops.neurender.refresh_models)
    result["models"] = [item.name for item in state.models]
    result["picked_model"] = settings.model
    settings.style_seed = spec["style_seed"]
    for index, cls in spec["class_map"].items():
        row = settings.class_map.add()
        row.pass_index, row.class_id = int(index), cls

    result["ui_idle"] = check_ui(addon, bpy.context)

    # Render Frame, classes from object pass indices.
    scene.frame_set(spec["still_frame"])
    settings.save_gbuffers, settings.output_path = True, str(out / "still") + os.sep
    result["settings_before"] = render_settings(scene)
    started = time.perf_counter()
    result["render_frame"] = attempt(bpy.ops.neurender.render_frame)
    result["settings_after"] = render_settings(scene)
    result["render_frame"]["seconds"] = time.perf_counter() - started
    result["render_frame"]["status"] = state.status
    np.save(out / "still" / "image.npy", image_rgb("neurender"))

    # Render Frame, classes from material pass indices through their own mapping.
    settings.class_source = "MATERIAL"
    settings.class_map.clear()
    for index, cls in spec["material_class_map"].items():
        row = settings.class_map.add()
        row.pass_index, row.class_id = int(index), cls
    settings.output_path = str(out / "material") + os.sep
    result["render_frame_material"] = attempt(bpy.ops.neurender.render_frame)
    np.save(out / "material" / "image.npy", image_rgb("neurender"))
    settings.class_source = "OBJECT"
    settings.class_map.clear()
    for index, cls in spec["class_map"].items():
        row = settings.class_map.add()
        row.pass_index, row.class_id = int(index), cls

    # Render Animation: a PNG sequence, then an MP4.
    settings.output_path, settings.output_format = str(out / "animation") + os.sep, "PNG"
    started = time.perf_counter()
    result["render_animation"] = attempt(bpy.ops.neurender.render_animation)
    result["render_animation"]["seconds"] = time.perf_counter() - started
    result["render_animation"]["status"] = state.status
    result["frame_after_animation"] = scene.frame_current
    settings.save_gbuffers = False
    settings.output_path, settings.output_format = str(out / "movie") + os.sep, "MOVIE"
    result["render_movie"] = attempt(bpy.ops.neurender.render_animation)

    # Live mode: in background mode no timer runs, so this script pumps the add-on's queue itself.
    result["live"] = attempt(bpy.ops.neurender.live)
    live_frames = []
    for frame in range(spec["frames"][0], spec["frames"][1] + 1):
        scene.frame_set(frame)
        job = addon.runtime.current_job()
        shown = job.shown
        deadline = time.monotonic() + 30
        while job.shown == shown and not job.done and time.monotonic() < deadline:
            addon.runtime.pump()
            time.sleep(0.005)
        live_frames.append(frame)
        np.save(out / f"live_{frame:04d}.npy", image_rgb("neurender live"))
    result["ui_live"] = check_ui(addon, bpy.context)
    result["live_frames"] = live_frames
    result["live_error"] = job.error
    result["live_stop"] = attempt(bpy.ops.neurender.live)
    result["live_running_after_stop"] = addon.runtime.current_job() is not None

    # What an artist can get wrong, and what the add-on then says.
    objects[spec["unmapped_object"]].pass_index = spec["unmapped_index"]
    result["unmapped_index"] = attempt(bpy.ops.neurender.render_frame)
    objects[spec["unmapped_object"]].pass_index = next(
        o["pass_index"] for o in spec["objects"] if o["name"] == spec["unmapped_object"]
    )
    scene.render.resolution_x += 2  # no longer a multiple of 4, as the model needs
    result["bad_size"] = attempt(bpy.ops.neurender.render_frame)
    scene.render.resolution_x -= 2
    settings.model = "no-such-model"
    result["unknown_model"] = attempt(bpy.ops.neurender.render_frame)
    settings.model = result["picked_model"]
    prefs.token = "wrong-token"
    result["wrong_token"] = attempt(bpy.ops.neurender.refresh_models)
    prefs.token, prefs.address = args.token, spec["unreachable_address"]
    result["unreachable"] = attempt(bpy.ops.neurender.refresh_models)
    prefs.address = args.address
    bpy.context.preferences.system.use_online_access = False
    result["offline"] = attempt(bpy.ops.neurender.render_frame)
    result["ui_offline"] = check_ui(addon, bpy.context)
    bpy.context.preferences.system.use_online_access = True
    result["after_errors"] = attempt(bpy.ops.neurender.render_frame)

    started = time.perf_counter()
    result["cancel"] = cancel_midway(addon, scene, settings, state, out / "cancel", frames=12)
    result["after_cancel"] = attempt(bpy.ops.neurender.render_frame)
    result["cancel"]["seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    result["local_server"] = local_server(addon, prefs, scene, settings, state, args, out)
    result["local_server"]["seconds"] = time.perf_counter() - started
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return 0  # the local server is still running: the add-on's atexit handler stops it


if __name__ == "__main__":
    sys.exit(main())
