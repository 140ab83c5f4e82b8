# SPDX-License-Identifier: GPL-3.0-or-later
"""neurender for Blender: render scenes through a neurender server (neural rendering from G-buffer passes).

Cycles renders the Object/Material Index, Depth and Vector passes of each frame on the CPU; the add-on turns
them into class IDs, instance IDs, depth and backward motion, streams them to the server with the project's
client SDK on a worker thread, and shows the frames that come back in Blender's Image Editors or writes them
to disk. It can run the server itself (`neurender serve` from a Python environment set in its preferences).
See README.md beside this file.
"""

from __future__ import annotations

import atexit

import bpy
from bpy.app.handlers import persistent

from . import ops, props, runtime, ui


@persistent
def _stop_before_load(*_args: object) -> None:
    """A job holds the current scene, which a file load frees: stop it first."""
    runtime.cancel()


def register() -> None:
    props.register()
    for cls in ops.CLASSES + ui.CLASSES:
        bpy.utils.register_class(cls)
    bpy.app.handlers.load_pre.append(_stop_before_load)
    atexit.register(runtime.stop_local_server)  # the local server ends with Blender


def unregister() -> None:
    bpy.app.handlers.load_pre.remove(_stop_before_load)
    atexit.unregister(runtime.stop_local_server)
    runtime.shutdown()
    for cls in reversed(ops.CLASSES + ui.CLASSES):
        bpy.utils.unregister_class(cls)
    props.unregister()
