"""Does vid2vid beat per-frame synthesis? Train both for the same wall time, evaluate both on held-out frames.

    python -m neurender.bench.temporal_quality --minutes 20            # both tasks, 20 min of training per model
    python -m neurender.bench.temporal_quality --minutes 5 --task synth

Tasks (configs in training/configs/):
- synth: the procedural street dataset at 128x128 (10 sequences of 30 frames, the last 2 held out), tiny preset
  with the engine's passes (tiny-synth.yaml) against its per-frame baseline (tiny-synth-baseline.yaml);
- face: carphone edges to face, the first 100 frames to train, the last 20 to test (tiny-edges-face*.yaml).

Both models of a task get the same training wall time (the schedule stretches over it), are exported to
bundles and run through ONNX Runtime frame by frame. The table prints every metric side by side with the
ground truth's own E_warp, the vid2vid/baseline ratios and the issue's goals (E_warp <= 0.6x, tOF <= 0.7x,
PSNR at most 0.5 dB below, sharpness ratio >= 0.9); never read E_warp alone: blur and frozen frames score low.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "training" / "configs"
CARPHONE = Path("/work/shared/data/video/carphone_pristine.mp4")

TASKS = {
    "synth": {
        "configs": ("tiny-synth.yaml", "tiny-synth-baseline.yaml"),
        "eval": {"sequences": ("street_0008", "street_0009")},
    },
    "face": {"configs": ("tiny-edges-face.yaml", "tiny-edges-face-baseline.yaml"), "eval": {"frames": (-20, 0)}},
}
GOALS = {"e_warp": ("<=", 0.6), "tof": ("<=", 0.7)}


def make_data(task: str, root: Path, video: Path) -> Path:
    if (root / "dataset.json").exists():
        return root
    if task == "synth":
        from neurender.training.synth import make_synth_dataset

        make_synth_dataset(root, sequences=10, frames=30, size=(128, 128), seed=0)
    else:
        from neurender.training.from_video import video_to_dataset

        video_to_dataset(video, root, "edges")
    return root


def train_and_evaluate(config: Path, data: Path, work: Path, minutes: float, eval_options: dict) -> dict:
    from neurender.training.evaluate import EvalOptions, evaluate
    from neurender.training.export import export_checkpoint
    from neurender.training.run import train
    from neurender.training.train_config import load_train_config, with_changes

    cfg = load_train_config(config)
    name = cfg.name
    cfg = with_changes(
        cfg, data={"root": str(data)}, schedule={"minutes": minutes}, log={"dir": str(work / "runs" / name)}
    )
    started = time.perf_counter()
    trainer = train(cfg)
    wall = time.perf_counter() - started
    bundle = export_checkpoint(work / "runs" / name, work / "bundles" / name)
    report = evaluate(
        bundle.path,
        data,
        work / "eval" / name,
        EvalOptions(threads=1, **eval_options, notes={"training_minutes": trainer.position.elapsed / 60}),
    )
    report["training"] = {
        "minutes": trainer.position.elapsed / 60,
        "wall_minutes": wall / 60,
        "iterations": trainer.position.iteration,
        "generator_updates": trainer.position.g_steps,
        "final_phase": str(trainer.phase()),
    }
    return report


def table(task: str, vid2vid: dict, baseline: dict) -> str:
    v, b = vid2vid["overall"], baseline["overall"]
    rows = [
        f"## {task}: vid2vid vs per-frame baseline, {vid2vid['training']['minutes']:.1f} / "
        f"{baseline['training']['minutes']:.1f} min of training, evaluated on {sum(vid2vid['frames'].values())} held-out frames",
        "",
        "| metric | vid2vid | baseline | ratio | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for metric in ("e_warp", "tof", "psnr", "ssim", "sharpness_ratio"):
        ratio = v[metric] / b[metric] if b[metric] else float("nan")
        goal, met = "", ""
        if metric in GOALS:
            op, limit = GOALS[metric]
            goal, met = f"ratio {op} {limit}", "yes" if ratio <= limit else "no"
        elif metric == "psnr":
            goal, met = "diff >= -0.5 dB", "yes" if v[metric] - b[metric] >= -0.5 else "no"
            ratio = v[metric] - b[metric]
        elif metric == "sharpness_ratio":
            goal, met = "vid2vid >= 0.9", "yes" if v[metric] >= 0.9 else "no"
        shown = f"{ratio:+.2f} dB" if metric == "psnr" else f"{ratio:.3f}"
        rows.append(f"| {metric} | {v[metric]:.5f} | {b[metric]:.5f} | {shown} | {goal} | {met} |")
    rows.append(f"| e_warp of the ground truth | {v['e_warp_real']:.5f} | {b['e_warp_real']:.5f} | | | |")
    for label, r in (("vid2vid", vid2vid), ("baseline", baseline)):
        t = r["training"]
        rows.append(
            f"\n{label}: {t['iterations']} iterations, {t['generator_updates']} generator updates; "
            f"contact sheet {Path(r['bundle']).parents[1] / 'eval' / Path(r['bundle']).name / 'contact_sheet.png'}"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="training wall time per model (default 20)")
    parser.add_argument("--task", choices=("synth", "face", "both"), default="both")
    parser.add_argument(
        "--work", default=str(REPO / "runs" / "bench-temporal"), help="datasets, runs, bundles, reports"
    )
    parser.add_argument("--video", default=str(CARPHONE), help="the carphone clip for the face task")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    tasks = ("synth", "face") if args.task == "both" else (args.task,)
    summary = {}
    for task in tasks:
        data = make_data(task, work / "data" / task, Path(args.video))
        vid2vid_cfg, baseline_cfg = (CONFIGS / name for name in TASKS[task]["configs"])
        reports = [
            train_and_evaluate(c, data, work / task, args.minutes, TASKS[task]["eval"])
            for c in (vid2vid_cfg, baseline_cfg)
        ]
        summary[task] = {"vid2vid": reports[0], "baseline": reports[1]}
        print(table(task, *reports), flush=True)
        print()
    (work / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"reports: {work / 'summary.json'}")


if __name__ == "__main__":
    main()
