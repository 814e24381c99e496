"""The event schema, defined once.

``Event`` is both the wire format the tracker sends (camelCase JSON, the seed's BaseEvent
names) and the record that flows through the pipeline, the transport and the stores.
Fields marked *server* are owned by Sightline: whatever a client sends there is replaced.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from sightline.events import limits
from sightline.events.types import EventType, is_valid_event_type

Id = Annotated[str, msgspec.Meta(max_length=limits.MAX_ID_LENGTH)]
Url = Annotated[str, msgspec.Meta(max_length=limits.MAX_URL_LENGTH)]
Title = Annotated[str, msgspec.Meta(max_length=limits.MAX_TITLE_LENGTH)]
Short = Annotated[str, msgspec.Meta(max_length=limits.MAX_SHORT_STRING_LENGTH)]
UserAgent = Annotated[str, msgspec.Meta(max_length=limits.MAX_USER_AGENT_LENGTH)]
EventName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Millis = Annotated[int, msgspec.Meta(ge=0, le=10**14)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Percent = Annotated[float, msgspec.Meta(ge=0, le=100)]


class Event(msgspec.Struct, rename="camel", omit_defaults=True):
    """One behavioural event (the seed's BaseEvent, plus the fields the server owns)."""

    event_type: EventName
    event_id: Id = ""
    #: Client time of the event, milliseconds since the Unix epoch (server time if absent).
    timestamp: Millis = 0
    session_id: Id = ""
    visitor_id: Id = ""
    user_id: Id = ""
    page_url: Url = ""
    page_path: Url = ""
    page_title: Title = ""
    referrer: Url = ""
    user_agent: UserAgent = ""
    screen_resolution: Short = ""
    viewport: Short = ""
    device_type: Short = ""
    os: Short = ""
    browser: Short = ""
    browser_version: Short = ""
    utm_source: Short = ""
    utm_medium: Short = ""
    utm_campaign: Short = ""
    utm_term: Short = ""
    utm_content: Short = ""
    properties: dict[str, Any] = {}
    #: The visitor's analytics consent as the tracker knows it: granted, denied or unknown
    #: (undecided). Absent: granted when a visitorId is sent, unknown otherwise.
    consent: Literal["", "granted", "denied", "unknown"] = ""
    # -- server-owned fields ------------------------------------------------------------
    site_id: Short = ""
    #: When the collector received the event, milliseconds since the Unix epoch.
    server_timestamp: Millis = 0
    country: Short = ""
    region: Short = ""
    city: Short = ""
    referrer_source: Short = ""
    channel: Short = ""
    #: Seconds from the session's first event to this one (the seed's sessionDuration).
    session_duration: Annotated[int, msgspec.Meta(ge=0)] = 0


SERVER_FIELDS: tuple[str, ...] = (
    "site_id",
    "server_timestamp",
    "country",
    "region",
    "city",
    "referrer_source",
    "channel",
    "session_duration",
)


class Metadata(msgspec.Struct, rename="camel"):
    """What the tracker says about the request as a whole."""

    sent_at: Millis | None = None
    sdk_version: Short = ""


class CollectRequest(msgspec.Struct, rename="camel"):
    """The body of ``POST /api/v1/analytics/collect`` and ``/collect/batch``.

    Events stay undecoded (``Raw``) until each is validated on its own, so one bad event
    is rejected with its index while the good ones around it are kept.
    """

    events: list[msgspec.Raw]
    site_key: Annotated[str, msgspec.Meta(max_length=limits.MAX_SITE_KEY_LENGTH)] = ""
    metadata: Metadata = msgspec.field(default_factory=Metadata)


class DecodedCollectRequest(msgspec.Struct, rename="camel"):
    """A collect body whose events all decoded (:func:`decode_whole_request`)."""

    events: list[Event]
    site_key: Annotated[str, msgspec.Meta(max_length=limits.MAX_SITE_KEY_LENGTH)] = ""
    metadata: Metadata = msgspec.field(default_factory=Metadata)


# -- typed properties --------------------------------------------------------------------


class PageViewProperties(msgspec.Struct, rename="camel"):
    load_time: NonNegative | None = None
    ttfb: NonNegative | None = None
    fcp: NonNegative | None = None
    lcp: NonNegative | None = None
    fid: NonNegative | None = None
    cls: NonNegative | None = None


class ProductViewProperties(msgspec.Struct, rename="camel"):
    product_id: Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_ID_LENGTH)]
    product_name: Title = ""
    product_slug: Url = ""
    product_price: NonNegative | None = None
    category_id: Id = ""
    category_name: Title = ""
    #: direct | search | category | recommendation | related (others are kept as sent)
    source: Short = ""
    time_on_page: NonNegative | None = None


class AffiliateClickProperties(msgspec.Struct, rename="camel"):
    product_id: Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_ID_LENGTH)]
    product_name: Title = ""
    link_id: Id = ""
    platform: Short = ""
    price: NonNegative | None = None
    #: hero | sidebar | inline | sticky (others are kept as sent)
    position: Short = ""
    cta_text: Title = ""
    revenue: NonNegative | None = None


class ScrollDepthProperties(msgspec.Struct, rename="camel"):
    depth: Percent
    max_depth: Percent | None = None
    pixel_depth: NonNegative | None = None
    content_height: NonNegative | None = None


TYPED_PROPERTIES: dict[str, type[msgspec.Struct]] = {
    EventType.PAGE_VIEW: PageViewProperties,
    EventType.PRODUCT_VIEW: ProductViewProperties,
    EventType.AFFILIATE_CLICK: AffiliateClickProperties,
    EventType.SCROLL_DEPTH: ScrollDepthProperties,
}


class InvalidEvent(ValueError):
    """An event that breaks the schema or a limit; the message says where and why."""


_event_decoder = msgspec.json.Decoder(Event)
_request_decoder = msgspec.json.Decoder(CollectRequest)


def decode_request(body: bytes) -> CollectRequest:
    """Decode a collect body; raises ``msgspec.DecodeError``/``ValidationError``."""
    return _request_decoder.decode(body)


_whole_request_decoder = msgspec.json.Decoder(DecodedCollectRequest)


def decode_whole_request(body: bytes) -> DecodedCollectRequest | None:
    """The body with every event decoded in one pass (each still needs
    :func:`validate_event`), or None when any part fails to decode: then
    :func:`decode_request` and :func:`decode_event` say which, event by event."""
    try:
        return _whole_request_decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def decode_event(raw: bytes | msgspec.Raw) -> Event:
    """Decode and validate one event; raises ``InvalidEvent`` with a precise reason."""
    try:
        event = _event_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidEvent(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidEvent(f"malformed event: {exc}") from None
    validate_event(event)
    return event


def validate_event(event: Event) -> None:
    """The checks msgspec cannot express: event name, property limits, typed properties."""
    if not is_valid_event_type(event.event_type):
        raise InvalidEvent(
            f"invalid eventType {event.event_type!r}: use a built-in type or a name of "
            "letters, digits and _ . : - starting with a letter - at `$.eventType`"
        )
    _check_properties(event.properties)
    typed = TYPED_PROPERTIES.get(event.event_type)
    if typed is not None:
        try:
            msgspec.convert(event.properties, typed)
        except msgspec.ValidationError as exc:
            message = str(exc)
            if "`$" in message:
                message = message.replace("`$", "`$.properties", 1)
            else:
                message += " - at `$.properties`"
            raise InvalidEvent(message) from None


def _check_properties(properties: dict[str, Any]) -> None:
    """Raise InvalidEvent when ``properties`` break a limit. The common case, properties
    within every limit, is decided without building the paths the messages need."""
    if not _within_limits(properties):
        _explain_limits(properties)


_MAX_DEPTH = limits.MAX_PROPERTY_DEPTH
_MAX_PROPERTIES = limits.MAX_PROPERTIES
_MAX_KEY = limits.MAX_PROPERTY_KEY_LENGTH
_MAX_ARRAY = limits.MAX_PROPERTY_ARRAY_LENGTH
_MAX_STRING = limits.MAX_PROPERTY_STRING_LENGTH


def _within_limits(properties: dict[str, Any]) -> bool:
    """Whether ``properties`` keep every limit that :func:`_explain_limits` checks."""
    count = 0
    # (containers still to look into, with their depth: properties itself is depth 1)
    pending: list[tuple[Any, int]] = [(properties, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > _MAX_DEPTH:
            return False
        if isinstance(value, dict):
            count += len(value)
            if count > _MAX_PROPERTIES:
                return False
            for key in value:
                if len(key) > _MAX_KEY:
                    return False
            items = value.values()
        else:
            if len(value) > _MAX_ARRAY:
                return False
            items = value
        for item in items:
            if isinstance(item, str):
                if len(item) > _MAX_STRING:
                    return False
            elif isinstance(item, dict | list):
                pending.append((item, depth + 1))
    return True


def _explain_limits(properties: dict[str, Any]) -> None:
    """Raise InvalidEvent for the first limit ``properties`` break, with its path."""
    count = 0

    def walk(value: Any, path: str, depth: int) -> None:
        nonlocal count
        if isinstance(value, dict):
            if depth > limits.MAX_PROPERTY_DEPTH:
                raise InvalidEvent(
                    f"properties nested deeper than {limits.MAX_PROPERTY_DEPTH} - at `{path}`"
                )
            for key, item in value.items():
                count += 1
                if count > limits.MAX_PROPERTIES:
                    raise InvalidEvent(
                        f"more than {limits.MAX_PROPERTIES} properties - at `$.properties`"
                    )
                if len(key) > limits.MAX_PROPERTY_KEY_LENGTH:
                    raise InvalidEvent(
                        f"property name longer than {limits.MAX_PROPERTY_KEY_LENGTH} "
                        f"characters - at `{path}`"
                    )
                walk(item, f"{path}.{key}", depth + 1)
        elif isinstance(value, list):
            if depth > limits.MAX_PROPERTY_DEPTH:
                raise InvalidEvent(
                    f"properties nested deeper than {limits.MAX_PROPERTY_DEPTH} - at `{path}`"
                )
            if len(value) > limits.MAX_PROPERTY_ARRAY_LENGTH:
                raise InvalidEvent(
                    f"array longer than {limits.MAX_PROPERTY_ARRAY_LENGTH} - at `{path}`"
                )
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]", depth + 1)
        elif isinstance(value, str) and len(value) > limits.MAX_PROPERTY_STRING_LENGTH:
            raise InvalidEvent(
                f"string longer than {limits.MAX_PROPERTY_STRING_LENGTH} characters - at `{path}`"
            )

    walk(properties, "$.properties", 1)


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of one event and of the collect body (published at /api/v1/schema)."""
    (event_ref, request_ref), components = msgspec.json.schema_components(
        [Event, CollectRequest], ref_template="#/$defs/{name}"
    )
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "/api/v1/schema/event.json",
        "title": "Sightline event",
        "description": (
            "One behavioural event. eventType is a built-in type "
            f"({', '.join(sorted(t.value for t in EventType))}) or a custom name matching "
            "^[A-Za-z][A-Za-z0-9_.:-]{0,63}$. siteId, serverTimestamp, country, region, city, "
            "referrerSource, channel and sessionDuration are set by the server."
        ),
        **event_ref,
        "$defs": components,
    }
    components["CollectRequest"]["properties"]["events"] = {
        "type": "array",
        "items": {"$ref": "#/$defs/Event"},
        "maxItems": limits.MAX_BATCH_EVENTS,
    }
    components["Event"]["properties"]["eventType"]["anyOf"] = [
        {"enum": sorted(t.value for t in EventType)},
        {"pattern": "^[A-Za-z][A-Za-z0-9_.:\\-]{0,63}$"},
    ]
    schema["$defs"]["typedProperties"] = {
        name: msgspec.json.schema(struct) for name, struct in TYPED_PROPERTIES.items()
    }
    del request_ref
    return schema
