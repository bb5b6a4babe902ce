"""Protobuf messages (ModelConfig, ModelStatisticsResponse) as the JSON Triton's HTTP endpoints send."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

_INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}


def to_json(message: Message) -> dict[str, Any]:
    """The message as Triton renders it: proto field names, every field printed, 64-bit integers as numbers."""
    doc = json_format.MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    # Proto3 JSON writes 64-bit integers as strings; Triton writes numbers, and perf_analyzer reads them as numbers.
    _numbers(message.DESCRIPTOR, doc)
    return doc


def _numbers(descriptor: Descriptor, doc: dict[str, Any]) -> None:
    for field in descriptor.fields:
        value = doc.get(field.name)
        if value is None:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                value[key] = _convert(value_field, item)
        elif isinstance(value, list):  # a repeated field
            doc[field.name] = [_convert(field, item) for item in value]
        else:
            doc[field.name] = _convert(field, value)


def _convert(field: FieldDescriptor, value: Any) -> Any:
    if field.type in _INT64:
        return int(value)
    if field.message_type is not None and isinstance(value, dict):
        _numbers(field.message_type, value)
    return value
