# SPDX-License-Identifier: GPL-3.0-or-later
"""The neurender panel, in Render Properties and in the 3D Viewport's sidebar (N > neurender)."""

from __future__ import annotations

import bpy

from . import runtime


class NEURENDER_UL_class_map(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0, flt_flag=0):
        row = layout.row(align=True)
        row.prop(item, "pass_index", text="Index")
        row.prop(item, "class_id", text="Class")
        model = runtime.models.get(context.scene.neurender.model)
        names = dict(model.classes) if model else {}
        row.label(text=names.get(item.class_id, "?" if model else ""))


def draw_panel(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    settings = context.scene.neurender
    state = context.window_manager.neurender
    job = runtime.current_job()

    row = layout.row(align=True)
    row.prop_search(settings, "model", state, "models", text="Model")
    row.operator("neurender.refresh_models", text="", icon="FILE_REFRESH")
    model = runtime.models.get(settings.model)
    if model is not None:
        layout.label(text=f"{len(model.classes)} classes, takes {', '.join(sorted(model.input_names))}")

    layout.prop(settings, "class_source")
    row = layout.row()
    row.template_list("NEURENDER_UL_class_map", "", settings, "class_map", settings, "class_map_index", rows=3)
    column = row.column(align=True)
    column.operator("neurender.class_map_add", text="", icon="ADD")
    column.operator("neurender.class_map_remove", text="", icon="REMOVE")
    column.operator("neurender.class_map_from_scene", text="", icon="SCENE_DATA")
    layout.prop(settings, "style_seed")

    column = layout.column(align=True)
    column.operator("neurender.render_frame", icon="RENDER_STILL")
    column.operator("neurender.render_animation", icon="RENDER_ANIMATION")
    live = isinstance(job, runtime.LiveJob)
    column.operator(
        "neurender.live", text="Stop Live" if live else "Live", icon="PAUSE" if live else "PLAY", depress=live
    )
    if state.progress >= 0.0:
        column.progress(factor=state.progress, type="BAR", text=state.progress_text)
    if job is not None and not live:
        column.operator("neurender.cancel", icon="CANCEL")

    column = layout.column()
    column.prop(settings, "output_path")
    column.prop(settings, "output_format")
    column.prop(settings, "save_gbuffers")

    draw_local_server(layout.box(), log_lines=3)

    if not bpy.app.online_access:
        layout.label(text="Online access is off (Preferences > System > Network)", icon="ERROR")
    if state.status:
        box = layout.box()
        for line in _wrap(state.status, 60):
            box.label(text=line, icon="ERROR" if state.status_error else "NONE")


def draw_local_server(layout: bpy.types.UILayout, log_lines: int) -> None:
    """The local server's state, Start/Stop, and the end of its log."""
    server = runtime.local_server()
    running = server is not None and server.running
    row = layout.row(align=True)
    row.label(
        text=f"Local server: {server.state() if server else 'not started'}",
        icon="CHECKMARK" if running else ("ERROR" if server and server.state().startswith("exited") else "NONE"),
    )
    if running:
        row.operator("neurender.stop_server", text="Stop", icon="CANCEL")
    else:
        row.operator("neurender.start_server", text="Start Local Server", icon="PLAY")
    if server is not None:
        column = layout.column(align=True)
        for line in server.tail(log_lines):
            column.label(text=line[-120:])


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + [line] if line else lines


class NEURENDER_PT_render(bpy.types.Panel):
    bl_label = "neurender"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"

    def draw(self, context: bpy.types.Context) -> None:
        draw_panel(self.layout, context)


class NEURENDER_PT_view3d(bpy.types.Panel):
    bl_label = "neurender"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "neurender"

    def draw(self, context: bpy.types.Context) -> None:
        draw_panel(self.layout, context)


CLASSES = (NEURENDER_UL_class_map, NEURENDER_PT_render, NEURENDER_PT_view3d)
