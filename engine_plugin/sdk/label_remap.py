"""A label-remap file -> a session's label_remap {source ID: model class ID}: what `render-video --remap` sends.

YAML or JSON, one mapping. Keys are source class IDs (any value a UINT16 label map holds, e.g. a foreign
dataset's PASCAL VOC or Cityscapes IDs) or names of the model's classes; values are the model's class IDs or
names. Names are matched exactly against the model's class table (GetModel).
    7: road        # Cityscapes road -> the model's "road"
    26: 3          # Cityscapes car -> class 3
    car: building  # render the model's own "car" as "building"
"""

from __future__ import annotations

from pathlib import Path

import yaml

from neurender.common.errors import UserError
from neurender.proto.neurender.v1 import model_pb2

MAX_SOURCE_ID = 65535


class LabelRemapError(UserError, ValueError):
    """A remap file that cannot be used with the model; the message names the file and the entry."""


def load_label_remap(path: Path, model: model_pb2.ModelDescription) -> dict[int, int]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise LabelRemapError(f"{path}: cannot read ({err})") from None
    except yaml.YAMLError as err:
        raise LabelRemapError(f"{path}: not YAML or JSON ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict) or not data:
        raise LabelRemapError(
            f"{path}: expected a mapping of source class ID (or class name) -> model class ID (or name)"
        )
    by_name = {c.name: c.id for c in model.classes}
    remap = {}
    for key, value in data.items():
        source = _class(path, key, by_name, model, "source", MAX_SOURCE_ID)
        remap[source] = _class(path, value, by_name, model, "target", None)
    return remap


def _class(
    path: Path, entry: object, by_name: dict[str, int], model: model_pb2.ModelDescription, role: str, max_id: int | None
) -> int:
    if isinstance(entry, bool) or not isinstance(entry, (int, str)):
        raise LabelRemapError(f"{path}: {role} {entry!r} is neither a class ID nor a class name")
    if isinstance(entry, str) and not entry.strip().isdigit():
        if entry not in by_name:
            raise LabelRemapError(
                f"{path}: {role} {entry!r} is not a class of model {model.name}; its classes: "
                f"{', '.join(sorted(by_name))}"
            )
        return by_name[entry]
    value = int(entry)
    limit = max_id if max_id is not None else len(model.classes) - 1
    if not 0 <= value <= limit:
        what = "a UINT16 label holds" if max_id is not None else f"model {model.name} has"
        raise LabelRemapError(f"{path}: {role} class ID {value} is outside 0..{limit}, the IDs {what}")
    return value
