"""A joint map guessed from joint names and the tree, for skeletons of no known family.

Exporters name the same joints many ways (MotionBuilder/HumanIK `LeftHand`, Unreal `hand_l`, Rigify
`DEF-hand.L`, OptiTrack `Skeleton:LHand`, Xsens `RightHand`, `Bip01_L_Hand`, `LeftWrist` in Hips/Ab/Chest rigs)
but agree on two words: the hand (or wrist) and the foot (or ankle). So only those are found by name, with
their side (`Left`/`Right`/`L`/`R` as a word, prefix or suffix: `_l`, `.L`, `L_`); the elbow and shoulder are
the hand's parent and grandparent, the knee and hip the foot's (twist and roll joints skipped), which settles
names that mean different joints in different rigs ("LeftShoulder" is the clavicle in HumanIK and the upper
arm in Hips/Ab/Chest rigs). The big toe is the foot's toe (or ball) child's end site, else that child, else the
foot's end site; the face follows the joint named head, else neck. Neck and mid-hip are left to their defaults
(midway between the shoulders, the hips), as the CMU and Mixamo maps leave them.
"""

from __future__ import annotations

import re

from neurender.retarget.canonical import JointMap

GUESSED = "guessed from joint names"
_SIDES = {"l": "l", "left": "l", "r": "r", "right": "r"}
_PREFIXES = {"def", "org", "mch", "bip", "mixamorig", "jnt", "bn", "skel", "skeleton"}
_HAND, _FOOT = {"hand", "wrist"}, {"foot", "ankle"}
_TOE = {"toe", "toes", "toebase", "ball"}
_SKIP = {"roll", "twist"}


def words(name: str) -> list[str]:
    """Lower-case words of a joint name: namespace dropped, split at separators, case changes and digits."""
    bare = name.rsplit(":", 1)[-1]
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", bare)]


def side(name: str) -> str | None:
    found = {_SIDES[w] for w in words(name) if w in _SIDES}
    return found.pop() if len(found) == 1 else None


def stem(name: str) -> str:
    """The name without side, prefix and number words: "DEF-upper_arm.L" -> "upperarm"."""
    return "".join(w for w in words(name) if w not in _SIDES and w not in _PREFIXES and not w.isdigit())


def guess_joint_map(names: tuple[str, ...], parents: tuple[int, ...]) -> JointMap:
    """The best guess; points it cannot find are left out (choose_joint_map reports them)."""
    children: dict[int, list[int]] = {}
    for j, p in enumerate(parents):
        children.setdefault(p, []).append(j)

    def up(j: int) -> int | None:
        p = parents[j]
        while p >= 0 and _SKIP & set(words(names[p])):
            p = parents[p]
        return p if p >= 0 else None

    def find(role: set[str], where: str) -> int | None:
        found = [j for j, n in enumerate(names) if stem(n) in role and side(n) == where and not n.endswith("_End")]
        return min(found, key=lambda j: len(names[j])) if found else None

    joints: dict[str, tuple[str, ...]] = {}
    for s in ("r", "l"):
        for role, chain in ((_HAND, ("wrist", "elbow", "shoulder")), (_FOOT, ("ankle", "knee", "hip"))):
            j = find(role, s)
            for point in chain:
                if j is None:
                    break
                joints[f"{s}_{point}"] = (names[j],)
                j = up(j)
        foot = find(_FOOT, s)
        if foot is not None:
            toe = _toe_tip(names, children, foot)
            if toe is not None:
                joints[f"{s}_big_toe"] = (names[toe],)
    head = next((j for j, n in enumerate(names) if stem(n) == "head"), None)
    if head is None:
        head = next((j for j, n in enumerate(names) if stem(n) == "neck"), None)
    return JointMap(GUESSED, joints, (names[head],) if head is not None else ())


def _toe_tip(names: tuple[str, ...], children: dict[int, list[int]], foot: int) -> int | None:
    def end_of(j: int) -> int | None:
        return next((c for c in children.get(j, []) if names[c] == names[j] + "_End"), None)

    toe = next((c for c in children.get(foot, []) if stem(names[c]) in _TOE), None)
    if toe is not None:
        end = end_of(toe)
        return end if end is not None else toe
    return end_of(foot)


def joint_map_yaml(names: tuple[str, ...], parents: tuple[int, ...], source: str) -> str:
    """The best joint map for a skeleton as YAML to edit and pass with --map: its known family's, resolved to
    its joint names, else the guess; points that could not be found are listed as comments to fill in."""
    from neurender.retarget.canonical import NAMES, REQUIRED, SkeletonMapError, choose_joint_map

    try:
        chosen = choose_joint_map(names, None, parents)
    except SkeletonMapError:
        chosen = guess_joint_map(names, parents)
    bare = {n.rsplit(":", 1)[-1]: n for n in names}

    def present(alternatives: tuple[str, ...]) -> str | None:
        return next((bare[a.rsplit(":", 1)[-1]] for a in alternatives if a.rsplit(":", 1)[-1] in bare), None)

    lines = [
        f"# Joint map for {source} ({chosen.name}). Edit and pass it with --map; canonical points are",
        "# OpenPose BODY_25's. Points left out are placed from the canonical body (neck, mid_hip: midway).",
        f"head: {present(chosen.head) or '?'}" + ("" if present(chosen.head) else "  # the joint the face follows"),
        "joints:",
    ]
    for point in NAMES:
        joint = present(chosen.joints.get(point, ()))
        if joint is not None:
            lines.append(f"  {point}: {joint}")
        elif point in REQUIRED:
            lines.append(f"  # {point}: ?  (required: not found, name its joint)")
    return "\n".join(lines) + "\n"
