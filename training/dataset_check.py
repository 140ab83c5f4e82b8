"""The dataset validator: reads every file of a dataset folder and names every problem it finds."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from neurender.training.dataset import (
    FOLDERS,
    INPUT_FOLDER,
    DatasetError,
    DatasetMeta,
    Sequence,
    frame_name,
    parse_meta,
    read_file,
    sequence_dirs,
)

FRAME_FILE = re.compile(r"^(\d{6})\.[A-Za-z]+$")


def check_dataset(root: str | Path, progress: bool = False) -> list[str]:
    """Every problem of the dataset at `root`, one sentence each naming the file; an empty list if it is valid.

    Checks dataset.json (present, parseable, every field), the sequence folders (images/ and the modality's
    input folder present, frames numbered 000000 upward without gaps, every folder holding the same frames),
    and every file (readable, the folder's dtype and shape, the dataset's frame size, class IDs in the table).
    """
    root = Path(root)
    if not root.is_dir():
        return [f"{root}: not a directory"]
    meta, problems = _check_meta(root)
    dirs = sequence_dirs(root)
    if not dirs:
        return problems + [f"{root}: no sequence folders (expected one folder per sequence beside dataset.json)"]
    files = [(s, folder, i) for s, folder, i in _frames(dirs, meta, problems)]
    for sequence, folder, index in tqdm(files, desc="checking", unit="file", disable=not progress):
        problems += _check_file(sequence, folder, index, meta)
    return problems


def _check_meta(root: Path) -> tuple[DatasetMeta | None, list[str]]:
    path = root / "dataset.json"
    if not path.exists():
        return None, [f"{path}: missing; every dataset needs a dataset.json (docs/dataset_format.md)"]
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, [f"{path}: not valid JSON ({err})"]
    return parse_meta(d)


def _frames(dirs: list[Path], meta: DatasetMeta | None, problems: list[str]) -> Iterator[tuple[Sequence, str, int]]:
    """The (sequence, folder, frame) files to read; layout problems go into `problems`."""
    for d in dirs:
        sequence = Sequence(d)
        unknown = sorted(p.name for p in d.iterdir() if p.is_dir() and p.name not in FOLDERS)
        if unknown:
            problems.append(f"{d}: unknown folder(s) {unknown}; known: {', '.join(FOLDERS)}")
        required = ["images"] + ([INPUT_FOLDER[meta.modality]] if meta else [])
        for folder in required:
            if not sequence.files.get(folder):
                problems.append(
                    f"{d}: no {folder}/ frames ({f'a {meta.modality} dataset' if meta else 'every dataset'} needs {' and '.join(required)})"
                )
        for folder, paths in sequence.files.items():
            stray = sorted(
                p.name
                for p in (d / folder).iterdir()
                if not FRAME_FILE.match(p.name) or p.suffix.lower() not in FOLDERS[folder]
            )
            if stray:
                problems.append(
                    f"{d / folder}: file(s) {stray[:5]}{' ...' if len(stray) > 5 else ''} are not frames "
                    f"(expected NNNNNN{'|'.join(FOLDERS[folder])})"
                )
            numbers = sorted({int(FRAME_FILE.match(p.name).group(1)) for p in paths if FRAME_FILE.match(p.name)})
            expected = range(sequence.length) if folder != "images" and sequence.length else range(len(numbers))
            missing = sorted(set(expected) - set(numbers))
            extra = sorted(set(numbers) - set(expected))
            if missing:
                problems.append(
                    f"{d / folder}: missing frame(s) {_ranges(missing)}"
                    + (
                        f" (images/ has {sequence.length})"
                        if folder != "images"
                        else " (frames must be numbered from 000000 without gaps)"
                    )
                )
            if extra and folder != "images":
                problems.append(
                    f"{d / folder}: frame(s) {_ranges(extra)} have no image (images/ has {sequence.length})"
                )
            for n in numbers:
                if n in expected:
                    yield sequence, folder, n


def _check_file(sequence: Sequence, folder: str, index: int, meta: DatasetMeta | None) -> list[str]:
    try:
        path = sequence.path(folder, index)
        array = read_file(folder, path)
    except DatasetError as err:
        return [str(err)]
    where = f"{sequence.directory / folder / frame_name(index)}"
    if folder == "poses":
        return [] if meta is None else _check_pose(array, meta, where)
    expected = {
        "images": ((3,), (np.uint8,)),
        "labels": ((), (np.uint8, np.uint16)),
        "edges": ((), (np.uint8,)),
        "instances": ((), (np.uint16,)),
        "flow_valid": ((), (np.uint8,)),
        "depth": ((), (np.float16,)),
        "motion": ((2,), (np.float16,)),
        "flow": ((2,), (np.float16,)),
    }[folder]
    problems = []
    channels, dtypes = expected
    if array.dtype not in dtypes:
        problems.append(f"{where}: dtype {array.dtype}, expected {' or '.join(np.dtype(t).name for t in dtypes)}")
    if array.ndim != 2 + len(channels) or array.shape[2:] != channels:
        problems.append(f"{where}: shape {array.shape}, expected [H, W{''.join(f', {c}' for c in channels)}]")
        return problems
    if meta is not None and array.shape[:2] != meta.size:
        problems.append(
            f"{where}: size {array.shape[0]}x{array.shape[1]} (HxW), dataset.json says {meta.size[0]}x{meta.size[1]}"
        )
    if folder == "labels" and meta is not None and meta.classes:
        unknown = sorted(set(np.unique(array).tolist()) - meta.class_ids)
        if unknown:
            problems.append(
                f"{where}: class ID(s) {unknown[:10]} not in dataset.json's classes {sorted(meta.class_ids)}"
            )
    if folder in ("motion", "flow") and not np.isfinite(array).all():
        problems.append(f"{where}: non-finite {folder} values")
    if folder == "depth" and (np.isnan(array).any() or (array < 0).any()):
        problems.append(f"{where}: depth must be >= 0 or inf (no surface), found NaN or negative values")
    return problems


def _check_pose(keypoints: np.ndarray, meta: DatasetMeta, where: str) -> list[str]:
    height, width = meta.size
    if keypoints.size == 0:
        return []
    x, y, confidence = keypoints[..., 0], keypoints[..., 1], keypoints[..., 2]
    seen = confidence > 0
    if ((x[seen] < -width) | (x[seen] > 2 * width) | (y[seen] < -height) | (y[seen] > 2 * height)).any():
        return [f"{where}: keypoints far outside the {height}x{width} frame; poses/ holds pixel coordinates"]
    return []


def _ranges(numbers: list[int]) -> str:
    """[0, 1, 2, 5] -> '000000-000002, 000005'."""
    out, start = [], numbers[0]
    for prev, n in zip(numbers, numbers[1:] + [None]):
        if n != prev + 1:
            out.append(frame_name(start) if start == prev else f"{frame_name(start)}-{frame_name(prev)}")
            start = n
    return ", ".join(out[:8]) + (" ..." if len(out) > 8 else "")


__all__ = ["check_dataset"]
