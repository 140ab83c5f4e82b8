"""Checkpoints: written atomically (temporary file, fsync, rename) with a SHA-256 checksum checked on load,
keeping the previous generation beside the newest, with every RNG state for exact resume.

A damaged newest checkpoint (torn by a disk, truncated, emptied, or holding non-finite numbers) is never
loaded: torch.load on arbitrary bytes can return garbage or crash the process. Resuming falls back to the
previous generation and says so.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
PREVIOUS_NAME = "checkpoint.prev.pt"
MAGIC = b"NEURENDER-CHECKPOINT sha256="
WEIGHT_PARTS = ("synthesis", "ema", "d_image", "d_video")
OPTIMISER_PARTS = ("g_optimizer", "d_optimizer")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what is wrong with it."""


def save_atomic(payload: dict[str, Any], path: str | Path) -> Path:
    """Write `payload` to `path` with its checksum; the checkpoint it replaces becomes checkpoint.prev.pt.

    A crash leaves the old checkpoint or the new one in `path` (never a torn file) and a good previous one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    header = MAGIC + hashlib.sha256(data).hexdigest().encode() + b"\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if path.exists():  # a hard link keeps `path` in place until the new file replaces it
            previous = Path(tmp + ".prev")
            os.link(path, previous)
            os.replace(previous, path.with_name(PREVIOUS_NAME))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """One checkpoint file, checksum verified; raise CheckpointError naming the file and the damage."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"checkpoint {path}: {err.strerror}") from None
    if not raw.startswith(MAGIC):
        raise CheckpointError(
            f"checkpoint {path}: {'empty' if not raw else 'no neurender checksum header'} "
            f"({len(raw)} bytes); it is damaged or not a neurender checkpoint"
        )
    header, _, data = raw.partition(b"\n")
    if hashlib.sha256(data).hexdigest().encode() != header[len(MAGIC) :]:
        raise CheckpointError(
            f"checkpoint {path}: checksum mismatch ({len(data)} bytes after the header): the file is "
            "damaged or truncated"
        )
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def non_finite_tensor(state: dict[str, Any], parts: tuple[str, ...] = WEIGHT_PARTS + OPTIMISER_PARTS) -> str | None:
    """The name of the first tensor of the state's weights (and optimiser state) holding NaN or inf, or None."""
    for part in parts:
        tensors = state.get(part) or {}
        if part in OPTIMISER_PARTS:
            tensors = {
                f"{index}.{slot}": value
                for index, slots in tensors.get("state", {}).items()
                for slot, value in slots.items()
            }
        for name, value in tensors.items():
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                return f"{part}.{name}"
    return None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A run folder's (or a file's) checkpoint, verified and finite. When the newest checkpoint.pt of a run is
    damaged, the previous generation is loaded instead, with a logged warning naming the damage."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    candidates = [path]
    if path.name == CHECKPOINT_NAME and path.with_name(PREVIOUS_NAME).exists():
        candidates.append(path.with_name(PREVIOUS_NAME))
    if not any(p.is_file() for p in candidates):
        raise FileNotFoundError(f"checkpoint {path}: no such file")
    problems = []
    for candidate in candidates:
        try:
            state = read_checkpoint(candidate)
            bad = non_finite_tensor(state)
            if bad:
                raise CheckpointError(f"checkpoint {candidate}: tensor {bad} holds NaN or inf")
        except CheckpointError as err:
            problems.append(str(err))
            continue
        if problems:
            log.warning(
                "%s; using the previous checkpoint %s (iteration %d) instead",
                problems[0],
                candidate,
                state["position"]["iteration"],
            )
        return state
    raise CheckpointError(
        "; ".join(problems) + ("" if len(candidates) > 1 else f" (no {PREVIOUS_NAME} to fall back to)")
    )


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
