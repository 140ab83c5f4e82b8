"""The Blender add-on in real Blender (bpy 5.0.1 in .venv-blender, made by `make blender-env`) against a real
neurender server on 127.0.0.1.

tests/blender_addon_scene.py installs the linux-x64 extension zip with its wheels (Blender installs grpcio,
protobuf and neurender-sdk from them: the Blender environment has none of them), builds an orthographic
top-down scene whose passes are known exactly (a ground plane, a static crate, a cart moving diagonally), and
runs the add-on's operators. Here we check what it sent (the G-buffers it saved) against the scene's geometry,
what Blender shows against what the server renders for those same inputs, and the local server it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from neurender.engine_plugin.blender_extension import WHEELHOUSE, WheelhouseError, build
from neurender.engine_plugin.sdk.client import RenderClient
from tests.server_support import running_server

REPO = Path(__file__).resolve().parents[1]
SCENE_SCRIPT = Path(__file__).with_name("blender_addon_scene.py")
TOKEN = "blender-test-token"

SPEC = {
    "size": [64, 128],  # H, W: a multiple of 4, as the tiny model needs
    "ortho_scale": 16.0,  # 128 px across 16 units: 8 px per unit, so box edges fall between pixel centres
    "camera_z": 10.0,
    "frames": [1, 3],
    "still_frame": 2,
    "style_seed": 3,
    "objects": [
        {"name": "ground", "kind": "plane", "size": 12.0, "location": [0.0, 0.0, 0.0], "pass_index": 1},
        {
            "name": "crate",
            "kind": "cube",
            "size": 2.0,
            "location": [3.0, -1.0, 1.0],
            "pass_index": 2,
            "material_index": 5,
        },
        {
            "name": "cart",
            "kind": "cube",
            "size": 2.0,
            "location": [-4.0, 1.0, 1.0],
            "pass_index": 7,
            "material_index": 6,
            "velocity": [1.0, 0.5, 0.0],
        },  # units per frame, from frame 1
    ],
    "class_map": {"7": 4},  # object pass index 7 renders as class 4; others keep their index
    "material_class_map": {"5": 2, "6": 3},
    "unmapped_object": "crate",
    "unmapped_index": 40,  # the tiny model has 12 classes
    "unreachable_address": "127.0.0.1:1",
}


def blender_python() -> Path:
    """The Python with bpy: $NEURENDER_BLENDER_PYTHON, else the one `make blender-env` makes."""
    configured = os.environ.get("NEURENDER_BLENDER_PYTHON")
    return Path(configured) if configured else REPO / ".venv-blender" / "bin" / "python"


def _skip_reason() -> str | None:
    python = blender_python()
    if not python.exists():
        return f"no Blender environment ({python} is missing): run `make blender-env` (installs bpy 5.0.1 from PyPI)"
    probe = subprocess.run([str(python), "-c", "import bpy"], capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        return f"the Blender environment {python} cannot import bpy: {probe.stderr.strip()[-300:]}"
    return None


pytestmark = pytest.mark.blender


# -- what the scene must give --------------------------------------------------------------------------------


def _location(item: dict, frame: int) -> np.ndarray:
    return np.asarray(item["location"]) + np.asarray(item.get("velocity", [0.0, 0.0, 0.0])) * (frame - 1)


def expected_passes(frame: int) -> dict[str, np.ndarray]:
    """Per pixel centre: the object seen from above (the highest top face covering it), its depth and motion."""
    height, width = SPEC["size"]
    per_unit = width / SPEC["ortho_scale"]
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    x = (cols + 0.5 - width / 2) / per_unit
    y = (height / 2 - rows - 0.5) / per_unit
    top = np.full((height, width), -np.inf)
    passes = {
        "object": np.zeros((height, width), int),
        "material": np.zeros((height, width), int),
        "depth": np.full((height, width), np.inf),
        "motion": np.zeros((height, width, 2)),
    }
    for item in SPEC["objects"]:
        cx, cy, cz = _location(item, frame)
        half = item["size"] / 2
        face = cz + (half if item["kind"] == "cube" else 0.0)
        hit = (np.abs(x - cx) < half) & (np.abs(y - cy) < half) & (face > top)
        top[hit] = face
        passes["object"][hit] = item["pass_index"]
        passes["material"][hit] = item.get("material_index", 0)
        passes["depth"][hit] = SPEC["camera_z"] - face
        vx, vy, _ = item.get("velocity", [0.0, 0.0, 0.0])
        passes["motion"][hit] = (-vx * per_unit, vy * per_unit)  # backward, y down: it came from left and below
    return passes


def mapped(indices: np.ndarray, mapping: dict[str, int]) -> np.ndarray:
    lut = np.arange(max(int(indices.max()), *map(int, mapping)) + 1)
    for index, cls in mapping.items():
        lut[int(index)] = cls
    return lut[indices]


# -- running Blender ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with "tiny-engine": labels, instances, depth and motion inputs, random weights."""
    if (reason := _skip_reason()) is not None:
        pytest.skip(reason)
    import torch

    from neurender.training.model.bundle_export import BundleInfo, export_bundle
    from neurender.training.model.config import PRESETS
    from neurender.training.model.generator import Vid2VidGenerator

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    export_bundle(
        Vid2VidGenerator(PRESETS["tiny-engine"]),
        root / "tiny-engine",
        BundleInfo(name="tiny-engine"),
        include_torch=False,
    )
    return root


@pytest.fixture(scope="module")
def blender_run(engine_models_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Run the Blender script once against a token-protected server; yield (result, out dir, server address)."""
    tmp = tmp_path_factory.mktemp("blender")
    token_file = tmp / "token"
    token_file.write_text(TOKEN)
    try:
        addon_zip = build(tmp / "dist", "3.11", "linux-x64", wheelhouse=WHEELHOUSE)
    except WheelhouseError as err:
        pytest.skip(str(err))
    spec_file = tmp / "spec.json"
    spec_file.write_text(json.dumps(SPEC))
    out = tmp / "out"
    out.mkdir()
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp / "blender-user")}
    with running_server(engine_models_dir, token_file=str(token_file)) as server:
        run = subprocess.run(
            [
                str(blender_python()),
                str(SCENE_SCRIPT),
                "--addon",
                str(addon_zip),
                "--address",
                server.address,
                "--token",
                TOKEN,
                "--spec",
                str(spec_file),
                "--out",
                str(out),
                "--server-python",
                sys.executable,
                "--models",
                str(engine_models_dir),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        if run.returncode != 0:
            pytest.fail(f"the Blender script failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
        yield json.loads((out / "result.json").read_text()), out, server.address


@pytest.fixture(scope="module")
def client(blender_run):
    with RenderClient(blender_run[2], token=TOKEN) as connected:
        yield connected


def _gbuffer(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as arrays:
        return {name: arrays[name] for name in arrays.files}


# -- tests ---------------------------------------------------------------------------------------------------


def test_the_zips_wheels_provide_grpc_protobuf_and_the_sdk(blender_run):
    """Blender installed them from the zip into its extensions' site-packages; the environment has none."""
    for module, path in blender_run[0]["imported_from"].items():
        assert "/extensions/.local/lib/python3.11/site-packages/" in path, (module, path)


def test_model_list_comes_from_the_server(blender_run):
    result = blender_run[0]
    assert result["refresh"]["error"] is None
    assert result["models"] == ["tiny-engine"]
    assert result["picked_model"] == "tiny-engine"


def test_sent_ids_depth_and_motion_match_the_scene(blender_run, client):
    """The G-buffer sent for every frame of the animation equals the scene's exact passes: class IDs through
    the class map, instance IDs = object pass index, view depth (the model's max_depth where no surface is hit),
    and backward motion of the moving cart."""
    result, out, _ = blender_run
    max_depth = client.get_model("tiny-engine").max_depth
    assert result["render_animation"]["error"] is None, result["render_animation"]
    first, last = SPEC["frames"]
    for frame in range(first, last + 1):
        sent = _gbuffer(out / "animation" / f"gbuffer_{frame:04d}.npz")
        want = expected_passes(frame)
        assert sent["labels"].dtype == np.uint8 and sent["instances"].dtype == np.uint16
        np.testing.assert_array_equal(
            sent["labels"], mapped(want["object"], SPEC["class_map"]), err_msg=f"frame {frame}"
        )
        np.testing.assert_array_equal(sent["instances"], want["object"], err_msg=f"frame {frame}")
        want_depth = np.where(np.isinf(want["depth"]), np.float16(max_depth), want["depth"])
        np.testing.assert_array_equal(sent["depth"].astype(float), want_depth, err_msg=f"frame {frame}")
        np.testing.assert_array_equal(sent["motion"].astype(float), want["motion"], err_msg=f"frame {frame}")
    cart = want["object"] == 7
    assert cart.sum() == 16 * 16 and np.all(sent["motion"][cart] == (-8, 4))  # 8 px per unit; (1, 0.5) per frame


def test_the_scenes_render_settings_are_given_back(blender_run):
    result = blender_run[0]
    assert result["settings_before"]["engine"] != "CYCLES"  # so the capture really had to change it
    assert result["settings_after"] == result["settings_before"]


def test_material_indices_pick_classes(blender_run):
    result, out, _ = blender_run
    assert result["render_frame_material"]["error"] is None, result["render_frame_material"]
    sent = _gbuffer(out / "material" / f"gbuffer_{SPEC['still_frame']:04d}.npz")
    want = expected_passes(SPEC["still_frame"])
    np.testing.assert_array_equal(sent["labels"], mapped(want["material"], SPEC["material_class_map"]))


def test_rendered_frame_comes_back_into_blender(blender_run, client):
    """The "neurender" image in Blender holds exactly what the server renders for the G-buffer the add-on sent."""
    result, out, _ = blender_run
    assert result["render_frame"]["error"] is None, result["render_frame"]
    assert "Rendered frame 2" in result["render_frame"]["status"]
    sent = _gbuffer(out / "still" / f"gbuffer_{SPEC['still_frame']:04d}.npz")
    shown = np.load(out / "still" / "image.npy")
    expected = client.render_frame("tiny-engine", tuple(SPEC["size"]), style_seed=SPEC["style_seed"], **sent)
    assert shown.shape == (*SPEC["size"], 3)
    np.testing.assert_array_equal(shown, expected)
    material = np.load(out / "material" / "image.npy")
    assert not np.array_equal(material, shown)  # other labels, another frame: the image was rewritten


def test_animation_is_one_session_written_as_pngs_and_movie(blender_run, client):
    """The PNG sequence equals the server's output for the sent frames rendered as one session (history)."""
    import av

    result, out, _ = blender_run
    first, last = SPEC["frames"]
    assert result["frame_after_animation"] == SPEC["still_frame"]  # the scene's frame is restored
    with client.session("tiny-engine", tuple(SPEC["size"]), style_seed=SPEC["style_seed"]) as session:
        for frame in range(first, last + 1):
            expected = session.render(reset=frame == first, **_gbuffer(out / "animation" / f"gbuffer_{frame:04d}.npz"))
            written = cv2.cvtColor(cv2.imread(str(out / "animation" / f"frame_{frame:04d}.png")), cv2.COLOR_BGR2RGB)
            np.testing.assert_array_equal(written, expected, err_msg=f"frame {frame}")

    assert result["render_movie"]["error"] is None, result["render_movie"]
    movie = out / "movie" / f"neurender_{first:04d}-{last:04d}.mp4"
    with av.open(str(movie)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == last - first + 1 and frames[0].shape == (*SPEC["size"], 3)
    assert not list((out / "movie").glob("*.png"))  # the PNGs were only a step towards the movie


def test_live_mode_streams_timeline_frames(blender_run, client):
    result, out, _ = blender_run
    assert result["live"]["error"] is None and not result["live_error"], result
    first, last = SPEC["frames"]
    assert result["live_frames"] == list(range(first, last + 1))
    images = [np.load(out / f"live_{frame:04d}.npy") for frame in result["live_frames"]]
    animation = [
        cv2.cvtColor(cv2.imread(str(out / "animation" / f"frame_{f:04d}.png")), cv2.COLOR_BGR2RGB)
        for f in range(first, last + 1)
    ]
    for frame, live, rendered in zip(result["live_frames"], images, animation):
        np.testing.assert_array_equal(live, rendered, err_msg=f"live frame {frame} differs from the animation's")
    assert result["live_stop"]["error"] is None and not result["live_running_after_stop"]


def test_panel_draws_with_blenders_own_names(blender_run):
    """The panel's draw code, run against Blender's RNA (no UI exists headless): every property, operator,
    icon and list it names is real, and it shows what each state calls for."""
    result = blender_run[0]
    for state in ("ui_idle", "ui_live", "ui_offline"):
        assert result[state]["problems"] == [], state
    assert "neurender.render_frame" in result["ui_idle"]["drawn"] and "Live" in result["ui_idle"]["drawn"]
    assert "Stop Live" in result["ui_live"]["drawn"]
    assert any("Online access is off" in text for text in result["ui_offline"]["drawn"])


@pytest.mark.parametrize(
    "case, message",
    [
        ("unmapped_index", "object pass index 40 -> class 40: the model has classes 0..11"),
        ("bad_size", "refused: model tiny-engine: frame size 64x130 (HxW) must have both sides a multiple of 4"),
        ("unknown_model", "does not serve that model"),
        ("wrong_token", "refused the token"),
        ("unreachable", f"Cannot reach the neurender server at {SPEC['unreachable_address']}"),
        ("offline", "Online access is off"),
    ],
)
def test_problems_are_reported_clearly(blender_run, case, message):
    result = blender_run[0]
    assert result[case]["result"] is None, f"{case} should have failed: {result[case]}"
    assert message in result[case]["error"], result[case]["error"]
    assert result["after_errors"]["error"] is None  # and the add-on still works afterwards


def test_animation_cancelled_midway(blender_run):
    """Started without waiting (as from the UI), it reports progress with an ETA while frames arrive; Cancel
    stops it at once: no frame is written afterwards, the scene's frame is restored, and the add-on works on."""
    result = blender_run[0]
    cancel = result["cancel"]
    assert cancel["started"]["error"] is None and cancel["arrived"], cancel
    during = cancel["during"]
    assert 0.0 < during["progress"] < 1.0 and "ETA" in during["progress_text"], during
    assert "neurender.cancel" in during["ui"]["drawn"] and during["ui"]["problems"] == []
    assert cancel["cancel"]["error"] is None and cancel["job_done"] and not cancel["job_error"]
    assert 2 <= cancel["written_at_cancel"] == cancel["written_after"] < cancel["frames"]
    assert cancel["status"].startswith(f"Cancelled after {cancel['written_at_cancel']} of {cancel['frames']} frames")
    assert cancel["progress_after"] < 0  # no progress bar once it is over
    assert cancel["frame_after"] == cancel["frame_before"]
    assert result["after_cancel"]["error"] is None


def test_local_server_starts_serves_and_stops(blender_run, engine_models_dir):
    local = blender_run[0]["local_server"]
    assert local["start"]["error"] is None, local["start"]
    assert local["state"].startswith("running on 127.0.0.1:") and local["address"] == local["state"].split()[-1]
    assert local["refresh"]["error"] is None and local["models"] == ["tiny-engine"]
    assert local["ui_running"]["problems"] == [] and "Stop" in local["ui_running"]["drawn"]
    assert local["restart"]["error"] is None and local["render_frame"]["error"] is None
    assert local["stop"]["error"] is None and local["stopped_state"] == "stopped" and not local["stopped_alive"]
    assert not local["disabled_alive"]  # disabling the add-on stops its server
    assert (
        local["bad_environment"]["result"] is None and "no-such-env does not exist" in local["bad_environment"]["error"]
    )


def test_a_server_that_dies_mid_animation_is_reported(blender_run):
    local = blender_run[0]["local_server"]
    assert local["animation"]["error"] is None and local["job_ended"]
    assert 1 <= local["written"] < 30
    assert local["died_state"] == "exited with code -9"
    assert local["job_error"].startswith(f"Lost the server at {local['address']}. The local server exited with code -9")
    assert local["ui_died"]["problems"] == [] and "Start Local Server" in local["ui_died"]["drawn"]
    assert local["died_log_tail"] and all(line[-120:] in local["ui_died"]["drawn"] for line in local["died_log_tail"])


def test_local_server_ends_with_blender(blender_run):
    local = blender_run[0]["local_server"]
    assert local["left_running"]["error"] is None
    pid = local["left_running_pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    os.kill(pid, 9)
    pytest.fail(f"the local server (pid {pid}) outlived Blender")
