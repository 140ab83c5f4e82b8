"""The one typed config loader: YAML mappings (and `key=value` overrides) into frozen dataclasses.

Every config kind (server settings, training runs, generator shapes) is a dataclass; this module checks each
value against its field's annotation and names the key, the value and the type expected. YAML's own
leniencies are refused rather than guessed: `'no'` is not a bool, `1` is not a bool, a string is not a number.
Override values (`--set optim.lr=2e-4`) are read as YAML scalars, with the exponent forms YAML 1.1 leaves as
strings (`2e-4`) read as numbers.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, TypeVar

import yaml

from neurender.common.errors import UserError

T = TypeVar("T")

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class ConfigError(UserError, ValueError):
    """A config value of the wrong type or an unknown key; the message names the key and what was expected."""


def parse_scalar(text: str) -> Any:
    """A `--set` value as YAML reads it, except that any decimal or exponent number is a number."""
    if _NUMBER.match(text.strip()):
        number = float(text)
        return int(text) if re.fullmatch(r"[+-]?\d+", text.strip()) else number
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"value {text!r} is not a YAML scalar: {err}") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`section.option=value` items applied to a nested mapping (a copy)."""
    result = _copy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected section.option=value")
        target = result
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        target[leaf] = parse_scalar(value)
    return result


def build(cls: type[T], values: dict[str, Any] | None, where: str) -> T:
    """An instance of dataclass `cls` from a mapping, every value checked against its field's type."""
    if values is None:
        return cls()
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping of options, got {values!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {unknown}; known: {sorted(known)}")
    hints = typing.get_type_hints(cls)
    return cls(**{k: check(hints[k], v, f"{where}.{k}") for k, v in values.items()})


def check(annotation: Any, value: Any, where: str) -> Any:
    """`value` as `annotation` (tuples from lists, nested dataclasses from mappings), or ConfigError."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        problems = []
        for option in options:
            try:
                return check(option, value, where)
            except ConfigError as err:
                problems.append(str(err))
        raise ConfigError(problems[0] if len(problems) == 1 else f"{where} is {value!r}, expected {_name(annotation)}")
    if dataclasses.is_dataclass(annotation):
        return value if isinstance(value, annotation) else build(annotation, value, where)  # type: ignore[arg-type]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} is {value!r}, expected a list of {_name(args[0]) if args else 'values'}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(check(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ConfigError(f"{where} is {value!r}, expected {len(args)} values")
        return (
            tuple(check(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value))) if args else tuple(value)
        )
    if origin in (dict, list) or annotation in (dict, list, Any):
        expected = {dict: dict, list: list}.get(origin or annotation)
        if expected and not isinstance(value, expected):
            raise ConfigError(f"{where} is {value!r}, expected a {expected.__name__}")
        return value
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where} is {value!r}, expected one of {list(args)}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} is {value!r}, expected true or false")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} is {value!r}, expected an integer")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} is {value!r}, expected a number")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} is {value!r}, expected a string")
        return value
    return value


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value
