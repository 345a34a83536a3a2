"""JSON values to protobuf Struct/Value and back, the way every taskd
interface maps them: whole numbers come back as ints, not floats."""

from __future__ import annotations

import math
from typing import Any, Mapping

from google.protobuf import struct_pb2

_MAX_EXACT_INTEGER = 2**53


def to_struct(mapping: Mapping[str, Any], out: struct_pb2.Struct | None = None) -> struct_pb2.Struct:
    """A JSON object as a Struct; keys must be strings."""
    struct = out if out is not None else struct_pb2.Struct()
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise TypeError(f"params keys must be strings, got {key!r}")
        _fill(struct.fields[key], value)
    return struct


def to_value(value: Any, out: struct_pb2.Value | None = None) -> struct_pb2.Value:
    target = out if out is not None else struct_pb2.Value()
    _fill(target, value)
    return target


def _fill(target: struct_pb2.Value, value: Any) -> None:
    if value is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, (int, float)):
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise ValueError("NaN and infinite numbers have no JSON form")
        target.number_value = number
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, Mapping):
        to_struct(value, target.struct_value)
    elif isinstance(value, (list, tuple)):
        items = target.list_value
        items.Clear()
        for item in value:
            _fill(items.values.add(), item)
    else:
        raise TypeError(f"{type(value).__name__} is not JSON: {value!r}")


def from_struct(struct: struct_pb2.Struct) -> dict:
    return {key: from_value(value) for key, value in struct.fields.items()}


def from_value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if number.is_integer() and abs(number) <= _MAX_EXACT_INTEGER:
            return int(number)
        return number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return from_struct(value.struct_value)
    if kind == "list_value":
        return [from_value(item) for item in value.list_value.values]
    return None
