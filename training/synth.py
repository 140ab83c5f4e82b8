"""`neurender dataset synth`: the procedural street rendered by the project's G-buffer renderer into the
paired dataset format. Deterministic from the seed: sequence i renders street_scene(seed derived from
(seed, i)), and the renderer is deterministic, so the same arguments give the same files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from neurender.engine_plugin.gbuffer.renderer import GBufferRenderer
from neurender.engine_plugin.gbuffer.scenes import STREET_CLASSES, street_scene
from neurender.training.dataset import DatasetMeta, SequenceWriter, write_meta


def sequence_seed(seed: int, index: int) -> int:
    """The scene seed of sequence `index`: independent streams per sequence, stable across runs."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def make_synth_dataset(
    out: str | Path,
    sequences: int,
    frames: int,
    size: tuple[int, int],
    seed: int = 0,
    fps: float = 10.0,
    progress: bool = True,
) -> DatasetMeta:
    """Render `sequences` street sequences of `frames` frames at size (H, W) into `out`; returns the meta.

    Each frame writes images/ (the shaded photo pass: the target footage), labels/ (class IDs), instances/,
    depth/, motion/ (exact backward motion) and flow_valid/ (where the motion's source was visible)."""
    if sequences < 1 or frames < 1:
        raise ValueError(f"need at least one sequence and one frame, got {sequences} sequences of {frames} frames")
    height, width = size
    out = Path(out)
    meta = DatasetMeta(
        "segmentation",
        STREET_CLASSES,
        fps,
        (height, width),
        {
            "source": {
                "generator": "neurender dataset synth",
                "scene": "street",
                "seed": seed,
                "sequences": sequences,
                "frames": frames,
            }
        },
    )
    with (
        GBufferRenderer(height, width) as renderer,
        tqdm(total=sequences * frames, desc="synth", unit="frame", disable=not progress) as bar,
    ):
        for s in range(sequences):
            scene = street_scene(seed=sequence_seed(seed, s), num_frames=frames, fps=fps)
            writer = SequenceWriter(out, f"street_{s:04d}")
            for frame in renderer.render_sequence(scene, photo=True):
                writer.write(
                    frame.index,
                    images=frame.photo,
                    labels=frame.classes,
                    instances=frame.instances,
                    depth=frame.depth,
                    motion=frame.motion,
                    flow_valid=frame.motion_valid.astype(np.uint8) * 255,
                )
                bar.update(1)
    write_meta(out, meta)  # last: a folder with dataset.json is complete
    return meta


__all__ = ["make_synth_dataset", "sequence_seed"]
