"""The privacy service: one object the API, the control endpoint and the CLI share.

It holds the tiers (:mod:`sightline.privacy.tiers`), the tombstones, the privacy key and
(in the embedded server) the writer, and offers :meth:`PrivacyService.export`,
:meth:`PrivacyService.erase` and :meth:`PrivacyService.apply_retention`.
"""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sightline.admin import AdminError
from sightline.privacy.audit import load_privacy_key
from sightline.privacy.tiers import TierRegistry, build_registry
from sightline.privacy.tombstones import Tombstones

if TYPE_CHECKING:
    from sightline.config import Settings
    from sightline.privacy.retention import ColdExpiry
    from sightline.sites import Site
    from sightline.stores.base import Store
    from sightline.stores.parquet import ColdStore
    from sightline.stores.redis_hot import RedisHotStore
    from sightline.workers.ingest import Writer

log = logging.getLogger(__name__)

#: Longest id accepted for a subject (as the event schema's ids).
MAX_ID_LENGTH = 128


@dataclass
class Subject:
    """Whose data: visitor ids and user ids, on some sites (all when ``site_ids`` is the
    list of every site and ``everywhere`` is set)."""

    sites: list[Site]
    visitor_ids: list[str]
    user_ids: list[str]
    everywhere: bool = True
    #: Visitor ids found through the user ids (the user's events carried them).
    linked_visitor_ids: list[str] = field(default_factory=list)

    @property
    def all_visitor_ids(self) -> list[str]:
        return list(dict.fromkeys([*self.visitor_ids, *self.linked_visitor_ids]))

    def describe(self) -> dict[str, Any]:
        return {
            "visitorIds": self.visitor_ids,
            "userIds": self.user_ids,
            "linkedVisitorIds": self.linked_visitor_ids,
            "sites": [s.id for s in self.sites],
            "allSites": self.everywhere,
        }


class PrivacyService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        registry: TierRegistry,
        *,
        writer: Writer | None = None,
        key: bytes | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.writer = writer
        self.key = key if key is not None else load_privacy_key(settings, store)
        #: Deletes a site's archived days before a day (the cold tier's, when there is
        #: one): (site id, first day kept) -> events deleted. The retention job calls it.
        self.expire_cold: ColdExpiry | None = None
        #: The cold tier (archived events), when there is one: erasure corrects the
        #: rollups of the archived days it touches from warm and archived events.
        self.cold: ColdStore | None = None
        self.tombstones = (
            writer.tombstones
            if writer is not None
            else Tombstones(store, self.key, settings.tombstone_days)
        )

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        *,
        writer: Writer | None = None,
        hot: RedisHotStore | None = None,
        caches: Sequence[Callable[[], None]] = (),
        cold: ColdStore | None = None,
    ) -> PrivacyService:
        registry = build_registry(settings, store, hot=hot, caches=caches, cold=cold)
        service = cls(settings, store, registry, writer=writer)
        if cold is not None:
            service.expire_cold = cold.drop_before
            service.cold = cold
        return service

    # -- the subject ---------------------------------------------------------------------

    def subject(
        self,
        visitor_ids: Sequence[str] = (),
        user_ids: Sequence[str] = (),
        site: str | None = None,
    ) -> Subject:
        """Check and resolve a request's subject; raises AdminError."""
        visitors = _clean_ids(visitor_ids, "visitorId")
        users = _clean_ids(user_ids, "userId")
        if not visitors and not users:
            raise AdminError("missing_subject", "give a visitorId or a userId")
        if site:
            found = self.store.get_site(site.strip()) or self.store.get_site(site.strip().lower())
            if found is None:
                raise AdminError("unknown_site", f"no site {site!r}", 404)
            sites, everywhere = [found], False
        else:
            sites, everywhere = self.store.list_sites(), True
        subject = Subject(sites, visitors, users, everywhere)
        if users:
            subject.linked_visitor_ids = self._linked_visitors(subject)
        return subject

    def _linked_visitors(self, subject: Subject) -> list[str]:
        """Visitor ids that came with the subject's user ids, in any tier."""
        linked: dict[str, None] = {}
        users = set(subject.user_ids)
        for site in subject.sites:
            for tier in self.registry:
                for record in tier.export_subject(site.id, [], subject.user_ids):
                    user = record.get("user_id", record.get("userId"))
                    visitor = record.get("visitor_id", record.get("visitorId"))
                    if user in users and visitor and visitor not in subject.visitor_ids:
                        linked[visitor] = None
        return list(linked)

    # -- export and erasure ----------------------------------------------------------------

    def export(self, subject: Subject, actor: str) -> tuple[bytes, dict[str, Any]]:
        from sightline.privacy.export import export_subject

        return export_subject(self, subject, actor)

    def erase(self, subject: Subject, actor: str) -> dict[str, Any]:
        from sightline.privacy.erasure import erase_subject

        return erase_subject(self, subject, actor)

    def apply_retention(self, site: str | None = None, actor: str = "retention") -> dict[str, Any]:
        from sightline.privacy.retention import apply_retention

        return apply_retention(self, site, actor)

    @contextlib.contextmanager
    def writer_paused(self, *, forget_sessions: bool = True) -> Iterator[None]:
        """No batch is written meanwhile, and the next one sees the latest tombstones."""
        if self.writer is None:
            self.tombstones.refresh()
            yield
            return
        with self.writer.write_lock:
            self.writer.tombstones.refresh()
            yield
            if forget_sessions:  # in-memory session spans hold visitor ids
                self.writer.sessions = self.writer._sessionizer()


def _clean_ids(values: Sequence[str], name: str) -> list[str]:
    cleaned: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise AdminError("invalid_subject", f"{name} must be a non-empty string")
        if len(value) > MAX_ID_LENGTH or any(ord(c) < 32 for c in value):
            raise AdminError(
                "invalid_subject", f"{name} has at most {MAX_ID_LENGTH} printable characters"
            )
        cleaned.append(value)
    return list(dict.fromkeys(cleaned))


# -- operations shared by the control endpoint and the CLI ---------------------------------


def _subject_of(service: PrivacyService, args: dict[str, Any]) -> Subject:
    return service.subject(
        args.get("visitorIds") or [], args.get("userIds") or [], args.get("site")
    )


def _export_op(service: PrivacyService, args: dict[str, Any]) -> dict[str, Any]:
    archive, manifest = service.export(_subject_of(service, args), args.get("actor") or "cli")
    return {"manifest": manifest, "archive": base64.b64encode(archive).decode()}


def _site_privacy_op(service: PrivacyService, args: dict[str, Any]) -> dict[str, Any]:
    from sightline.privacy.retention import set_site_privacy

    return set_site_privacy(
        service, args["site"], args.get("consentMode"), args.get("retentionDays"), "cli"
    )


#: Privacy operations of the control endpoint and the CLI: name -> (service, args) -> result.
OPERATIONS: dict[str, Callable[[PrivacyService, dict[str, Any]], Any]] = {
    "gdpr-export": _export_op,
    "gdpr-erase": lambda p, a: p.erase(_subject_of(p, a), a.get("actor") or "cli"),
    "retention": lambda p, a: p.apply_retention(a.get("site"), "cli"),
    "site-privacy": _site_privacy_op,
}
