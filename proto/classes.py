"""The one class-table row: what a label ID means, for the renderer, datasets, bundles and the wire.

The bundle and `GetModel` carry rows as the proto's `ClassInfo` message; everything in Python holds this
dataclass and converts at that edge.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Any

from neurender.proto.neurender.v1 import model_pb2


@dataclass(frozen=True)
class ClassInfo:
    """One row of a class table: ID as drawn in label maps, a name, and an RGB colour for people to see."""

    id: int
    name: str
    color: tuple[int, int, int]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "color": list(self.color)}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> ClassInfo:
        return cls(int(row["id"]), str(row["name"]), tuple(int(v) for v in row["color"]))  # type: ignore[arg-type]

    def to_proto(self) -> model_pb2.ClassInfo:
        return model_pb2.ClassInfo(id=self.id, name=self.name, color=list(self.color))

    @classmethod
    def from_proto(cls, message: model_pb2.ClassInfo) -> ClassInfo:
        color = tuple(message.color) if len(message.color) == 3 else (0, 0, 0)
        return cls(message.id, message.name, color)  # type: ignore[arg-type]


def default_classes(n: int) -> list[ClassInfo]:
    """Placeholder class table (class_0, ...) with distinct colours, for models without a dataset."""
    classes = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.65, 0.95)
        classes.append(ClassInfo(i, f"class_{i}", (int(r * 255), int(g * 255), int(b * 255))))
    return classes
