"""CLI: `neurender train`, `neurender export`, `neurender evaluate` (heavy imports inside the handlers)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a vid2vid generator (or the per-frame baseline) from a YAML config",
        description="Train from a recipe shipped with neurender (`neurender recipes` lists them) or a YAML config "
        "file. Writes checkpoint.pt, config.yaml, samples/ (labels | output | real at every phase change "
        "and at the end) and tensorboard/ into the run folder, and never into one that already holds a "
        "run unless --resume. Under torchrun every process runs this command; DDP uses NCCL on GPUs and "
        "gloo on CPUs.",
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="RECIPE|FILE",
        help="a recipe name (e.g. tiny-synth, demo; see `neurender recipes`) or a training config YAML",
    )
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (default: the config's log.dir, e.g. runs/tiny-synth)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.OPTION=VALUE",
        help="override a config option, e.g. --set schedule.epochs=4 (repeatable)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CHECKPOINT",
        help="continue from the run folder's checkpoint.pt (or the given checkpoint)",
    )
    p.add_argument("--baseline", action="store_true", help="train the per-frame baseline of the config's generator")
    p.add_argument("--minutes", type=float, help="wall-time budget; the schedule stretches over it")
    p.add_argument(
        "--max-steps", type=int, help="stop after this many iterations (with --minutes: whichever ends first)"
    )
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, help="torch CPU threads per process (1 is fastest on a busy machine)")
    p.set_defaults(handler=_train)

    p = subparsers.add_parser(
        "recipes",
        help="list the training recipes shipped with neurender",
        description="The training configs shipped in the package: `neurender train --config NAME` "
        "takes any of these names; each line shows the commands its file gives.",
    )
    p.set_defaults(handler=_recipes)

    p = subparsers.add_parser(
        "export",
        help="write a model bundle from a training checkpoint (EMA weights)",
        description="Export a checkpoint (checkpoint.pt or its run folder) as a model bundle: "
        "generator.onnx, model.json (class table, style clusters) and generator.pt.",
    )
    p.add_argument("checkpoint", help="checkpoint.pt or a run folder")
    p.add_argument("--out", required=True, type=Path, help="bundle folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace a bundle already in --out")
    p.add_argument("--name", help="model name clients ask for (default: the --out folder's name)")
    p.add_argument("--raw-weights", action="store_true", help="export the raw weights instead of the EMA")
    p.add_argument("--clusters", type=int, default=10, help="style clusters per class (style models)")
    p.add_argument("--data", help="dataset for the style clusters (default: the one trained on)")
    p.add_argument("--no-torch", action="store_true", help="leave generator.pt out of the bundle")
    p.set_defaults(handler=_export)

    p = subparsers.add_parser(
        "evaluate",
        help="score a bundle on a dataset (PSNR, SSIM, E_warp, tOF, sharpness)",
        description="Run BUNDLE through ONNX Runtime frame by frame on DATASET and write "
        "report.json and contact_sheet.png. LPIPS and FID only with TorchScript "
        "backbones you supply; nothing is downloaded.",
    )
    p.add_argument("bundle")
    p.add_argument("dataset")
    p.add_argument("--out", type=Path, default=Path("eval"), help="output folder (default: eval)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier report in --out")
    p.add_argument(
        "--baseline",
        metavar="BUNDLE",
        help="also score this bundle (e.g. the per-frame baseline) on the same "
        "frames and print both side by side (its report goes to OUT/baseline/)",
    )
    p.add_argument("--sequences", nargs="*", default=[], help="only these sequences")
    p.add_argument("--exclude", nargs="*", default=[], help="leave these sequences out")
    p.add_argument(
        "--frames", help="frame range FIRST:END of every sequence (negative counts from the end; END 0 = the end)"
    )
    # `--frames -20:0` is a value, not an option: argparse only takes plain negative numbers for values.
    p._negative_number_matcher = re.compile(r"^-\d+(:-?\d+)?$|^-\d*\.\d+$")
    p.add_argument("--max-frames", type=int, help="at most this many frames per sequence")
    p.add_argument("--lpips", help="TorchScript LPIPS: (x, y) in [-1,1] -> distances")
    p.add_argument("--fid", help="TorchScript FID backbone: images in [0,1] -> [N, D] features")
    p.add_argument("--threads", type=int, help="ONNX Runtime threads")
    p.set_defaults(handler=_evaluate)


def _train(args: argparse.Namespace) -> int:
    import torch

    from neurender.common.errors import UserError
    from neurender.training.recipes import data_command, recipe_path
    from neurender.training.run import check_data_root, train
    from neurender.training.train_config import load_train_config, with_changes

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.max_steps is not None and args.max_steps < 1:
        raise UserError(f"--max-steps {args.max_steps}: expected at least 1")
    path = recipe_path(args.config)
    try:
        cfg = load_train_config(path, args.set)
        if args.baseline:
            cfg = with_changes(cfg, baseline=True)
        if args.minutes is not None:
            cfg = with_changes(cfg, schedule={"minutes": args.minutes})
        if args.max_steps is not None:
            cfg = with_changes(cfg, schedule={"max_steps": args.max_steps})
        if args.out:
            cfg = with_changes(cfg, log={"dir": args.out})
    except (OSError, ValueError, TypeError) as err:
        raise UserError(str(err)) from None
    recipe_data = data_command(path)
    check_data_root(cfg, recipe_data if recipe_data and f"--out {cfg.data.root} " in recipe_data + " " else None)
    try:
        trainer = train(cfg, resume=args.resume, device=args.device)
    except (FileNotFoundError, ValueError) as err:  # data or config that cannot be trained on (DatasetError too)
        raise UserError(str(err)) from None
    if trainer.dist.is_main:
        print(
            f"trained {cfg.name}: {trainer.position.iteration} iterations, {trainer.position.g_steps} generator updates, "
            f"{trainer.position.elapsed / 60:.1f} min; checkpoint in {cfg.log.dir}"
        )
    return 0


def _recipes(args: argparse.Namespace) -> int:
    from neurender.training.recipes import recipes

    for recipe in recipes():
        print(f"{recipe.name:28s} {recipe.summary}")
        for command in recipe.commands:
            print(f"{'':30s}{command}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from neurender.common.errors import UserError
    from neurender.common.outputs import prepare_output
    from neurender.proto.bundle import MODEL_JSON
    from neurender.training.export import export_checkpoint

    name = args.name or args.out.resolve().name
    prepare_output(args.out, ("generator.onnx", MODEL_JSON, "generator.pt"), args.overwrite)
    try:
        bundle = export_checkpoint(
            args.checkpoint,
            args.out,
            name=name,
            use_ema=not args.raw_weights,
            n_clusters=args.clusters,
            data_root=args.data,
            include_torch=not args.no_torch,
        )
    except (FileNotFoundError, ValueError) as err:
        raise UserError(str(err)) from None
    size = bundle.onnx_path.stat().st_size / 1e6
    print(
        f"wrote {bundle.path}: model {bundle.description.name!r} (clients ask for this name), generator.onnx {size:.1f} MB"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from neurender.common.errors import UserError
    from neurender.common.outputs import prepare_output
    from neurender.training.evaluate import OWNED, SHEET_COLUMNS, EvalOptions, evaluate

    frames = None
    if args.frames:
        try:
            first, end = (int(v) for v in args.frames.split(":"))
        except ValueError:
            raise UserError(f"--frames {args.frames!r}: expected FIRST:END, e.g. 100:120 or -20:0") from None
        frames = (first, end)
    options = EvalOptions(
        sequences=tuple(args.sequences),
        exclude=tuple(args.exclude),
        frames=frames,
        max_frames=args.max_frames,
        lpips=args.lpips,
        fid=args.fid,
        threads=args.threads,
    )
    prepare_output(args.out, OWNED + (("baseline",) if args.baseline else ()), args.overwrite)
    try:
        report = evaluate(args.bundle, args.dataset, args.out, options)
        baseline = evaluate(args.baseline, args.dataset, args.out / "baseline", options) if args.baseline else None
    except (FileNotFoundError, ValueError) as err:  # BundleError and DatasetError are ValueErrors
        raise UserError(str(err)) from None
    print(evaluation_table(report, baseline))
    print(
        f"report: {args.out / 'report.json'}; contact sheet: {args.out / 'contact_sheet.png'} "
        f"(columns: {' | '.join(SHEET_COLUMNS)})"
    )
    return 0


READING = {  # metric -> (label, which way is better)
    "psnr": ("PSNR dB", "higher"),
    "ssim": ("SSIM", "higher"),
    "e_warp": ("E_warp", "lower; the ground truth's own is the floor"),
    "tof": ("tOF px", "lower"),
    "sharpness_ratio": ("sharpness / real", "1 is the real frames'"),
    "lpips": ("LPIPS", "lower"),
    "fid": ("FID", "lower"),
}


def evaluation_table(report: dict, baseline: dict | None = None) -> str:
    """The overall figures as a small table: this bundle, the baseline's, and the ground truth's own E_warp."""
    overall = report["overall"]
    heads = (
        ["metric", report["model"]]
        + ([f"{baseline['model']} (baseline)"] if baseline else [])
        + ["ground truth", "better"]
    )
    rows = [heads]
    for key, (label, better) in READING.items():
        if key not in overall:
            continue
        truth = f"{overall['e_warp_real']:.5f}" if key == "e_warp" else ("1" if key == "sharpness_ratio" else "")
        row = [label, f"{overall[key]:.5g}"] + (
            [f"{baseline['overall'].get(key, float('nan')):.5g}"] if baseline else []
        )
        rows.append(row + [truth, better])
    widths = [max(len(r[i]) for r in rows) for i in range(len(heads))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
