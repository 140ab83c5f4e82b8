# SPDX-License-Identifier: GPL-3.0-or-later
"""Operators: refresh the model list, edit the class map, render a frame, render the animation, live mode, start
and stop the local server."""

from __future__ import annotations

from collections.abc import Callable

import bpy
from bpy.props import BoolProperty

from . import runtime

# In background mode (scripts) an operator waits for its job by default; wait=False returns at once and leaves
# the job to runtime.pump(), as Blender's timer does in the UI.
WAIT = BoolProperty(
    name="Wait",
    default=True,
    options={"HIDDEN", "SKIP_SAVE"},
    description="In background mode, return only when the job is done",
)


def _run(operator: bpy.types.Operator, make: Callable[[], runtime.Task]) -> set[str]:
    """Start a task; report what went wrong (at once, or by its end in background mode) as an error."""
    try:
        task = make()
        runtime.start(task, wait=getattr(operator, "wait", True))
    except runtime.JobError as err:
        runtime.set_status(str(err), error=True)
        operator.report({"ERROR"}, str(err))
        return {"CANCELLED"}
    if task.error:
        operator.report({"ERROR"}, task.error)
        return {"CANCELLED"}
    return {"FINISHED"}


class NEURENDER_OT_refresh_models(bpy.types.Operator):
    """Ask the server which models it serves"""

    bl_idname = "neurender.refresh_models"
    bl_label = "Refresh Models"

    def execute(self, context: bpy.types.Context) -> set[str]:
        return _run(self, lambda: runtime.ModelsTask(context.scene))


class NEURENDER_OT_render_frame(bpy.types.Operator):
    """Render the current frame through the neurender server into the "neurender" image"""

    bl_idname = "neurender.render_frame"
    bl_label = "Render Frame"

    def execute(self, context: bpy.types.Context) -> set[str]:
        return _run(self, lambda: runtime.RenderFrameJob(context.scene))


class NEURENDER_OT_render_animation(bpy.types.Operator):
    """Render the scene's frame range through the neurender server into the output folder"""

    bl_idname = "neurender.render_animation"
    bl_label = "Render Animation"

    wait: WAIT

    def execute(self, context: bpy.types.Context) -> set[str]:
        return _run(self, lambda: runtime.AnimationJob(context.scene))


class NEURENDER_OT_live(bpy.types.Operator):
    """Start or stop streaming the timeline's frames to the server (shown in Image Editors)"""

    bl_idname = "neurender.live"
    bl_label = "Live"

    def execute(self, context: bpy.types.Context) -> set[str]:
        if isinstance(runtime.current_job(), runtime.LiveJob):
            runtime.cancel()
            runtime.set_status("Live mode stopped.")
            return {"FINISHED"}
        return _run(self, lambda: runtime.LiveJob(context.scene))


class NEURENDER_OT_cancel(bpy.types.Operator):
    """Stop what neurender is doing"""

    bl_idname = "neurender.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return runtime.current_job() is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        runtime.cancel()
        return {"FINISHED"}


class NEURENDER_OT_start_server(bpy.types.Operator):
    """Run `neurender serve` from the server environment in the add-on preferences, and use it"""

    bl_idname = "neurender.start_server"
    bl_label = "Start Local Server"

    wait: WAIT

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        server = runtime.local_server()
        return server is None or not server.running

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            runtime.start_local_server(wait=self.wait)
        except runtime.JobError as err:
            runtime.set_status(str(err), error=True)
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        return {"FINISHED"}


class NEURENDER_OT_stop_server(bpy.types.Operator):
    """Stop the local server (its sessions finish the frames they have)"""

    bl_idname = "neurender.stop_server"
    bl_label = "Stop Local Server"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        server = runtime.local_server()
        return server is not None and server.running

    def execute(self, context: bpy.types.Context) -> set[str]:
        runtime.cancel()
        runtime.stop_local_server()
        runtime.set_status(f"Local server {runtime.local_server().state()}.")
        return {"FINISHED"}


class NEURENDER_OT_class_map_add(bpy.types.Operator):
    """Add a pass index -> class row"""

    bl_idname = "neurender.class_map_add"
    bl_label = "Add Class Mapping"
    bl_options = {"UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.neurender
        index = max((item.pass_index for item in settings.class_map), default=0) + 1
        item = settings.class_map.add()
        item.pass_index = item.class_id = index
        settings.class_map_index = len(settings.class_map) - 1
        return {"FINISHED"}


class NEURENDER_OT_class_map_remove(bpy.types.Operator):
    """Remove the selected row"""

    bl_idname = "neurender.class_map_remove"
    bl_label = "Remove Class Mapping"
    bl_options = {"UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return len(context.scene.neurender.class_map) > 0

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.neurender
        settings.class_map.remove(settings.class_map_index)
        settings.class_map_index = min(settings.class_map_index, len(settings.class_map) - 1)
        return {"FINISHED"}


class NEURENDER_OT_class_map_from_scene(bpy.types.Operator):
    """Add a row for every pass index the scene's objects (or materials) use that has none yet"""

    bl_idname = "neurender.class_map_from_scene"
    bl_label = "Add Rows from Scene"
    bl_options = {"UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.neurender
        if settings.class_source == "OBJECT":
            used = {
                obj.pass_index
                for obj in context.scene.objects
                if obj.type in {"MESH", "CURVE", "SURFACE", "META", "FONT"}
            }
        else:
            used = {
                slot.material.pass_index
                for obj in context.scene.objects
                for slot in obj.material_slots
                if slot.material
            }
        known = {item.pass_index for item in settings.class_map}
        for index in sorted(used - known):
            item = settings.class_map.add()
            item.pass_index = item.class_id = index
        self.report({"INFO"}, f"Added {len(used - known)} row(s)")
        return {"FINISHED"}


CLASSES = (
    NEURENDER_OT_refresh_models,
    NEURENDER_OT_render_frame,
    NEURENDER_OT_render_animation,
    NEURENDER_OT_live,
    NEURENDER_OT_cancel,
    NEURENDER_OT_start_server,
    NEURENDER_OT_stop_server,
    NEURENDER_OT_class_map_add,
    NEURENDER_OT_class_map_remove,
    NEURENDER_OT_class_map_from_scene,
)
