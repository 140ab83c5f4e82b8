# SPDX-License-Identifier: GPL-3.0-or-later
"""The main-thread side of the add-on: the jobs (render a frame, render the animation, live mode), the timer
that drives them, and the local server.

A job captures passes (bpy, main thread), hands frames to the Connection's worker thread, and consumes the
Events the worker sends back; `pump()` is the bpy.app.timers callback that delivers those events and lets the
job take its next step, so Blender's UI stays live between frames. In background mode (`blender -b`, or bpy as a
module) there is no event loop to run timers, so operators drive the same pump themselves until their job is
done (`run_to_end`), unless a script asks them not to wait and pumps itself.
"""

from __future__ import annotations

import itertools
import os
import queue
import tempfile
import time
from pathlib import Path
from typing import Any

import bpy
import numpy as np

from . import capture, images
from .connection import Connection, Event, ModelInfo
from .local_server import LocalServer, LocalServerError, installed_models, server_python
from .passes import PassError, frame_arrays

PUMP_INTERVAL = 1.0 / 30.0
RESULT_IMAGE = "neurender"
LIVE_IMAGE = "neurender live"


class JobError(Exception):
    """A problem the artist can fix; the message says what to do."""


_connection: Connection | None = None
_job: Task | None = None
_server: LocalServer | None = None
models: dict[str, ModelInfo] = {}  # what the server said on the last refresh, by name
SERVER_START_TIMEOUT = 120.0


def addon_preferences() -> Any:
    return bpy.context.preferences.addons[__package__].preferences


def set_status(text: str, error: bool = False) -> None:
    runtime = bpy.context.window_manager.neurender
    runtime.status, runtime.status_error = text, error
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in {"PROPERTIES", "VIEW_3D"}:
                area.tag_redraw()


def set_progress(fraction: float | None, text: str = "") -> None:
    """The animation's progress bar in the panel (None: no bar)."""
    runtime = bpy.context.window_manager.neurender
    runtime.progress = -1.0 if fraction is None else fraction
    runtime.progress_text = text


def connection() -> Connection:
    """The connection to the server in the preferences (made anew when they change). Refuses when Blender's
    online access is off: the add-on only talks to a server the artist allowed it to."""
    prefs = addon_preferences()
    address = prefs.address.strip()
    if not bpy.app.online_access:
        raise JobError(
            f"Online access is off in Blender, so neurender will not contact {address}. Turn on "
            "Preferences > System > Network > Allow Online Access (or start Blender with --online-mode)."
        )
    if not address:
        raise JobError("No server address: set one in the neurender add-on preferences (e.g. 127.0.0.1:50051).")
    global _connection
    if _connection is None or (_connection.address, _connection.token) != (address, prefs.token):
        if _connection is not None:
            _connection.shutdown(timeout=0)  # its worker ends after its current call; the UI does not wait
        _connection = Connection(address, prefs.token)
    return _connection


def current_job() -> Task | None:
    return _job if _job is not None and not _job.done else None


def start(job: Task, wait: bool = True) -> None:
    """Start a task (one at a time) and the timer that drives it; in background mode, run it to its end unless
    `wait` is off (a script then calls pump() itself)."""
    global _job
    if current_job() is not None:
        raise JobError(f"neurender is busy ({_job.title}); wait for it or cancel it first.")
    job.connection = connection()
    _job = job
    job.start()
    if bpy.app.background and job.ends and wait:
        run_to_end(job)
    elif not bpy.app.timers.is_registered(pump):
        bpy.app.timers.register(pump, first_interval=0.0)


def pump() -> float | None:
    """Deliver the worker's events to the job and let it take its next step. The timer callback; scripts in
    background mode may call it too. Returns the delay until the next call, or None when no job is left."""
    job = _job
    if job is None or job.done:
        return None
    try:
        if _server is not None and _server.ended(job.connection.address):
            raise JobError(f"Lost the server at {job.connection.address}.{_server_note()}")  # no reconnect can help
        while not job.done:
            try:
                event = job.connection.events.get_nowait()
            except queue.Empty:
                break
            if not job.owns(event):
                continue  # a late answer to an earlier, cancelled job
            if event.kind == "error":
                raise JobError(event.error + _server_note())
            job.on_event(event)
        if not job.done:
            job.step()
    except (JobError, PassError) as err:
        job.fail(str(err))
    except Exception as err:  # a bug or a Blender error: stop the job and show it rather than loop on it
        job.fail(f"{type(err).__name__}: {err}")
    return None if job.done else PUMP_INTERVAL


def run_to_end(job: Task, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not job.done:
        if time.monotonic() > deadline:
            job.fail(f"{job.title} did not finish in {timeout:.0f} s")
            break
        if pump() is not None:
            time.sleep(0.002)


def cancel() -> None:
    job = current_job()
    if job is not None:
        job.cancel()


def shutdown() -> None:
    """Stop any job, close the connection and stop the local server (the add-on is being disabled)."""
    global _connection, _job
    cancel()
    _job = None
    if _connection is not None:
        _connection.shutdown()
        _connection = None
    stop_local_server()


# -- the local server -------------------------------------------------------------------------------------------


def local_server() -> LocalServer | None:
    return _server


def start_local_server(wait: bool = True) -> LocalServer:
    """Run `neurender serve` from the environment in the preferences. When it listens, the add-on's server
    address becomes its own. In background mode this waits for that (unless `wait` is off); otherwise a timer
    watches it."""
    global _server
    if _server is not None and _server.running:
        raise JobError(f"The local server is already {_server.state()}; stop it first.")
    prefs = addon_preferences()
    try:
        python = server_python(prefs.server_environment)
        models = (
            Path(bpy.path.abspath(prefs.server_models)) if prefs.server_models.strip() else installed_models(python)
        )
        if not models.exists():
            raise LocalServerError(
                f"the models folder {models} does not exist; expected a model bundle or a folder of them"
            )
        log_path = Path(tempfile.gettempdir()) / f"neurender-server-{os.getpid()}.log"
        _server = LocalServer(python, models, int(prefs.server_port), log_path)
        _server.start()
    except LocalServerError as err:
        raise JobError(str(err)) from None
    set_status(f"Starting the local server ({_server.command[0]})...")
    if bpy.app.background and wait:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while watch_local_server() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if _server.address is None:
            raise JobError(f"The local server did not start: {_server.state()}.{_server_note(lines=5)}")
    elif not bpy.app.timers.is_registered(watch_local_server):
        bpy.app.timers.register(watch_local_server, first_interval=0.2)
    return _server


def watch_local_server() -> float | None:
    """Timer: until the server listens (or ends), then point the add-on at it. Redraws the panel's log tail."""
    server = _server
    if server is None:
        return None
    set_status(f"Local server: {server.state()}.", error=not server.running and server.state() != "stopped")
    if server.address is not None:
        addon_preferences().address = server.address
        set_status(f"Local server {server.state()} (pid {server.pid}); the add-on uses it now.")
        return None
    return None if not server.running else 0.2


def stop_local_server() -> None:
    global _server
    if _server is not None:
        _server.stop()


def _server_note(lines: int = 1) -> str:
    """What the local server says, when it has ended: why a job lost its server."""
    if _server is None or _server.running or _server.state() == "not started":
        return ""
    tail = " | ".join(_server.tail(lines))
    return f" The local server {_server.state()}{f'; its log ends: {tail}' if tail else ''}."


def _where(editors: int, image: str) -> str:
    """A hint when no Image Editor is open to show the result (none exist in background mode)."""
    return "" if editors or bpy.app.background else f' Open an Image Editor to see the image "{image}".'


# -- tasks ------------------------------------------------------------------------------------------------------


class Task:
    """One piece of work on the server, driven by pump(): start() posts requests, on_event() consumes the
    answers, step() does what is due on each pump."""

    title = "a task"
    ends = True  # False: runs until cancelled (live mode)
    _serials = itertools.count(1)

    def __init__(self) -> None:
        self.connection: Connection | None = None
        self.done = False
        self.error = ""
        self.serial = next(Task._serials)

    def owns(self, event: Event) -> bool:
        """Events carry the serial of the task that posted the request (frames: (serial, frame))."""
        tag = event.tag[0] if isinstance(event.tag, tuple) else event.tag
        return tag == self.serial

    def start(self) -> None:
        raise NotImplementedError

    def on_event(self, event: Event) -> None:
        raise NotImplementedError

    def step(self) -> None:
        """Called on every pump once the events are delivered."""

    def finish(self, status: str, error: bool = False) -> None:
        if self.done:
            return
        self.done = True
        if error:
            self.error = status
        set_status(status, error)

    def fail(self, message: str) -> None:
        self.finish(message, error=True)

    def cancel(self) -> None:
        self.finish("Cancelled.")


class ModelsTask(Task):
    """Ask the server what it serves; fill the model picker (and pick the first model if none is set)."""

    title = "listing models"

    def __init__(self, scene: bpy.types.Scene) -> None:
        super().__init__()
        self.scene = scene

    def start(self) -> None:
        set_status(f"Asking {self.connection.address} for its models...")
        self.connection.list_models(self.serial)

    def on_event(self, event: Event) -> None:
        if event.kind != "models":
            return
        found: list[ModelInfo] = event.value
        models.clear()
        models.update((info.name, info) for info in found)
        items = bpy.context.window_manager.neurender.models
        items.clear()
        for info in found:
            item = items.add()
            item.name, item.description, item.num_classes = info.name, info.description, len(info.classes)
        settings = self.scene.neurender
        if found and settings.model not in models:
            settings.model = next((info.name for info in found if info.segmentation), found[0].name)
        self.finish(f"{self.connection.address} serves {len(found)} model(s): {', '.join(models) or 'none'}.")


class Job(Task):
    """Renders frames of `scene` through one session. Subclasses decide which frames and where results go."""

    drop_stale = False
    max_in_flight = 1

    def __init__(self, scene: bpy.types.Scene) -> None:
        super().__init__()
        settings = scene.neurender
        if not settings.model:
            raise JobError("Pick a model first: refresh the model list from the server in the neurender panel.")
        self.scene = scene
        self.model_name = settings.model
        self.source = settings.class_source
        self.mapping = {int(item.pass_index): int(item.class_id) for item in settings.class_map}
        self.style_seed = int(settings.style_seed)
        self.save_gbuffers = bool(settings.save_gbuffers)
        self.output_dir = bpy.path.abspath(settings.output_path)
        self.model: ModelInfo | None = None
        self.in_flight = 0
        self.capture_seconds: list[float] = []

    def start(self) -> None:
        height, width = capture.render_size(self.scene)
        set_status(f"Opening a {width}x{height} session on {self.model_name} at {self.connection.address}...")
        self.connection.open_session(
            self.serial, self.model_name, (height, width), self.style_seed, self.drop_stale, self.max_in_flight
        )

    def on_event(self, event: Event) -> None:
        if event.kind == "opened":
            self.model = event.value
        elif event.kind == "frame":
            self.in_flight -= 1
            self.on_frame(event.tag[1], event.value)
        elif event.kind == "dropped":
            self.in_flight -= 1

    def on_frame(self, frame: int, rgb: np.ndarray) -> None:
        raise NotImplementedError

    def send(self, frame: int, reset: bool) -> None:
        """Capture the scene at its current frame and submit it as `frame`."""
        passes, seconds = capture.render_passes(self.scene, bpy.context.view_layer)
        self.capture_seconds.append(seconds)
        arrays = frame_arrays(
            passes, self.source, self.mapping, len(self.model.classes), self.model.input_names, self.model.max_depth
        )
        if self.save_gbuffers:
            os.makedirs(self.output_dir, exist_ok=True)
            np.savez(os.path.join(self.output_dir, f"gbuffer_{frame:04d}.npz"), **arrays)
        self.connection.submit((self.serial, frame), arrays, reset)
        self.in_flight += 1

    def finish(self, status: str, error: bool = False) -> None:
        if not self.done and self.connection is not None:
            self.connection.close_session(self.serial)
        super().finish(status, error)

    def timing(self) -> str:
        if not self.capture_seconds:
            return ""
        return f" (passes: {1e3 * sum(self.capture_seconds) / len(self.capture_seconds):.0f} ms a frame)"


class RenderFrameJob(Job):
    """The current frame, with no history, into the image "neurender", shown in every Image Editor."""

    title = "rendering a frame"

    def __init__(self, scene: bpy.types.Scene) -> None:
        super().__init__(scene)
        self.frame = scene.frame_current
        self.sent = False

    def step(self) -> None:
        if self.model is not None and not self.sent:
            self.sent = True
            self.send(self.frame, reset=True)

    def on_frame(self, frame: int, rgb: np.ndarray) -> None:
        shown = images.show_in_image_editors(images.show_frame(RESULT_IMAGE, rgb))
        self.finish(f"Rendered frame {frame} with {self.model_name}{self.timing()}.{_where(shown, RESULT_IMAGE)}")


class AnimationJob(Job):
    """The scene's frame range as one session (each frame continues the previous one) into numbered PNGs in
    the output folder, and optionally an MP4 of them."""

    title = "rendering the animation"
    max_in_flight = 2  # capture the next frame while the server renders this one

    def __init__(self, scene: bpy.types.Scene) -> None:
        super().__init__(scene)
        self.frames = list(range(scene.frame_start, scene.frame_end + 1, scene.frame_step))
        self.movie = scene.neurender.output_format == "MOVIE"
        self.fps = scene.render.fps / scene.render.fps_base
        self.restore_frame = scene.frame_current
        self.next = 0
        self.written: list[str] = []
        self.started = time.monotonic()

    def start(self) -> None:
        set_progress(0.0, f"0/{len(self.frames)} frames")
        super().start()

    def step(self) -> None:
        if self.model is None:
            return
        if self.next < len(self.frames) and self.in_flight < self.max_in_flight:
            frame = self.frames[self.next]
            self.scene.frame_set(frame)
            self.send(frame, reset=self.next == 0)
            self.next += 1
        elif self.next == len(self.frames) and self.in_flight == 0:
            self.complete()

    def on_frame(self, frame: int, rgb: np.ndarray) -> None:
        images.show_in_image_editors(images.show_frame(RESULT_IMAGE, rgb))
        path = os.path.join(self.output_dir, f"frame_{frame:04d}.png")
        images.save_png(rgb, path)
        self.written.append(path)
        done, total = len(self.written), len(self.frames)
        seconds = time.monotonic() - self.started
        eta = seconds / done * (total - done)
        set_progress(done / total, f"{done}/{total} frames, ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        set_status(f"Rendered frame {frame} ({done}/{total}, {done / seconds:.1f} frames/s)...")

    def complete(self) -> None:
        self.scene.frame_set(self.restore_frame)
        if self.movie:
            path = os.path.join(self.output_dir, f"neurender_{self.frames[0]:04d}-{self.frames[-1]:04d}.mp4")
            images.encode_movie(self.written, capture.render_size(self.scene), self.fps, path)
            for frame in self.written:
                os.remove(frame)
            self.written = [path]
        self.finish(
            f"Rendered {len(self.frames)} frames into {self.written[-1] if self.movie else self.output_dir}{self.timing()}."
        )

    def cancel(self) -> None:
        self.finish(f"Cancelled after {len(self.written)} of {len(self.frames)} frames (in {self.output_dir}).")

    def finish(self, status: str, error: bool = False) -> None:
        if not self.done:
            self.scene.frame_set(self.restore_frame)
            set_progress(None)
        super().finish(status, error)


class LiveJob(Job):
    """Streams the frame the timeline shows whenever it changes (playing or scrubbing) into the image
    "neurender live", shown in every Image Editor. A jump that is not the next frame starts a new history."""

    title = "live mode"
    ends = False
    drop_stale = True  # the server keeps only the newest frame waiting
    max_in_flight = 2

    def __init__(self, scene: bpy.types.Scene) -> None:
        super().__init__(scene)
        self.last: int | None = None
        self.shown = 0

    def step(self) -> None:
        frame = self.scene.frame_current
        if self.model is None or frame == self.last or self.in_flight >= self.max_in_flight:
            return
        self.send(frame, reset=self.last is None or frame != self.last + self.scene.frame_step)
        self.last = frame

    def on_frame(self, frame: int, rgb: np.ndarray) -> None:
        editors = images.show_in_image_editors(images.show_frame(LIVE_IMAGE, rgb))
        self.shown += 1
        set_status(f"Live: frame {frame}{self.timing()}.{_where(editors, LIVE_IMAGE)}")
