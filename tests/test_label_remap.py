"""Foreign label IDs (any UINT16 value) remapped onto a model's classes: `render-video --remap FILE` end to end
through a real server; IDs left unmapped and classes the model never trained on are refused by value."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from neurender.cli import main
from tests.server_support import label_sequence, running_server

SIZE = 32
# The model's trained classes (the rest of its 12 IDs are unused_*), and the Cityscapes IDs of the same things.
TRAINED = {0: "road", 1: "car", 2: "building"}
CITYSCAPES = {0: 7, 1: 26, 2: 11}
VOID = 255


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import torch

    from neurender.training.export import class_table
    from neurender.training.model.bundle_export import BundleInfo, export_bundle
    from neurender.training.model.config import PRESETS
    from neurender.training.model.generator import Vid2VidGenerator

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    classes = class_table([(i, name, [40 * i, 80, 120]) for i, name in TRAINED.items()], PRESETS["tiny"].num_classes)
    export_bundle(
        Vid2VidGenerator(PRESETS["tiny"]),
        root / "street3",
        BundleInfo(name="street3", classes=classes),
        include_torch=False,
    )
    with running_server(root) as running:
        yield running


def _write_labels(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir()
    for t, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{t:04d}.png"), frame)
    return folder


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Label maps in the model's IDs, and the same maps in Cityscapes IDs with a void (255) border."""
    root = tmp_path_factory.mktemp("labels")
    ours = [frame % 3 for frame in label_sequence(4, SIZE, SIZE, classes=3, seed=3)]
    foreign = []
    for frame in ours:
        f = np.vectorize(CITYSCAPES.get)(frame).astype(np.uint8)
        f[:2] = VOID
        foreign.append(f)
    ours = [np.where(np.arange(SIZE)[:, None] < 2, 0, frame).astype(np.uint8) for frame in ours]  # void -> road
    return _write_labels(root / "ours", ours), _write_labels(root / "cityscapes", foreign)


def _render(server, labels: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "render-video",
            "--server",
            server.address,
            "--model",
            "street3",
            "--labels",
            str(labels),
            "--out",
            str(out),
            *extra,
        ]
    )


def test_foreign_ids_render_as_the_classes_they_are_remapped_to(server, scenes, tmp_path, capsys):
    ours, cityscapes = scenes
    remap = tmp_path / "cityscapes.yaml"
    remap.write_text("7: road\n26: car\n11: 2\n255: road  # void\n")
    assert _render(server, cityscapes, tmp_path / "remapped.mp4", "--remap", str(remap)) == 0
    assert _render(server, ours, tmp_path / "direct.mp4") == 0
    remapped, direct = _frames(tmp_path / "remapped.mp4"), _frames(tmp_path / "direct.mp4")
    assert len(remapped) == 4 and all(np.array_equal(a, b) for a, b in zip(remapped, direct))


def test_unmapped_and_untrained_ids_are_refused_by_value(server, scenes, tmp_path, capsys):
    _, cityscapes = scenes
    assert _render(server, cityscapes, tmp_path / "a.mp4") == 2
    err = capsys.readouterr().err
    assert "0000.png: " in err and "labels hold class IDs 7, 11, 26, 255" in err and "label_remap" in err

    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"7": "road", "26": "car", "11": "building"}))
    assert _render(server, cityscapes, tmp_path / "b.mp4", "--remap", str(partial)) == 2
    assert "labels hold class ID 255 (64 pixels) that model street3 was not trained on" in capsys.readouterr().err

    untrained = tmp_path / "untrained.yaml"
    untrained.write_text("7: unused_5\n26: car\n11: building\n255: road\n")
    assert _render(server, cityscapes, tmp_path / "c.mp4", "--remap", str(untrained)) == 2
    err = capsys.readouterr().err
    assert "label_remap entries [(7, 5)] map onto classes model street3 was not trained on" in err and "0-2" in err

    five = _write_labels(tmp_path / "five", [np.full((SIZE, SIZE), 5, np.uint8)])
    assert _render(server, five, tmp_path / "d.mp4") == 2
    assert "labels hold class ID 5 (1024 pixels) that model street3 was not trained on" in capsys.readouterr().err

    for text, expected in (
        ("7: sky\n", "target 'sky' is not a class of model street3; its classes: building, car"),
        ("70000: road\n", "source class ID 70000 is outside 0..65535"),
        ("- 7\n", "expected a mapping of source class ID"),
    ):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        assert _render(server, cityscapes, tmp_path / "e.mp4", "--remap", str(bad)) == 2
        assert f"{bad}: {expected}" in capsys.readouterr().err
    assert not any((tmp_path / f"{x}.mp4").exists() for x in "abcde")
