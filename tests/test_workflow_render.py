"""The artist's workflow, walked as a user types it: render-scene and render-video with no server running (a
private local one is started), outputs never mixed with an earlier run's, glTF classes inherited down the node
tree, a class map for files whose names say nothing (an .obj), and a dead --server named with what to do."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import trimesh

from neurender.cli import main
from neurender.engine_plugin.gbuffer.scene import translation
from neurender.engine_plugin.gbuffer.scenes import CLASS_ID
from neurender.tests.train_support import free_port

SIZE = "32x32"


def _frames(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


def test_render_scene_without_a_server_and_into_an_earlier_output(
    tiny_bundle_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "street"
    assert (
        main(["render-scene", "--model", str(tiny_bundle_dir), "--out", str(out), "--size", SIZE, "--frames", "3"]) == 0
    )
    assert "model tiny" in capsys.readouterr().out
    assert _frames(out / "frames") == [f"{i:06d}.png" for i in range(3)]

    # fewer frames into the same folder: refused, then replaced (not mixed) with --overwrite; other files stay
    (out / "notes.txt").write_text("mine")
    assert (
        main(["render-scene", "--model", str(tiny_bundle_dir), "--out", str(out), "--size", SIZE, "--frames", "1"]) == 2
    )
    err = capsys.readouterr().err
    assert f"--out {out} already holds classes.json, frames, labels from an earlier run" in err and "--overwrite" in err
    assert (
        main(
            [
                "render-scene",
                "--model",
                str(tiny_bundle_dir),
                "--out",
                str(out),
                "--size",
                SIZE,
                "--frames",
                "1",
                "--overwrite",
            ]
        )
        == 0
    )
    assert _frames(out / "frames") == ["000000.png"] and _frames(out / "labels") == ["000000.png"]
    assert (out / "notes.txt").read_text() == "mine"

    # a server address with nobody listening: one line saying how to start one, or to leave --server out
    assert (
        main(
            [
                "render-scene",
                "--server",
                f"127.0.0.1:{free_port()}",
                "--model",
                "tiny",
                "--out",
                str(tmp_path / "x"),
                "--size",
                SIZE,
                "--frames",
                "1",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "neurender serve --models" in err and "leave --server out" in err and "Traceback" not in err
    assert main(["render-scene", "--model", "no-such-model", "--out", str(tmp_path / "y"), "--frames", "1"]) == 2
    assert "not a bundle folder" in capsys.readouterr().err


def test_render_video_without_a_server(tiny_bundle_dir: Path, tmp_path: Path, capsys) -> None:
    labels = tmp_path / "labels"
    labels.mkdir()
    for t in range(3):
        cv2.imwrite(str(labels / f"{t:03d}.png"), np.full((32, 32), t % 3, np.uint8))
    assert (
        main(
            ["render-video", "--labels", str(labels), "--model", str(tiny_bundle_dir), "--out", str(tmp_path / "v.mp4")]
        )
        == 0
    )
    assert (tmp_path / "v.mp4").stat().st_size > 0
    assert (
        main(
            ["render-video", "--labels", str(labels), "--model", str(tiny_bundle_dir), "--out", str(tmp_path / "v.mp4")]
        )
        == 2
    )
    assert "v.mp4 exists from an earlier run" in capsys.readouterr().err
    assert (
        main(
            [
                "render-video",
                "--labels",
                str(labels),
                "--model",
                str(tiny_bundle_dir),
                "--out",
                str(tmp_path / "v.mp4"),
                "--overwrite",
            ]
        )
        == 0
    )


def test_gltf_classes_inherit_and_class_map(tiny_bundle_dir: Path, tmp_path: Path, capsys) -> None:
    s = trimesh.Scene()
    s.graph.update(frame_to="car_group", frame_from=s.graph.base_frame, matrix=translation(0, 0.6, 0))
    s.add_geometry(trimesh.creation.box(extents=(1, 1, 2)), node_name="Object_3", parent_node_name="car_group")
    s.add_geometry(trimesh.creation.box(extents=(6, 0.2, 6)), node_name="Plane")
    glb = tmp_path / "scene.glb"
    glb.write_bytes(s.export(file_type="glb"))
    common = ["--model", str(tiny_bundle_dir), "--size", SIZE, "--frames", "1", "--gltf", str(glb)]
    # "Plane" has no class: the error says how to give it one, --class-map among the ways
    assert main(["render-scene", *common, "--out", str(tmp_path / "a")]) == 2
    assert "'Plane' has no class" in (err := capsys.readouterr().err) and "--class-map" in err
    class_map = tmp_path / "classes.yaml"
    class_map.write_text("Plane: road\n")
    out = tmp_path / "b"
    assert main(["render-scene", *common, "--class-map", str(class_map), "--out", str(out)]) == 0
    colours = {tuple(c["color"]): c["name"] for c in json.loads((out / "classes.json").read_text())}
    seen = {
        colours.get(tuple(int(v) for v in rgb[::-1]))
        for rgb in cv2.imread(str(out / "labels" / "000000.png")).reshape(-1, 3)
    }
    assert {"car", "road"} <= seen  # Object_3 is a car by its parent car_group; Plane a road by the map

    obj = tmp_path / "crate.obj"
    obj.write_text(trimesh.exchange.obj.export_obj(trimesh.creation.box()))
    class_map.write_text('"*": building\n')
    assert (
        main(
            [
                "render-scene",
                "--model",
                str(tiny_bundle_dir),
                "--size",
                SIZE,
                "--frames",
                "1",
                "--gltf",
                str(obj),
                "--class-map",
                str(class_map),
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    class_map.write_text("crate: spaceship\n")
    assert (
        main(
            [
                "render-scene",
                "--model",
                str(tiny_bundle_dir),
                "--size",
                SIZE,
                "--frames",
                "1",
                "--gltf",
                str(obj),
                "--class-map",
                str(class_map),
                "--out",
                str(tmp_path / "d"),
            ]
        )
        == 2
    )
    assert "'spaceship' is not a known class" in capsys.readouterr().err
    assert CLASS_ID["car"] == 7  # the table the help text lists
