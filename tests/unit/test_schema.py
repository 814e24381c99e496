"""The event schema: types, limits, typed properties, published JSON Schema."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sightline.events import (
    BUILTIN_EVENT_TYPES,
    EventType,
    InvalidEvent,
    decode_event,
    decode_request,
    event_json_schema,
    limits,
    schema,
)

SEED_TYPES = [
    "page_view",
    "page_exit",
    "scroll_depth",
    "product_view",
    "product_hover",
    "product_click",
    "product_compare",
    "product_wishlist",
    "affiliate_click",
    "affiliate_hover",
    "copied_coupon",
    "shared_product",
    "search_query",
    "search_filter",
    "search_sort",
    "zero_results",
    "click",
    "hover",
    "focus",
    "blur",
    "form_start",
    "form_submit",
    "form_abandon",
    "session_start",
    "session_end",
    "heartbeat",
    "idle_start",
    "idle_end",
    "js_error",
    "api_error",
    "slow_page",
]


def encode(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_every_seed_event_type_is_built_in() -> None:
    assert set(SEED_TYPES) <= BUILTIN_EVENT_TYPES
    required = {
        "product_view": {"productId": "p"},
        "affiliate_click": {"productId": "p"},
        "scroll_depth": {"depth": 50},
    }
    for name in SEED_TYPES:
        event = {"eventType": name, "properties": required.get(name, {})}
        assert decode_event(encode(event)).event_type == name


def test_base_event_fields_round_trip_in_camel_case() -> None:
    raw = {
        "eventId": "e-1",
        "eventType": "page_view",
        "timestamp": 1_700_000_000_000,
        "sessionId": "s",
        "visitorId": "v",
        "userId": "u",
        "pageUrl": "https://a.example/x",
        "pagePath": "/x",
        "pageTitle": "X",
        "referrer": "https://google.com/",
        "userAgent": "Mozilla/5.0",
        "screenResolution": "1920x1080",
        "viewport": "1200x800",
        "deviceType": "desktop",
        "os": "Linux",
        "browser": "Firefox",
        "browserVersion": "120",
        "utmSource": "news",
        "utmMedium": "email",
        "utmCampaign": "c",
        "utmTerm": "t",
        "utmContent": "k",
        "properties": {"loadTime": 120.5},
    }
    event = decode_event(encode(raw))
    assert json.loads(msgspec.json.encode(event)) == raw


@pytest.mark.parametrize("name", ["signup", "Checkout.Step-2", "video:play", "a" * 64])
def test_custom_event_names_are_accepted(name: str) -> None:
    assert decode_event(encode({"eventType": name})).event_type == name


@pytest.mark.parametrize("name", ["", "2fast", "has space", "<script>", "a" * 65, "ü"])
def test_malformed_event_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidEvent, match=r"eventType"):
        decode_event(encode({"eventType": name}))


@pytest.mark.parametrize(
    ("event", "where"),
    [
        ({"eventType": "page_view", "timestamp": "yesterday"}, "$.timestamp"),
        ({"eventType": "page_view", "timestamp": -1}, "$.timestamp"),
        ({"eventType": "page_view", "pageUrl": "x" * (limits.MAX_URL_LENGTH + 1)}, "$.pageUrl"),
        (
            {"eventType": "page_view", "pageTitle": "t" * (limits.MAX_TITLE_LENGTH + 1)},
            "$.pageTitle",
        ),
        ({"eventType": "page_view", "eventId": "i" * (limits.MAX_ID_LENGTH + 1)}, "$.eventId"),
        ({"eventType": "page_view", "properties": []}, "$.properties"),
        ({"eventType": "product_view", "properties": {"productName": "x"}}, "$.properties"),
        ({"eventType": "product_view", "properties": {"productId": 7}}, "$.properties.productId"),
        (
            {"eventType": "affiliate_click", "properties": {"productId": "p", "price": -1}},
            "$.properties.price",
        ),
        ({"eventType": "scroll_depth", "properties": {"depth": 101}}, "$.properties.depth"),
        ({"eventType": "page_view", "properties": {"ttfb": "fast"}}, "$.properties.ttfb"),
    ],
)
def test_wrong_types_and_limits_name_the_field(event: dict[str, object], where: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_event(encode(event))
    assert f"`{where}`" in str(info.value)


def test_property_limits() -> None:
    too_many = {f"k{i}": i for i in range(limits.MAX_PROPERTIES + 1)}
    too_deep = {"a": {"b": {"c": {"d": 1}}}}
    long_key = {"k" * (limits.MAX_PROPERTY_KEY_LENGTH + 1): 1}
    long_value = {"k": "v" * (limits.MAX_PROPERTY_STRING_LENGTH + 1)}
    long_array = {"k": list(range(limits.MAX_PROPERTY_ARRAY_LENGTH + 1))}
    for props, message in [
        (too_many, "more than"),
        (too_deep, "nested deeper"),
        (long_key, "property name"),
        (long_value, "string longer"),
        (long_array, "array longer"),
    ]:
        with pytest.raises(InvalidEvent, match=message):
            decode_event(encode({"eventType": "signup", "properties": props}))
    ok = {"a": {"b": [1, 2, "x"]}, "c": {"d": {"e": 1}}}
    assert decode_event(encode({"eventType": "signup", "properties": ok})).properties == ok


# Values around every limit: keys and strings near their longest, containers near their
# longest and deepest, dicts near the most keys.
_keys = st.one_of(
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(["k" * (limits.MAX_PROPERTY_KEY_LENGTH + d) for d in (0, 1)]),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(["v" * (limits.MAX_PROPERTY_STRING_LENGTH + d) for d in (0, 1)]),
    st.text(max_size=3),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=limits.MAX_PROPERTY_ARRAY_LENGTH + 2),
        st.dictionaries(_keys, inner, max_size=limits.MAX_PROPERTIES // 2 + 1),
    ),
    max_leaves=limits.MAX_PROPERTIES + 8,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=limits.MAX_PROPERTIES // 2 + 1))
def test_the_fast_property_check_agrees_with_the_explaining_one(props: dict) -> None:
    """Properties are checked without building paths; the walk that names the path runs
    only for properties over a limit, and must then find one."""
    try:
        schema._explain_limits(props)
        explained = True
    except InvalidEvent:
        explained = False
    assert schema._within_limits(props) is explained


def test_typed_properties_keep_extra_keys() -> None:
    event = decode_event(
        encode(
            {
                "eventType": "affiliate_click",
                "properties": {"productId": "p1", "price": 9.5, "position": "hero", "extra": True},
            }
        )
    )
    assert event.properties["extra"] is True


def test_request_envelope_defers_event_decoding() -> None:
    body = encode(
        {
            "siteKey": "pk",
            "events": [{"eventType": "page_view"}, {"bad": 1}],
            "metadata": {"sentAt": 5, "sdkVersion": "1.0.0"},
        }
    )
    request = decode_request(body)
    assert request.site_key == "pk" and request.metadata.sent_at == 5
    assert len(request.events) == 2
    decode_event(request.events[0])
    with pytest.raises(InvalidEvent, match="eventType"):
        decode_event(request.events[1])


def test_json_schema_describes_every_field_and_type() -> None:
    schema = event_json_schema()
    event = schema["$defs"]["Event"]
    for field in (
        "eventId",
        "eventType",
        "timestamp",
        "sessionId",
        "visitorId",
        "pageUrl",
        "utmCampaign",
        "properties",
        "siteId",
        "serverTimestamp",
        "country",
    ):
        assert field in event["properties"]
    assert event["required"] == ["eventType"]
    enum = event["properties"]["eventType"]["anyOf"][0]["enum"]
    assert set(enum) == {t.value for t in EventType}
    request = schema["$defs"]["CollectRequest"]
    assert request["properties"]["events"]["maxItems"] == limits.MAX_BATCH_EVENTS
    assert set(schema["$defs"]["typedProperties"]) == {
        "page_view",
        "product_view",
        "affiliate_click",
        "scroll_depth",
    }
    json.dumps(schema)  # serialisable as published
