# SPDX-License-Identifier: GPL-3.0-or-later
"""The add-on's settings: preferences (server, token, local server), per-scene settings (saved with the .blend) and the
window manager's runtime state (model list, status; not saved).

No `from __future__ import annotations` here: Blender reads the property definitions from the class
annotations, which must stay evaluated objects rather than strings.
"""

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)


class NeurenderPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    address: StringProperty(
        name="Server",
        default="127.0.0.1:50051",
        description="host:port of the neurender server (`neurender serve --models DIR`)",
    )
    token: StringProperty(name="Token", subtype="PASSWORD", description="Bearer token, if the server asks for one")
    server_environment: StringProperty(
        name="Server Environment",
        subtype="FILE_PATH",
        description="For Start Local Server: a Python environment with neurender installed (its folder, or its "
        "python executable)",
    )
    server_models: StringProperty(
        name="Models",
        subtype="DIR_PATH",
        description="For Start Local Server: a model bundle or a folder of them (empty: the models installed with neurender)",
    )
    server_port: IntProperty(
        name="Port",
        default=50051,
        min=0,
        max=65535,
        description="For Start Local Server: the port it listens on at 127.0.0.1 (0: any free port)",
    )

    def draw(self, context: bpy.types.Context) -> None:
        from . import ui

        layout = self.layout
        layout.prop(self, "address")
        layout.prop(self, "token")
        if not bpy.app.online_access:
            layout.label(text="Online access is off: allow it in System > Network to reach the server", icon="ERROR")
        box = layout.box()
        box.label(text="Local server (runs `neurender serve` from this environment)")
        box.prop(self, "server_environment")
        box.prop(self, "server_models")
        box.prop(self, "server_port")
        ui.draw_local_server(box, log_lines=8)


class NeurenderClassMapItem(bpy.types.PropertyGroup):
    pass_index: IntProperty(name="Pass Index", min=0, max=65535, description="Object or material pass index")
    class_id: IntProperty(name="Class", min=0, max=65535, description="The model's class ID for this pass index")


class NeurenderModelItem(bpy.types.PropertyGroup):
    description: StringProperty()
    num_classes: IntProperty()


class NeurenderSettings(bpy.types.PropertyGroup):
    model: StringProperty(name="Model", description="The server's model that renders this scene")
    class_source: EnumProperty(
        name="Classes from",
        items=[
            ("OBJECT", "Object Index", "Each object's pass index (Object Properties > Relations) picks its class"),
            (
                "MATERIAL",
                "Material Index",
                "Each material's pass index (Material Properties > Settings) picks its class",
            ),
        ],
        default="OBJECT",
    )
    class_map: CollectionProperty(
        type=NeurenderClassMapItem,
        name="Class Map",
        description="Pass index -> model class; indices not listed are used as the class ID",
    )
    class_map_index: IntProperty()
    style_seed: IntProperty(name="Style Seed", min=0, description="Picks the look per class from the model's styles")
    output_path: StringProperty(
        name="Output", subtype="DIR_PATH", default="//neurender/", description="Folder for rendered animations"
    )
    output_format: EnumProperty(
        name="Format",
        items=[
            ("PNG", "PNG Sequence", "One PNG per frame: frame_0001.png, ..."),
            ("MOVIE", "MP4 Movie", "One H.264 MP4 of the frame range"),
        ],
        default="PNG",
    )
    save_gbuffers: BoolProperty(
        name="Save G-Buffers",
        default=False,
        description="Also write the arrays sent for each frame (labels, instances, depth, motion) as gbuffer_NNNN.npz",
    )


class NeurenderRuntime(bpy.types.PropertyGroup):
    models: CollectionProperty(type=NeurenderModelItem)
    status: StringProperty()
    status_error: BoolProperty()
    progress: FloatProperty(default=-1.0)  # the animation's progress, 0..1; < 0: none
    progress_text: StringProperty()


CLASSES = (NeurenderPreferences, NeurenderClassMapItem, NeurenderModelItem, NeurenderSettings, NeurenderRuntime)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.neurender = PointerProperty(type=NeurenderSettings)
    bpy.types.WindowManager.neurender = PointerProperty(type=NeurenderRuntime)


def unregister() -> None:
    del bpy.types.WindowManager.neurender
    del bpy.types.Scene.neurender
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
