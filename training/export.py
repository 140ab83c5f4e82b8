"""A training checkpoint -> a model bundle: the EMA generator, the class table and the style clusters."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from neurender.proto.bundle import Bundle
from neurender.proto.classes import ClassInfo
from neurender.training.checkpoint import load_checkpoint
from neurender.training.dataset import VideoDataset, open_dataset, pose_convention_from_dict
from neurender.training.model.bundle_export import BundleInfo, export_bundle
from neurender.training.model.encoding import frames_to_float
from neurender.training.model.feature_encoder import region_vectors
from neurender.training.models import Synthesis, build_synthesis
from neurender.training.subset import select
from neurender.training.train_config import TrainConfig, train_config_from_dict

log = logging.getLogger(__name__)


def synthesis_from_checkpoint(state: dict, use_ema: bool = True) -> tuple[TrainConfig, Synthesis]:
    cfg = train_config_from_dict(state["config"])
    synthesis = build_synthesis(cfg)
    weights = state["ema"] if use_ema and state.get("ema") is not None else state["synthesis"]
    synthesis.load_state_dict(weights)
    return cfg, synthesis.eval()


def class_table(classes: list[tuple[int, str, list[int]]], num_classes: int) -> list[ClassInfo]:
    """The dataset's classes, with placeholder rows for IDs the generator has but the dataset never uses."""
    by_id = {c[0]: ClassInfo(c[0], c[1], tuple(c[2])) for c in classes}
    return [by_id.get(i, ClassInfo(i, f"unused_{i}", (0, 0, 0))) for i in range(num_classes)]


@torch.no_grad()
def style_clusters(
    synthesis: Synthesis, cfg: TrainConfig, dataset: VideoDataset, n_clusters: int, max_frames: int = 200, seed: int = 0
) -> dict[int, list[list[float]]]:
    """Per class, k-means centres of the feature encoder's region-pooled vectors over real frames."""
    from scipy.cluster.vq import kmeans2

    encoder = synthesis.encoder
    assert encoder is not None
    m = encoder.multiple_of
    vectors: dict[int, list[np.ndarray]] = {}
    frames = [(s, i) for s in dataset.sequences for i in range(len(s))]
    step = max(1, len(frames) // max_frames)
    for sequence, index in frames[::step][:max_frames]:
        f = sequence.frame(index)
        h, w = (f["image"].shape[0] // m) * m, (f["image"].shape[1] // m) * m
        image = frames_to_float(torch.from_numpy(f["image"][:h, :w]).unsqueeze(0))
        labels = torch.from_numpy(f["labels"][:h, :w].astype(np.int64))
        use_instances = cfg.encoder.pool == "instance" and "instances" in f
        regions = torch.from_numpy(f["instances"][:h, :w].astype(np.int64)) if use_instances else labels
        pooled = encoder(image, regions.unsqueeze(0))[0]
        for cls, vector in region_vectors(pooled, regions, labels):
            vectors.setdefault(cls, []).append(vector.numpy())
    clusters = {}
    rng = np.random.default_rng(seed)
    for cls, vs in sorted(vectors.items()):
        data = np.stack(vs).astype(np.float64)
        k = min(n_clusters, len(np.unique(data.round(6), axis=0)))
        if k <= 1:
            centres = data.mean(axis=0, keepdims=True)
        else:
            centres, _ = kmeans2(data, k, minit="++", seed=rng)
        clusters[cls] = centres.astype(np.float32).tolist()
    return clusters


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    name: str | None = None,
    use_ema: bool = True,
    n_clusters: int = 10,
    data_root: str | None = None,
    include_torch: bool = True,
) -> Bundle:
    """Write the bundle of a checkpoint (a checkpoint.pt or a run folder)."""
    state = load_checkpoint(checkpoint)
    cfg, synthesis = synthesis_from_checkpoint(state, use_ema)
    generator = synthesis.generator
    model = cfg.model
    info = BundleInfo(
        name=name or cfg.name,
        classes=class_table(state["classes"], model.num_classes) if model.modality == "segmentation" else [],
        description=f"vid2vid {'per-frame baseline' if cfg.baseline else 'sequential generator'} trained by neurender",
        provenance={
            "training_config": cfg.name,
            "dataset": state.get("dataset_root", ""),
            "iterations": str(state["position"]["iteration"]),
            "weights": "ema" if use_ema and state.get("ema") is not None else "raw",
        },
    )
    if state.get("pose_convention"):  # the convention the training data's keypoints were drawn in
        info.pose = pose_convention_from_dict(state["pose_convention"])
    info.trained_size = tuple(state["data_size"])  # the frames it was trained on (crops of them keep their scale)
    if model.style_dim:
        root = data_root or state.get("dataset_root") or cfg.data.root
        dataset = select(open_dataset(root), cfg.data.sequences, cfg.data.holdout, cfg.data.frames)
        info.style_clusters = style_clusters(synthesis, cfg, dataset, n_clusters, seed=cfg.seed)
        log.info("style clusters for %d classes from %s", len(info.style_clusters), root)
    return export_bundle(generator, out, info, include_torch=include_torch)
