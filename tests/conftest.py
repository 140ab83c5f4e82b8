"""Shared fixtures: small model bundles with random weights, exported once per test run.

Each `*_models_dir` fixture is a folder of bundles, as `neurender serve --models DIR` takes it; each holds one
model named after the fixture ("tiny", "tiny-pose", "tiny-style").
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest


def _export(root: Path, name: str, preset: str, **overrides: object) -> Path:
    import torch

    from neurender.training.model.bundle_export import BundleInfo, export_bundle
    from neurender.training.model.config import PRESETS
    from neurender.training.model.generator import Vid2VidGenerator

    torch.manual_seed(0)
    cfg = replace(PRESETS[preset], **overrides)
    info = BundleInfo(name=name)
    if cfg.style_dim:  # two clusters per class, so the style seed has something to pick
        info.style_clusters = {
            c: [[c + 1.0] * cfg.style_dim, [-c - 1.0] * cfg.style_dim] for c in range(cfg.num_classes)
        }
    export_bundle(Vid2VidGenerator(cfg), root / name, info)
    return root


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with "tiny": a 12-class segmentation model (uint8 labels, history 2, multiple of 4)."""
    return _export(tmp_path_factory.mktemp("models"), "tiny", "tiny")


@pytest.fixture(scope="session")
def tiny_bundle_dir(tiny_models_dir: Path) -> Path:
    """The "tiny" bundle folder itself."""
    return tiny_models_dir / "tiny"


@pytest.fixture(scope="session")
def tiny_pose_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with "tiny-pose": a POSE model (body25 convention) taking pose maps or keypoints."""
    return _export(tmp_path_factory.mktemp("models"), "tiny-pose", "tiny-pose")


@pytest.fixture(scope="session")
def tiny_style_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with "tiny-style": the tiny segmentation model with 4-wide per-class style codes."""
    return _export(tmp_path_factory.mktemp("models"), "tiny-style", "tiny", style_dim=4)


@pytest.fixture(scope="session")
def tiny_engine_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with "tiny-engine": the tiny segmentation model that also takes instances, depth and motion."""
    return _export(tmp_path_factory.mktemp("models"), "tiny-engine", "tiny-engine")
