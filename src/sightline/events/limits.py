"""Hard limits on what one request and one event may hold.

They bound the memory and CPU one request can cost, so that no client can hurt the
collector. Every limit is enforced while decoding; a request over a limit is refused
with a precise error and nothing of it is stored.
"""

from __future__ import annotations

#: Largest request body the collector reads, in bytes (after any content encoding).
MAX_BODY_BYTES = 1_048_576
#: Most events in one request.
MAX_BATCH_EVENTS = 500

MAX_ID_LENGTH = 128
MAX_URL_LENGTH = 2048
MAX_TITLE_LENGTH = 512
MAX_USER_AGENT_LENGTH = 512
MAX_SHORT_STRING_LENGTH = 128
MAX_SITE_KEY_LENGTH = 64

#: Most property keys in one event, counted over every nesting level.
MAX_PROPERTIES = 64
#: Deepest nesting of objects and arrays inside ``properties`` (1 = flat).
MAX_PROPERTY_DEPTH = 3
MAX_PROPERTY_KEY_LENGTH = 64
MAX_PROPERTY_STRING_LENGTH = 1024
#: Longest array inside ``properties``.
MAX_PROPERTY_ARRAY_LENGTH = 64
