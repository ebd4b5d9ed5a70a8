"""A small typed-schema reader: a nested mapping -> dataclass sections, strictly.

Every key must be a field of its section (else `UnknownKeyError` with a did-you-mean naming the
full key path and where it was written); every value must already have the field's type. The
only conversions are the value-preserving ones: an int where a float is expected, and a
numeric string where a float is expected (YAML 1.1 reads `1e-4` as a string; `1.0e-4` is a
float), so nothing the user wrote is changed.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from mf_train.errors import TrainConfigError, UnknownKeyError

_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass
class ReadContext:
    """Where each key came from (`path -> "file.yaml:12"`), and what was read."""

    origins: dict[str, str] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)
    inert: list[str] = field(default_factory=list)

    def where(self, path: str) -> str:
        origin = self.origins.get(path)
        return f"{origin}: " if origin else ""


class Section:
    """Base of the schema's dataclasses.

    `INERT` names keys MindFormers accepts that have no effect on this implementation: they are
    read (so a real MindFormers YAML loads) and reported, never silently dropped.
    """

    INERT: ClassVar[frozenset[str]] = frozenset()


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def read_section(cls: type, data: Any, path: str, ctx: ReadContext) -> Any:
    """Build the dataclass `cls` from `data` (a mapping) at key path `path`."""
    if not isinstance(data, dict):
        raise TrainConfigError(
            f"{ctx.where(path)}{path or 'the run YAML'} must be a mapping of keys, "
            f"got {_describe_value(data)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        full = join(path, str(key))
        if not isinstance(key, str) or key not in names:
            raise UnknownKeyError(_unknown_key_message(str(key), full, path, names, ctx))
        ctx.written.add(full)
        if key in cls.INERT:
            ctx.inert.append(full)
        kwargs[key] = coerce(value, hints[key], full, ctx)
    return cls(**kwargs)


def _unknown_key_message(key: str, full: str, parent: str, names: list[str],
                         ctx: ReadContext) -> str:
    where = ctx.where(full) or ctx.where(parent)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if close:
        return f"{where}unknown key '{full}'; did you mean '{join(parent, close[0])}'?"
    section = parent or "the top level"
    return f"{where}unknown key '{full}'; {section} accepts: {', '.join(sorted(names))}"


def coerce(value: Any, tp: Any, path: str, ctx: ReadContext) -> Any:
    """Check `value` against the type annotation `tp`; return it (or its section object)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(value, option, path, ctx)
            except UnknownKeyError:
                raise
            except TrainConfigError:
                continue
        raise _type_error(value, tp, path, ctx)
    if isinstance(tp, type) and issubclass(tp, Section):
        return read_section(tp, value, path, ctx)
    if origin is list:
        if not isinstance(value, list):
            raise _type_error(value, tp, path, ctx)
        (item_type,) = typing.get_args(tp)
        return [coerce(item, item_type, join(path, i), ctx) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(value, tp, path, ctx)
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a schema bug, not a user error
        raise TypeError(f"schema type {tp!r} at {path} is not supported")
    raise _type_error(value, tp, path, ctx)


def _type_error(value: Any, tp: Any, path: str, ctx: ReadContext) -> TrainConfigError:
    return TrainConfigError(
        f"{ctx.where(path)}{path} = {_describe_value(value)}; expected {describe_type(tp)}")


def _describe_value(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def describe_type(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(describe_type(t) for t in typing.get_args(tp))
    if origin is list:
        return f"a list of {describe_type(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if isinstance(tp, type) and issubclass(tp, Section):
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            type(None): "null"}.get(tp, str(tp))


def section_to_dict(obj: Any) -> Any:
    """A section (and everything under it) back to plain YAML-able data."""
    if isinstance(obj, Section):
        return {f.name: section_to_dict(getattr(obj, f.name))
                for f in dataclasses.fields(obj) if f.init and not f.name.startswith("_")}
    if isinstance(obj, list):
        return [section_to_dict(item) for item in obj]
    if isinstance(obj, dict):
        return {key: section_to_dict(value) for key, value in obj.items()}
    return obj
