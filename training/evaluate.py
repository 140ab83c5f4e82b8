"""`neurender evaluate BUNDLE DATASET`: run a bundle through ONNX Runtime over held-out sequences and score it.

Writes a JSON report (every metric, per sequence and overall, with the ground truth's own E_warp beside the
model's) and a contact sheet PNG (labels | output | real for a few frames of a few sequences).
LPIPS and FID need backbone weights that are never downloaded: pass TorchScript files (see `learned_metrics`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from neurender.common.errors import UserError
from neurender.common.media import contact_sheet
from neurender.proto.bundle import check_frame_size, read_bundle
from neurender.proto.neurender.v1 import model_pb2
from neurender.server.step_runner import SessionRunner
from neurender.training.dataset import DatasetError, VideoDataset, open_dataset
from neurender.training.metrics import sequence_metrics
from neurender.training.subset import select
from neurender.training.summaries import palette

log = logging.getLogger(__name__)

METRICS = ("psnr", "ssim", "e_warp", "e_warp_real", "tof", "sharpness_ratio", "sharpness_output", "sharpness_real")


@dataclass
class EvalOptions:
    sequences: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    frames: tuple[int, int] | None = None
    max_frames: int | None = None
    lpips: str | None = None  # TorchScript: (x, y) in [-1, 1], [N, 3, H, W] -> [N] or [N, 1, 1, 1] distances
    fid: str | None = None  # TorchScript: [N, 3, H, W] in [0, 1] -> [N, D] features
    threads: int | None = None
    sheet_sequences: int = 4
    sheet_frames: int = 4
    notes: dict[str, Any] = field(default_factory=dict)


def _label_image(label_name: str, label: np.ndarray, colours: np.ndarray) -> np.ndarray:
    if label_name == "labels":
        return colours[np.clip(label.astype(np.int64), 0, len(colours) - 1)]
    if label.ndim == 2:
        return np.repeat(label[..., None], 3, axis=2).astype(np.uint8)
    return label.astype(np.uint8)


def _frame_inputs(
    runner: SessionRunner, frame: dict[str, np.ndarray], top: int, left: int, h: int, w: int
) -> dict[str, Any]:
    """The frame's label input and the passes the model takes, centre-cropped, as a client would send them."""
    crop = lambda a: None if a is None else a[top : top + h, left : left + w]  # noqa: E731
    model = runner.spec.model
    d = model.description
    if model.label_input == "labels":
        label = frame["labels"]
    elif model.label_input == "edges":
        label = frame["edges"]
    else:
        from neurender.retarget.draw import draw_pose_map

        full = frame["image"].shape[:2]
        label = draw_pose_map(frame["pose"], full[0], full[1], d.pose)
    inputs = {model.label_input: crop(label)}
    for spec in model.optional_inputs:
        if frame.get(spec.name) is None:
            raise DatasetError(f"bundle {model.name} takes {spec.name!r} frames, the dataset has none")
        inputs[spec.name] = crop(frame[spec.name])
    return inputs


class FrameSizeError(UserError, ValueError):
    """The dataset's frames are a size the bundle cannot render; the message names both and the rule."""


def cropped_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """Evaluation centre-crops frames to the largest size whose sides are multiples of the bundle's rule."""
    return (height // multiple) * multiple, (width // multiple) * multiple


def evaluated_size(description: model_pb2.ModelDescription, bundle: str | Path, data: VideoDataset) -> tuple[int, int]:
    """The (centre-cropped) frame size the dataset is scored at; refused, before any frame runs, if the bundle's
    frame-size rule refuses it."""
    H, W = data.meta.size
    h, w = cropped_size(H, W, max(1, description.frame_size.multiple_of))
    problem = check_frame_size(description, h, w)
    if problem:
        crop = f" (centre-cropped to {h}x{w})" if (h, w) != (H, W) else ""
        raise FrameSizeError(f"{data.root}: frames {H}x{W}{crop} cannot be rendered by bundle {bundle}: {problem}")
    return h, w


def run_sequence(runner: SessionRunner, sequence: Any, max_frames: int | None) -> dict[str, list]:
    """Outputs, targets, labels, ground-truth backward flows and flow_valid masks of one sequence."""
    n = len(sequence) if max_frames is None else min(len(sequence), max_frames)
    first = sequence.frame(0)
    H, W = first["image"].shape[:2]
    h, w = runner.spec.height, runner.spec.width
    top, left = (H - h) // 2, (W - w) // 2
    runner.reset()
    result: dict[str, list] = {"outputs": [], "targets": [], "labels": [], "backward": [], "valid": []}
    for i in range(n):
        frame = sequence.frame(i)
        inputs = _frame_inputs(runner, frame, top, left, h, w)
        result["outputs"].append(runner.step(**inputs))
        result["targets"].append(np.ascontiguousarray(frame["image"][top : top + h, left : left + w]))
        result["labels"].append(inputs[runner.spec.model.label_input])
        flow = frame.get("motion", frame.get("flow"))
        result["backward"].append(None if flow is None else flow[top : top + h, left : left + w].astype(np.float32))
        valid = frame.get("flow_valid")
        result["valid"].append(None if valid is None else valid[top : top + h, left : left + w])
    return result


def learned_metrics(
    outputs: list[np.ndarray], targets: list[np.ndarray], lpips_path: str | None, fid_path: str | None
) -> dict[str, float]:
    """LPIPS / FID with user-supplied TorchScript backbones; nothing is downloaded, absent files mean absent metrics."""
    if not lpips_path and not fid_path:
        return {}
    import torch

    def batch(images: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0

    out = {}
    x, y = batch(outputs), batch(targets)
    with torch.no_grad():
        if lpips_path:
            model = torch.jit.load(lpips_path, map_location="cpu").eval()
            out["lpips"] = float(model(x * 2 - 1, y * 2 - 1).float().mean())
        if fid_path:
            from scipy import linalg

            model = torch.jit.load(fid_path, map_location="cpu").eval()
            fx, fy = model(x).double().numpy(), model(y).double().numpy()
            mu1, mu2 = fx.mean(0), fy.mean(0)
            s1, s2 = np.cov(fx, rowvar=False), np.cov(fy, rowvar=False)
            covmean = linalg.sqrtm(s1 @ s2).real
            out["fid"] = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
    return out


SHEET_COLUMNS = ("labels", "output", "ground truth")  # the contact sheet's columns, captioned on its first row
OWNED = ("report.json", "contact_sheet.png")


def evaluate(
    bundle: str | Path, dataset: str | Path | VideoDataset, out_dir: str | Path, options: EvalOptions | None = None
) -> dict[str, Any]:
    """Score `bundle` on `dataset` and write report.json and contact_sheet.png into `out_dir`."""
    options = options or EvalOptions()
    description = read_bundle(bundle).description
    data = dataset if isinstance(dataset, VideoDataset) else open_dataset(dataset)
    data = select(data, options.sequences, options.exclude, options.frames)
    expected = {model_pb2.SEGMENTATION: "segmentation", model_pb2.POSE: "pose", model_pb2.EDGES: "edges"}[
        description.modality
    ]
    if data.meta.modality != expected:
        raise DatasetError(f"the dataset's modality is {data.meta.modality}, the bundle's is {expected}")
    height, width = evaluated_size(description, bundle, data)
    runner = SessionRunner.open(bundle, height, width, threads=options.threads or 0)
    label_name = runner.spec.model.label_input
    num_classes = max((c.id for c in description.classes), default=0) + 1
    colours = palette([(c.id, tuple(c.color)) for c in data.meta.classes], max(num_classes, data.meta.num_classes, 1))
    per_sequence: dict[str, dict[str, float]] = {}
    all_outputs: list[np.ndarray] = []
    all_targets: list[np.ndarray] = []
    rows: list[list[np.ndarray]] = []
    frame_counts: dict[str, int] = {}
    for k, sequence in enumerate(data.sequences):
        r = run_sequence(runner, sequence, options.max_frames)
        per_sequence[sequence.name] = sequence_metrics(r["outputs"], r["targets"], r["backward"], r["valid"])
        frame_counts[sequence.name] = len(r["outputs"])
        all_outputs += r["outputs"]
        all_targets += r["targets"]
        if k < options.sheet_sequences:
            n = len(r["outputs"])
            picks = sorted({round(i * (n - 1) / max(options.sheet_frames - 1, 1)) for i in range(options.sheet_frames)})
            for i in picks:
                rows.append([_label_image(label_name, r["labels"][i], colours), r["outputs"][i], r["targets"][i]])
        log.info("%s: %s", sequence.name, {m: round(v, 4) for m, v in per_sequence[sequence.name].items()})
    weights = np.array([frame_counts[s] for s in per_sequence], np.float64)
    overall = {m: float(np.average([per_sequence[s][m] for s in per_sequence], weights=weights)) for m in METRICS}
    overall["sharpness_ratio"] = overall["sharpness_output"] / max(overall["sharpness_real"], 1e-12)
    overall.update(learned_metrics(all_outputs, all_targets, options.lpips, options.fid))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "bundle": str(bundle),
        "model": description.name,
        "dataset": str(data.root),
        "sequences": list(per_sequence),
        "frames": frame_counts,
        "overall": overall,
        "per_sequence": per_sequence,
        "learned_metrics": {
            "lpips": "computed"
            if options.lpips
            else "off: no LPIPS TorchScript file given (--lpips); nothing is downloaded",
            "fid": "computed"
            if options.fid
            else "off: no FID backbone TorchScript file given (--fid); nothing is downloaded",
        },
        "definitions": {
            "e_warp": "Lai et al. 2018: mean squared RGB difference (0-1) between frame t and frame t-1 warped by the ground-truth backward flow, over non-occluded pixels (forward-backward check with DIS forward flow on the ground truth, and flow_valid)",
            "e_warp_real": "the same on the ground-truth frames",
            "tof": "mean per-pixel L1 distance (pixels) between DIS flow of consecutive output frames and of consecutive real frames",
            "sharpness_ratio": "mean luma gradient magnitude of the output over that of the real frames",
        },
        **options.notes,
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if rows:
        captions = [[f"{SHEET_COLUMNS[0]} ({data.sequences[0].name})", *SHEET_COLUMNS[1:]]]
        cv2.imwrite(str(out_dir / "contact_sheet.png"), cv2.cvtColor(contact_sheet(rows, captions), cv2.COLOR_RGB2BGR))
    return report
