"""DeepMimic motion clips on the URDF character they drive.

The character's joint tree comes from its URDF: every joint's origin is its offset in the parent link's
frame (times `scale`: the DeepMimic humanoid's URDF is in units of 4 m, so 0.25 gives metres). A clip frame is
`[dt, root position (3), root rotation (quaternion w x y z), then per non-fixed URDF joint in file order:
spherical -> quaternion w x y z, revolute -> one angle (radians) about the joint's axis]`. The root joint is
the URDF's base joint; fixed joints (wrists) carry no values. Clips are DeepMimic's JSON
(`{"Loop": ..., "Frames": [[...], ...]}`) or plain text with one frame of numbers per line.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from neurender.retarget.skeleton import Motion, MotionFormatError, Skeleton

DEEPMIMIC_URDF_SCALE = 0.25
# The DeepMimic humanoid (pybullet_data/humanoid/humanoid.urdf, zlib licence), shipped as package data.
DEFAULT_URDF = Path(__file__).with_name("data") / "deepmimic_humanoid.urdf"


@dataclass(frozen=True)
class UrdfCharacter:
    skeleton: Skeleton
    joint_types: tuple[str, ...]  # per skeleton joint: "root", "spherical", "revolute" or "fixed"
    axes: np.ndarray  # [J, 3] revolute axes
    origin_rotations: np.ndarray  # [J, 3, 3] fixed rotation of each joint's origin (rpy)


def _floats(path: Path, element: ET.Element, attribute: str, default: str) -> np.ndarray:
    text = element.get(attribute, default)
    try:
        values = np.array([float(v) for v in text.split()])
    except ValueError:
        values = np.array([])
    if values.shape != (3,):
        raise MotionFormatError(path, f"<{element.tag} {attribute}={text!r}>: expected three numbers")
    return values


def load_urdf_character(path: str | Path = DEFAULT_URDF, scale: float = DEEPMIMIC_URDF_SCALE) -> UrdfCharacter:
    """The joint tree of a URDF: the base joint is the root, others follow in file order (parents first)."""
    path = Path(path)
    try:
        # pybullet's humanoid.urdf ends with a NUL byte; tolerate trailing NULs.
        root = ET.fromstring(path.read_bytes().rstrip(b"\0"))
    except (OSError, ET.ParseError) as err:
        raise MotionFormatError(path, f"cannot read as URDF XML ({err})") from None
    joints = root.findall("joint")
    if not joints:
        raise MotionFormatError(path, "no <joint> elements: expected a URDF robot")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[np.ndarray] = []
    types: list[str] = []
    axes: list[np.ndarray] = []
    origin_rotations: list[np.ndarray] = []
    link_owner: dict[str, int] = {}  # child link -> index of the joint that moves it
    child_links = {j.find("child").get("link") for j in joints if j.find("child") is not None}
    for joint in joints:
        name, kind = joint.get("name", ""), joint.get("type", "")
        parent_el, child_el = joint.find("parent"), joint.find("child")
        if parent_el is None or child_el is None:
            raise MotionFormatError(path, f"joint {name!r}: missing <parent> or <child>")
        parent_link, child_link = parent_el.get("link"), child_el.get("link")
        origin = joint.find("origin")
        xyz = _floats(path, origin, "xyz", "0 0 0") if origin is not None else np.zeros(3)
        rpy = _floats(path, origin, "rpy", "0 0 0") if origin is not None else np.zeros(3)
        axis_el = joint.find("axis")
        axis = _floats(path, axis_el, "xyz", "1 0 0") if axis_el is not None else np.array([1.0, 0.0, 0.0])
        if parent_link not in link_owner:
            if names or parent_link in child_links:
                raise MotionFormatError(
                    path,
                    f"joint {name!r}: parent link {parent_link!r} is not moved by an earlier joint; expected parents first",
                )
            kind = "root"  # the base joint: the clip's root position and rotation drive it
            parent = -1
        else:
            parent = link_owner[parent_link]
        if kind not in ("root", "spherical", "revolute", "continuous", "fixed"):
            raise MotionFormatError(
                path, f"joint {name!r}: type {kind!r} is not supported (spherical, revolute, fixed)"
            )
        link_owner[child_link] = len(names)
        names.append(name)
        parents.append(parent)
        offsets.append(xyz * scale)
        types.append("revolute" if kind == "continuous" else kind)
        axes.append(axis / max(np.linalg.norm(axis), 1e-12))
        origin_rotations.append(Rotation.from_euler("xyz", rpy).as_matrix())
    skeleton = Skeleton(tuple(names), tuple(parents), np.array(offsets))
    return UrdfCharacter(skeleton, tuple(types), np.array(axes), np.array(origin_rotations))


def _frame_lines(text: str) -> list[int]:
    """Line number where each frame (an innermost list of the JSON) starts, for error messages."""
    lines, depth, line = [], 0, 1
    for char in text:
        if char == "\n":
            line += 1
        elif char in "[{":
            depth += 1
            if depth == 3:
                lines.append(line)
        elif char in "]}":
            depth -= 1
    return lines


def _read_frames(path: Path) -> tuple[list[list[float]], list[int]]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise MotionFormatError(path, f"cannot read as text ({err})") from None
    if text.lstrip().startswith("{"):
        try:
            clip = json.loads(text)
        except json.JSONDecodeError as err:
            raise MotionFormatError(path, f"not valid JSON: {err.msg}", err.lineno) from None
        frames = clip.get("Frames") if isinstance(clip, dict) else None
        if not isinstance(frames, list) or not frames:
            raise MotionFormatError(path, "expected a JSON object with a non-empty 'Frames' list")
        lines = _frame_lines(text)
        for n, frame in enumerate(frames):
            if not isinstance(frame, list) or not all(isinstance(v, (int, float)) for v in frame):
                raise MotionFormatError(
                    path, f"frame {n + 1} is not a list of numbers", lines[n] if n < len(lines) else None
                )
        return frames, lines
    frames, lines = [], []
    for number, row in enumerate(text.splitlines(), 1):
        if row.strip():
            try:
                frames.append([float(v) for v in row.replace(",", " ").split()])
            except ValueError:
                raise MotionFormatError(path, f"frame {len(frames) + 1}: not a row of numbers", number) from None
            lines.append(number)
    if not frames:
        raise MotionFormatError(path, "no frames")
    return frames, lines


def load_deepmimic(path: str | Path, urdf: str | Path = DEFAULT_URDF, scale: float = DEEPMIMIC_URDF_SCALE) -> Motion:
    """Parse a DeepMimic clip into a Motion on the URDF character's skeleton (metres for the humanoid)."""
    path = Path(path)
    character = load_urdf_character(urdf, scale)
    frames, lines = _read_frames(path)
    sizes = {"spherical": 4, "revolute": 1, "fixed": 0}
    expected = 8 + sum(sizes[t] for t in character.joint_types[1:])
    for n, frame in enumerate(frames):
        if len(frame) != expected:
            layout = ", ".join(
                f"{name}({sizes[t]})"
                for name, t in zip(character.skeleton.names[1:], character.joint_types[1:])
                if sizes[t]
            )
            raise MotionFormatError(
                path,
                f"frame {n + 1} has {len(frame)} values, expected {expected}: dt, root position(3), "
                f"root quaternion(4), {layout}",
                lines[n] if n < len(lines) else None,
            )
    data = np.asarray(frames, dtype=np.float64)
    if not np.isfinite(data).all():
        n = int(np.argwhere(~np.isfinite(data))[0, 0])
        raise MotionFormatError(path, f"frame {n + 1} has a non-finite value", lines[n])
    f, j = data.shape[0], len(character.skeleton.names)
    rotations = np.broadcast_to(np.eye(3), (f, j, 3, 3)).copy()
    translations = np.broadcast_to(character.skeleton.offsets, (f, j, 3)).copy()
    translations[:, 0] = data[:, 1:4]
    rotations[:, 0] = _quaternions(data[:, 4:8])
    column = 8
    for joint in range(1, j):
        kind = character.joint_types[joint]
        if kind == "spherical":
            local = _quaternions(data[:, column : column + 4])
        elif kind == "revolute":
            local = Rotation.from_rotvec(data[:, column, None] * character.axes[joint]).as_matrix()
        else:
            local = np.eye(3)
        rotations[:, joint] = character.origin_rotations[joint] @ local
        column += sizes[kind]
    dts = data[:, 0]
    dt = float(np.median(dts[dts > 0])) if (dts > 0).any() else 0.0
    if dt <= 0:
        raise MotionFormatError(path, "no frame has a positive duration (the first value of each frame)", lines[0])
    return Motion(character.skeleton, rotations, translations, fps=1.0 / dt, source=str(path))


def _quaternions(wxyz: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(wxyz, axis=1, keepdims=True)
    return Rotation.from_quat(wxyz[:, [1, 2, 3, 0]] / np.maximum(norms, 1e-12)).as_matrix()
