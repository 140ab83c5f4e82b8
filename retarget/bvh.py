"""BVH reader: any hierarchy, any channel and rotation order, any frame rate.

Conventions: a joint's rotation channels compose in the order listed (intrinsic, "Zrotation Yrotation
Xrotation" means R = Rz Ry Rx), in degrees. Position channels give the joint's translation in its parent's
frame and replace the matching OFFSET components (the root's position channels are its world position).
End Sites become joints named `<parent>_End` with no channels, so toe tips and head tops are available to
joint maps. Every syntax problem is reported with its line number. Rows after the frames the `Frames:` header
announces (several exporters write one more) are ignored with a warning, as Blender does; too few rows are
refused as a truncated file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurender.retarget.skeleton import Motion, MotionFormatError, Skeleton

log = logging.getLogger(__name__)
_CHANNELS = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")


@dataclass
class _Joint:
    name: str
    parent: int
    offset: tuple[float, float, float]
    channels: tuple[str, ...]


class _Tokens:
    """The hierarchy's tokens with their line numbers; `line` is where the last token came from."""

    def __init__(self, path: Path, lines: list[str]) -> None:
        self.path = path
        self._items: Iterator[tuple[str, int]] = ((tok, n) for n, text in enumerate(lines, 1) for tok in text.split())
        self.line = 0

    def next(self, expected: str) -> str:
        for token, self.line in self._items:
            return token
        raise MotionFormatError(self.path, f"file ends early: expected {expected}", self.line)

    def expect(self, word: str) -> None:
        token = self.next(repr(word))
        if token != word:
            raise MotionFormatError(self.path, f"expected {word!r}, found {token!r}", self.line)

    def finish(self, where: str) -> None:
        for token, line in self._items:
            raise MotionFormatError(self.path, f"unexpected {token!r} {where}", line)

    def number(self, what: str) -> float:
        token = self.next(what)
        try:
            return float(token)
        except ValueError:
            raise MotionFormatError(self.path, f"{what}: {token!r} is not a number", self.line) from None


def _parse_joint(tokens: _Tokens, name: str, parent: int, joints: list[_Joint]) -> None:
    tokens.expect("{")
    tokens.expect("OFFSET")
    offset = (tokens.number("OFFSET x"), tokens.number("OFFSET y"), tokens.number("OFFSET z"))
    tokens.expect("CHANNELS")
    count_token = tokens.next("a channel count")
    if not count_token.isdigit():
        raise MotionFormatError(tokens.path, f"CHANNELS count {count_token!r} is not a whole number", tokens.line)
    channels = tuple(tokens.next("a channel name") for _ in range(int(count_token)))
    for channel in channels:
        if channel not in _CHANNELS:
            raise MotionFormatError(
                tokens.path,
                f"joint {name!r}: unknown channel {channel!r}, expected one of {', '.join(_CHANNELS)}",
                tokens.line,
            )
    index = len(joints)
    joints.append(_Joint(name, parent, offset, channels))
    while True:
        token = tokens.next("'JOINT', 'End Site' or '}'")
        if token == "}":
            return
        if token == "JOINT":
            _parse_joint(tokens, tokens.next("a joint name"), index, joints)
        elif token == "End":
            tokens.expect("Site")
            tokens.expect("{")
            tokens.expect("OFFSET")
            end = (tokens.number("OFFSET x"), tokens.number("OFFSET y"), tokens.number("OFFSET z"))
            tokens.expect("}")
            joints.append(_Joint(f"{name}_End", index, end, ()))
        else:
            raise MotionFormatError(
                tokens.path, f"joint {name!r}: expected 'JOINT', 'End Site' or '}}', found {token!r}", tokens.line
            )


def _header_value(path: Path, lines: list[str], n: int, key: str) -> str:
    if n >= len(lines):
        raise MotionFormatError(path, f"file ends early: expected '{key} ...'", len(lines))
    text = lines[n].strip()
    if not text.startswith(key):
        raise MotionFormatError(path, f"expected '{key} ...', found {text[:40]!r}", n + 1)
    return text[len(key) :].strip()


def euler_matrices(axes: str, angles: np.ndarray) -> np.ndarray:
    """Rotation matrices [F, 3, 3] for intrinsic rotations about `axes` (e.g. "ZYX": R = Rz Ry Rx), radians [F, len(axes)]."""
    result = np.broadcast_to(np.eye(3), (angles.shape[0], 3, 3)).copy()
    for k, axis in enumerate(axes):
        c, s = np.cos(angles[:, k]), np.sin(angles[:, k])
        m = np.zeros_like(result)
        i, j = {"X": (1, 2), "Y": (2, 0), "Z": (0, 1)}[axis]
        a = "XYZ".index(axis)
        m[:, a, a] = 1.0
        m[:, i, i], m[:, i, j], m[:, j, i], m[:, j, j] = c, -s, s, c
        result = result @ m
    return result


def _raise_bad_row(path: Path, rows: list[str], first: int, n_channels: int) -> None:
    """Find the first frame line that is not `n_channels` numbers and raise an error naming it."""
    for n, text in enumerate(rows):
        values = text.split()
        if len(values) != n_channels:
            raise MotionFormatError(
                path, f"frame {n + 1} has {len(values)} values, expected {n_channels} (one per channel)", first + n + 1
            )
        for value in values:
            try:
                float(value)
            except ValueError:
                raise MotionFormatError(path, f"frame {n + 1}: {value!r} is not a number", first + n + 1) from None


def load_bvh(path: str | Path) -> Motion:
    """Parse a BVH file into a Motion (End Sites included as `<parent>_End` joints)."""
    path = Path(path)
    try:
        lines = path.read_text(errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise MotionFormatError(path, f"cannot read as a text BVH file ({err})") from None
    try:
        motion_at = next(n for n, text in enumerate(lines) if text.strip() == "MOTION")
    except StopIteration:
        raise MotionFormatError(
            path, "no 'MOTION' line: expected HIERARCHY ... MOTION ... frames", len(lines)
        ) from None

    tokens = _Tokens(path, lines[:motion_at])
    tokens.expect("HIERARCHY")
    tokens.expect("ROOT")
    joints: list[_Joint] = []
    _parse_joint(tokens, tokens.next("the root joint's name"), -1, joints)
    tokens.finish("after the root joint's closing '}'")

    frames_text = _header_value(path, lines, motion_at + 1, "Frames:")
    time_text = _header_value(path, lines, motion_at + 2, "Frame Time:")
    try:
        n_frames = int(frames_text)
        frame_time = float(time_text)
    except ValueError:
        raise MotionFormatError(
            path, f"bad 'Frames: {frames_text}' / 'Frame Time: {time_text}' header", motion_at + 2
        ) from None
    if n_frames < 1 or frame_time <= 0:
        raise MotionFormatError(
            path, f"Frames {n_frames} and Frame Time {frame_time}: expected positive values", motion_at + 2
        )

    n_channels = sum(len(j.channels) for j in joints)
    first = motion_at + 3
    rows = lines[first : first + n_frames]
    while rows and not rows[-1].strip():  # a blank line where a frame should be is the end of the data
        rows.pop()
    if len(rows) < n_frames:
        raise MotionFormatError(
            path,
            f"truncated: the header announces {n_frames} frames but the data ends after {len(rows)}",
            first + len(rows),
        )
    try:
        data = np.loadtxt(rows, dtype=np.float64, ndmin=2)
    except ValueError:
        _raise_bad_row(path, rows, first, n_channels)
        raise
    if data.shape[1] != n_channels:
        _raise_bad_row(path, rows, first, n_channels)
    if not np.isfinite(data).all():
        n = int(np.argwhere(~np.isfinite(data))[0, 0])
        raise MotionFormatError(path, f"frame {n + 1} has a non-finite value", first + n + 1)
    extra = sum(1 for text in lines[first + n_frames :] if text.strip())
    if extra:
        log.warning(
            "%s: %d row(s) after the %d frames the header announces are ignored (as Blender does)",
            path,
            extra,
            n_frames,
        )

    skeleton = Skeleton(
        tuple(j.name for j in joints),
        tuple(j.parent for j in joints),
        np.array([j.offset for j in joints], dtype=np.float64),
    )
    rotations = np.broadcast_to(np.eye(3), (n_frames, len(joints), 3, 3)).copy()
    translations = np.broadcast_to(skeleton.offsets, (n_frames, len(joints), 3)).copy()
    column = 0
    for index, joint in enumerate(joints):
        rot_axes = "".join(c[0] for c in joint.channels if c.endswith("rotation"))
        rot_cols = [column + k for k, c in enumerate(joint.channels) if c.endswith("rotation")]
        for k, c in enumerate(joint.channels):
            if c.endswith("position"):
                translations[:, index, "XYZ".index(c[0])] = data[:, column + k]
        if rot_axes:
            if len(set(rot_axes)) != len(rot_axes):
                raise MotionFormatError(path, f"joint {joint.name!r}: repeated rotation channel in {joint.channels}")
            rotations[:, index] = euler_matrices(rot_axes, np.radians(data[:, rot_cols]))
        column += len(joint.channels)
    return Motion(skeleton, rotations, translations, fps=1.0 / frame_time, source=str(path))
