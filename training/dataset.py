"""The paired video dataset format: reader, writer and the clip loader the trainer samples from.

Layout (docs/dataset_format.md is the full description)::

    ROOT/dataset.json            {"format": "neurender-dataset", "version": 1, "modality": ...,
                                  "classes": [{"id", "name", "color"}], "fps": ..., "size": [H, W],
                                  optional "pose_convention": {"skeleton", "face", "hands", "limb_width"}}
    ROOT/<sequence>/images/000000.png|jpg     target footage, RGB uint8          (always)
    ROOT/<sequence>/labels/000000.png         class IDs, uint8 or uint16         (segmentation)
    ROOT/<sequence>/edges/000000.png          edge map, uint8                    (edges)
    ROOT/<sequence>/poses/000000.json         keypoints in pixels                (pose)
    ROOT/<sequence>/instances/000000.png      instance IDs, uint16               (optional)
    ROOT/<sequence>/depth/000000.npy          view depth, float16 [H, W], inf = no surface (optional)
    ROOT/<sequence>/motion/000000.npy         exact backward motion, float16 [H, W, 2], px (optional)
    ROOT/<sequence>/flow/000000.npy           estimated backward optical flow, float16 [H, W, 2] (optional)
    ROOT/<sequence>/flow_valid/000000.png     255 where motion/flow is trustworthy, 0 occluded (optional)

Backward motion and flow follow the protocol: pixel p of frame t came from p + v in frame t-1, x then y,
rows top to bottom. Frame 0 has no previous frame; its motion/flow is zero and flow_valid is 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from neurender.common.errors import UserError
from neurender.proto.bundle import MODALITIES as proto_modalities
from neurender.proto.classes import ClassInfo
from neurender.proto.neurender.v1 import model_pb2
from neurender.retarget.draw import pose_layout

FORMAT_NAME = "neurender-dataset"
FORMAT_VERSION = 1
MODALITIES = tuple(proto_modalities)
# The folder holding each modality's generator input.
INPUT_FOLDER = {"segmentation": "labels", "edges": "edges", "pose": "poses"}
# Every folder a sequence may hold -> the file extensions it accepts (the first is what the writer uses).
FOLDERS: dict[str, tuple[str, ...]] = {
    "images": (".png", ".jpg", ".jpeg"),
    "labels": (".png",),
    "edges": (".png",),
    "poses": (".json",),
    "instances": (".png",),
    "depth": (".npy",),
    "motion": (".npy",),
    "flow": (".npy",),
    "flow_valid": (".png",),
}
# Folder -> key in the dict that `Sequence.frame` returns.
FRAME_KEYS = {
    "images": "image",
    "labels": "labels",
    "edges": "edges",
    "poses": "pose",
    "instances": "instances",
    "depth": "depth",
    "motion": "motion",
    "flow": "flow",
    "flow_valid": "flow_valid",
}
# How a pose dataset's keypoints are drawn into the generator's pose maps when dataset.json does not say.
DEFAULT_POSE_CONVENTION = {"skeleton": "body25", "face": False, "hands": False, "limb_width": 3}
MAX_PEOPLE = 8  # ClipDataset pads pose keypoints to this many people so clips stack into batches


def frame_name(index: int) -> str:
    """The file stem of frame `index`: zero-padded to six digits."""
    return f"{index:06d}"


@dataclass(frozen=True)
class DatasetMeta:
    """dataset.json: what the inputs are, the class table, the frame rate and the frame size (H, W)."""

    modality: str
    classes: tuple[ClassInfo, ...]
    fps: float
    size: tuple[int, int]
    extra: dict[str, Any] = field(default_factory=dict)  # provenance etc., kept verbatim

    @property
    def class_ids(self) -> frozenset[int]:
        return frozenset(c.id for c in self.classes)

    @property
    def num_classes(self) -> int:
        """One more than the largest class ID: the generator's num_classes must be at least this."""
        return max((c.id for c in self.classes), default=-1) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "modality": self.modality,
            "classes": [c.to_dict() for c in self.classes],
            "fps": self.fps,
            "size": list(self.size),
            **self.extra,
        }


class DatasetError(UserError, ValueError):
    """A dataset that cannot be read; the message names the file and what was expected."""


def parse_meta(d: Any) -> tuple[DatasetMeta | None, list[str]]:
    """dataset.json's content -> (meta, problems). meta is None when a problem makes it unusable."""
    if not isinstance(d, dict):
        return None, [f"dataset.json: expected a JSON object, got {type(d).__name__}"]
    problems = []
    if d.get("format", FORMAT_NAME) != FORMAT_NAME:
        problems.append(f"dataset.json: format is {d.get('format')!r}, expected {FORMAT_NAME!r}")
    if d.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        problems.append(f"dataset.json: version is {d.get('version')!r}, expected {FORMAT_VERSION}")
    modality = d.get("modality")
    if modality not in MODALITIES:
        problems.append(f"dataset.json: modality is {modality!r}, expected one of {', '.join(MODALITIES)}")
    fps = d.get("fps")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or fps <= 0:
        problems.append(f"dataset.json: fps is {fps!r}, expected a positive number")
    size = d.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        problems.append(f"dataset.json: size is {size!r}, expected [height, width] as positive integers")
    classes: list[ClassInfo] = []
    raw_classes = d.get("classes")
    if not isinstance(raw_classes, list):
        problems.append(f"dataset.json: classes is {raw_classes!r}, expected a list of {{id, name, color}}")
        raw_classes = []
    elif modality == "segmentation" and not raw_classes:
        problems.append("dataset.json: classes is empty; a segmentation dataset needs its class table")
    for n, c in enumerate(raw_classes):
        ok = (
            isinstance(c, dict)
            and isinstance(c.get("id"), int)
            and c["id"] >= 0
            and isinstance(c.get("name"), str)
            and isinstance(c.get("color"), list)
            and len(c["color"]) == 3
            and all(isinstance(v, int) and 0 <= v <= 255 for v in c["color"])
        )
        if not ok:
            problems.append(
                f'dataset.json: classes[{n}] is {c!r}, expected {{"id": int >= 0, "name": str, '
                f'"color": [r, g, b] in 0-255}}'
            )
            continue
        classes.append(ClassInfo.from_dict(c))
    ids = [c.id for c in classes]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(f"dataset.json: class ids {duplicates} appear more than once")
    convention = d.get("pose_convention")
    if convention is not None:
        try:
            pose_convention_from_dict(convention)
        except ValueError as err:
            problems.append(f"dataset.json: pose_convention is {convention!r}: {err}")
    if problems:
        return None, problems
    known = {"format", "version", "modality", "classes", "fps", "size"}
    extra = {k: v for k, v in d.items() if k not in known}
    return DatasetMeta(modality, tuple(classes), float(fps), (size[0], size[1]), extra), []


def pose_convention_from_dict(d: Any) -> model_pb2.PoseConvention:
    """{"skeleton", "face", "hands", "limb_width"} -> PoseConvention; ValueError naming what is wrong."""
    if not isinstance(d, dict) or set(d) - set(DEFAULT_POSE_CONVENTION):
        raise ValueError(f"expected an object with keys {sorted(DEFAULT_POSE_CONVENTION)}")
    d = {**DEFAULT_POSE_CONVENTION, **d}
    if not (
        isinstance(d["face"], bool)
        and isinstance(d["hands"], bool)
        and isinstance(d["limb_width"], int)
        and isinstance(d["skeleton"], str)
    ):
        raise ValueError("expected skeleton a string, face and hands true/false, limb_width an integer")
    convention = model_pb2.PoseConvention(**d)
    pose_layout(convention)  # refuses an unknown skeleton or a limb width below 1
    return convention


def pose_convention_dict(convention: model_pb2.PoseConvention) -> dict[str, Any]:
    return {
        "skeleton": convention.skeleton,
        "face": convention.face,
        "hands": convention.hands,
        "limb_width": int(convention.limb_width),
    }


def pose_convention(meta: DatasetMeta) -> model_pb2.PoseConvention:
    """The convention a pose dataset's keypoints are drawn in for training (and so the bundle's):
    dataset.json's "pose_convention", else DEFAULT_POSE_CONVENTION."""
    return pose_convention_from_dict(meta.extra.get("pose_convention", DEFAULT_POSE_CONVENTION))


def read_meta(root: Path) -> DatasetMeta:
    path = Path(root) / "dataset.json"
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing; every dataset needs a dataset.json (docs/dataset_format.md)") from None
    except (OSError, json.JSONDecodeError) as err:
        raise DatasetError(f"{path}: unreadable ({err})") from None
    meta, problems = parse_meta(d)
    if meta is None:
        raise DatasetError("; ".join(problems))
    return meta


def write_meta(root: Path, meta: DatasetMeta) -> None:
    Path(root).mkdir(parents=True, exist_ok=True)
    (Path(root) / "dataset.json").write_text(json.dumps(meta.to_dict(), indent=2) + "\n")


# ---- one file per frame and folder ----


def read_file(folder: str, path: Path) -> np.ndarray:
    """Read one frame file of `folder` in its stored dtype; raise DatasetError if it is unreadable."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".json":
            return pose_array(json.loads(path.read_text()))
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except (OSError, ValueError, json.JSONDecodeError) as err:
        raise DatasetError(f"{path}: unreadable ({err})") from None
    if image is None:
        raise DatasetError(f"{path}: unreadable image")
    if folder == "images":
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
        else:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if image.dtype != np.uint8:
            raise DatasetError(f"{path}: images must be 8-bit RGB, got {image.dtype}")
    return image


def pose_array(d: Any) -> np.ndarray:
    """poses/*.json ({"people": [[[x, y, confidence], ...], ...], optional "num_keypoints", "skeleton"})
    -> float32 [P, K, 3] in pixels."""
    if not isinstance(d, dict) or not isinstance(d.get("people"), list):
        raise ValueError('expected {"people": [[[x, y, confidence], ...], ...]}')
    people = d["people"]
    if not people:
        return np.zeros((0, int(d.get("num_keypoints", 0)), 3), np.float32)
    array = np.asarray(people, dtype=np.float32)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"people must be [P, K, 3] (x, y, confidence), got shape {array.shape}")
    return array


def write_file(folder: str, path: Path, array: np.ndarray | dict) -> None:
    """Write one frame file; the format follows `folder` and the path's extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, np.asarray(array, dtype=np.float16))
    elif suffix == ".json":
        path.write_text(json.dumps(array))
    else:
        image = np.asarray(array)
        if folder == "images":
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(path), image):
            raise DatasetError(f"{path}: could not write")


class SequenceWriter:
    """Writes frames of one sequence: `write(i, images=..., labels=..., motion=...)` (folder names as keys)."""

    def __init__(self, root: Path, name: str, image_ext: str = ".png") -> None:
        self.directory = Path(root) / name
        self.image_ext = image_ext

    def write(self, index: int, **arrays: np.ndarray | dict) -> None:
        for folder, array in arrays.items():
            if folder not in FOLDERS:
                raise ValueError(f"unknown folder {folder!r}; known: {', '.join(FOLDERS)}")
            ext = self.image_ext if folder == "images" else FOLDERS[folder][0]
            write_file(folder, self.directory / folder / f"{frame_name(index)}{ext}", array)


# ---- reading ----


class Sequence:
    """One sequence: its folders and `frame(i) -> {key: array}` (keys from FRAME_KEYS)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.name = self.directory.name
        self.files: dict[str, list[Path]] = {}
        for folder, extensions in FOLDERS.items():
            sub = self.directory / folder
            if sub.is_dir():
                self.files[folder] = sorted(p for p in sub.iterdir() if p.suffix.lower() in extensions)
        self.length = len(self.files.get("images", []))

    @property
    def folders(self) -> list[str]:
        return list(self.files)

    def __len__(self) -> int:
        return self.length

    def path(self, folder: str, index: int) -> Path:
        for ext in FOLDERS[folder]:
            candidate = self.directory / folder / f"{frame_name(index)}{ext}"
            if candidate.exists():
                return candidate
        raise DatasetError(f"{self.directory / folder}: frame {frame_name(index)} is missing")

    def frame(self, index: int) -> dict[str, np.ndarray]:
        """All stored passes of frame `index`, in their stored dtypes:
        image uint8 [H,W,3]; labels uint8/uint16 [H,W]; edges uint8 [H,W]; pose float32 [P,K,3];
        instances uint16 [H,W]; depth float16 [H,W]; motion, flow float16 [H,W,2]; flow_valid bool [H,W]."""
        if not 0 <= index < self.length:
            raise IndexError(f"{self.name}: frame {index} out of range 0..{self.length - 1}")
        out = {}
        for folder in self.files:
            array = read_file(folder, self.path(folder, index))
            out[FRAME_KEYS[folder]] = array > 127 if folder == "flow_valid" else array
        return out


class VideoDataset:
    """A dataset folder: `.meta` (DatasetMeta) and `.sequences` (list of Sequence, sorted by name)."""

    def __init__(self, root: Path, meta: DatasetMeta, sequences: list[Sequence]) -> None:
        self.root = Path(root)
        self.meta = meta
        self.sequences = sequences

    def __repr__(self) -> str:
        return f"VideoDataset({self.root}, {self.meta.modality}, {len(self.sequences)} sequences)"


def sequence_dirs(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def open_dataset(root: str | Path) -> VideoDataset:
    """Open a dataset folder. Raises DatasetError naming the first problem of dataset.json or the layout;
    `check_dataset` (training/dataset_check.py) lists every problem of every file."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory")
    meta = read_meta(root)
    sequences = [Sequence(d) for d in sequence_dirs(root)]
    if not sequences:
        raise DatasetError(f"{root}: no sequence folders")
    needed = INPUT_FOLDER[meta.modality]
    for s in sequences:
        for folder in ("images", needed):
            if folder not in s.files or not s.files[folder]:
                raise DatasetError(
                    f"{s.directory}: no {folder}/ frames ({meta.modality} datasets need images/ and {needed}/)"
                )
    return VideoDataset(root, meta, sequences)


# ---- clips for training ----


class ClipDataset(torch.utils.data.Dataset):
    """Every window of `clip_length` consecutive frames of every sequence, as tensors with a leading T axis.

    The same random crop and horizontal flip apply to every frame of a clip (flipping negates the x of motion
    and flow, and mirrors pose keypoints). Randomness depends only on (seed, epoch, index): call
    `set_epoch(e)` each epoch; a resumed run draws the same crops. Items:
    image uint8 [T,H,W,3]; labels, instances int64 [T,H,W]; edges uint8 [T,H,W];
    depth float32 [T,H,W] (inf = no surface); motion, flow float32 [T,H,W,2] (px, backward);
    flow_valid bool [T,H,W]; pose float32 [T,MAX_PEOPLE,K,3] (zero-confidence padding).
    """

    def __init__(
        self,
        dataset: VideoDataset,
        clip_length: int,
        crop_size: int | tuple[int, int] | None = None,
        flip: bool = True,
        seed: int = 0,
    ) -> None:
        if clip_length < 1:
            raise ValueError(f"clip_length {clip_length}: expected at least 1")
        self.dataset = dataset
        self.clip_length = clip_length
        self.crop = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
        height, width = dataset.meta.size
        if self.crop is not None and (self.crop[0] > height or self.crop[1] > width):
            raise ValueError(f"crop {self.crop} is larger than the frames ({height}, {width})")
        self.flip = flip
        self.seed = seed
        self.epoch = 0
        self.windows = [
            (s, start)
            for s in range(len(dataset.sequences))
            for start in range(len(dataset.sequences[s]) - clip_length + 1)
        ]
        if not self.windows:
            longest = max(len(s) for s in dataset.sequences)
            raise ValueError(f"no sequence has {clip_length} frames (the longest has {longest})")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.windows)

    def window(self, index: int) -> tuple[str, int]:
        """(sequence name, first frame) of clip `index`."""
        s, start = self.windows[index]
        return self.dataset.sequences[s].name, start

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        s, start = self.windows[index]
        sequence = self.dataset.sequences[s]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        height, width = self.dataset.meta.size
        ch, cw = self.crop or (height, width)
        top = int(rng.integers(0, height - ch + 1))
        left = int(rng.integers(0, width - cw + 1))
        flip = self.flip and bool(rng.integers(0, 2))
        frames = [sequence.frame(start + t) for t in range(self.clip_length)]
        out = {}
        for key in frames[0]:
            if key == "pose":
                stacked = pose_transform([f[key] for f in frames], top, left, cw, flip)
            else:
                stacked = np.stack([clip_transform(key, f[key], top, left, ch, cw, flip) for f in frames])
            out[key] = torch.from_numpy(np.ascontiguousarray(stacked))
        return out


def clip_transform(key: str, array: np.ndarray, top: int, left: int, height: int, width: int, flip: bool) -> np.ndarray:
    """Crop [top:top+height, left:left+width], optionally mirror, and convert to the training dtype."""
    array = array[top : top + height, left : left + width]
    if flip:
        array = array[:, ::-1]
    if key in ("motion", "flow"):
        array = array.astype(np.float32)
        if flip:
            array = array * np.array([-1.0, 1.0], np.float32)
        return array
    if key in ("labels", "instances"):
        return array.astype(np.int64)
    if key == "depth":
        return array.astype(np.float32)
    return array


def pose_transform(clip: list[np.ndarray], top: int, left: int, width: int, flip: bool) -> np.ndarray:
    """Per-frame keypoints [P,K,3] -> [T, MAX_PEOPLE, K, 3] in crop coordinates (mirrored if flipped),
    padded with zero-confidence people. Keypoint names are not swapped left/right on a flip."""
    num_keypoints = max(k.shape[1] for k in clip)
    out = np.zeros((len(clip), MAX_PEOPLE, num_keypoints, 3), np.float32)
    for t, keypoints in enumerate(clip):
        k = keypoints[:MAX_PEOPLE].copy()
        k[..., 0] -= left
        k[..., 1] -= top
        if flip:
            k[..., 0] = (width - 1) - k[..., 0]
        out[t, : k.shape[0], : k.shape[1]] = k
    return out


__all__ = [
    "ClipDataset",
    "DatasetError",
    "DatasetMeta",
    "FOLDERS",
    "FRAME_KEYS",
    "INPUT_FOLDER",
    "MODALITIES",
    "Sequence",
    "SequenceWriter",
    "VideoDataset",
    "frame_name",
    "open_dataset",
    "parse_meta",
    "pose_convention",
    "pose_convention_dict",
    "pose_convention_from_dict",
    "read_file",
    "read_meta",
    "write_meta",
]
