"""The event vocabulary: every event type the tracker and the API speak of."""

from __future__ import annotations

import enum
import re


class EventType(enum.StrEnum):
    """The built-in event types. Any other name matching CUSTOM_EVENT_NAME is a custom event."""

    # Page & navigation
    PAGE_VIEW = "page_view"
    PAGE_EXIT = "page_exit"
    SCROLL_DEPTH = "scroll_depth"
    # Product engagement
    PRODUCT_VIEW = "product_view"
    PRODUCT_HOVER = "product_hover"
    PRODUCT_CLICK = "product_click"
    PRODUCT_COMPARE = "product_compare"
    PRODUCT_WISHLIST = "product_wishlist"
    # Conversion
    AFFILIATE_CLICK = "affiliate_click"
    AFFILIATE_HOVER = "affiliate_hover"
    COPIED_COUPON = "copied_coupon"
    SHARED_PRODUCT = "shared_product"
    # Search
    SEARCH_QUERY = "search_query"
    SEARCH_FILTER = "search_filter"
    SEARCH_SORT = "search_sort"
    ZERO_RESULTS = "zero_results"
    # User interaction
    CLICK = "click"
    HOVER = "hover"
    FOCUS = "focus"
    BLUR = "blur"
    FORM_START = "form_start"
    FORM_SUBMIT = "form_submit"
    FORM_ABANDON = "form_abandon"
    # Session
    SESSION_START = "session_start"
    SESSION_END = "session_end"
    HEARTBEAT = "heartbeat"
    IDLE_START = "idle_start"
    IDLE_END = "idle_end"
    # Errors & performance
    JS_ERROR = "js_error"
    API_ERROR = "api_error"
    SLOW_PAGE = "slow_page"
    # Experiments
    EXPERIMENT_EXPOSURE = "experiment_exposure"


BUILTIN_EVENT_TYPES: frozenset[str] = frozenset(t.value for t in EventType)

#: Custom event names: a letter, then letters, digits, ``_ . : -``; at most 64 characters.
CUSTOM_EVENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.:\-]{0,63}$")

#: Event types that count as a click in the realtime view.
CLICK_TYPES: frozenset[str] = frozenset(
    {EventType.CLICK, EventType.PRODUCT_CLICK, EventType.AFFILIATE_CLICK}
)

#: Event types that are not interactions: they never make a session non-bounced.
PASSIVE_TYPES: frozenset[str] = frozenset(
    {
        EventType.SESSION_START,
        EventType.SESSION_END,
        EventType.HEARTBEAT,
        EventType.IDLE_START,
        EventType.IDLE_END,
        EventType.PAGE_EXIT,
        EventType.JS_ERROR,
        EventType.API_ERROR,
        EventType.SLOW_PAGE,
        EventType.SCROLL_DEPTH,
        EventType.EXPERIMENT_EXPOSURE,
    }
)


def is_valid_event_type(name: str) -> bool:
    """True for a built-in type or a well-formed custom event name."""
    return name in BUILTIN_EVENT_TYPES or CUSTOM_EVENT_NAME.match(name) is not None
