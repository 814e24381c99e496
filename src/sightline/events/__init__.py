"""What an event is: its types, its schema and its limits."""

from sightline.events.schema import (
    CollectRequest,
    Event,
    InvalidEvent,
    Metadata,
    decode_event,
    decode_request,
    decode_whole_request,
    event_json_schema,
    validate_event,
)
from sightline.events.types import BUILTIN_EVENT_TYPES, EventType, is_valid_event_type

__all__ = [
    "BUILTIN_EVENT_TYPES",
    "CollectRequest",
    "Event",
    "EventType",
    "InvalidEvent",
    "Metadata",
    "decode_event",
    "decode_request",
    "decode_whole_request",
    "event_json_schema",
    "is_valid_event_type",
    "validate_event",
]
