"""Step ``defaults``: stamp what the server owns and fill what the client left out."""

from __future__ import annotations

from sightline.events import Event
from sightline.pipeline import Drop, RequestContext


def fill_defaults(event: Event, ctx: RequestContext) -> Event | Drop:
    event.site_id = ctx.site.id
    event.server_timestamp = ctx.received_at
    # Server-owned fields: whatever the client sent is replaced by the later steps.
    event.country = event.region = event.city = ""
    event.referrer_source = event.channel = ""
    if not event.event_id:
        event.event_id = ctx.new_event_id()
    if not event.timestamp:
        event.timestamp = ctx.received_at
    if not event.user_agent:
        event.user_agent = ctx.user_agent[:512]
    return event
