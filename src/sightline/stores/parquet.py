"""The cold tier: archived events as Parquet files, by site and UTC day, in a directory or
on S3 (through fsspec; s3fs for ``s3://``).

Layout: ``<location>/site=<site id>/day=<YYYY-MM-DD>/part-<uuid>.p3.parquet``, zstd,
sessions in the order of their first event and each session's events by time, the warm
``events`` columns with the same names (see :data:`COLD_SCHEMA`), except that ids are
packed (event and session ids: 16 bytes where the text is a canonical UUID or 32 hex
digits; the tracker's event ids ``<UUID>.<n>`` as the UUID and n; see :func:`pack`) and
``received_at`` is stored as milliseconds after ``ts``. Parts of earlier formats
(``part-<uuid>.parquet``, ids as text; ``.p2.parquet``, without counted event ids) are
read as they are. Every reader gives back the
warm form (:func:`read_cold`, :func:`sightline.query.tiers.cold_select`). A day may have
several parts (events that arrive for a day after it was archived are archived later in
a part of their own).

Which files exist is recorded in the warm store's ``cold_files`` manifest (the
:class:`Manifest`), never inferred from a listing: a file counts only once its manifest
row is committed, and that row is committed in the same transaction that deletes the
file's events from the warm store. A file without a manifest row (a crash between writing
and committing, or a rewrite that did not finish) is garbage, removed by
:meth:`ColdStore.reconcile`. So an event is always in exactly one tier.
"""

from __future__ import annotations

import logging
import os
import posixpath
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlglot import exp

from sightline.query.tiers import (
    COUNTED_IDS,
    HEX_SUFFIX,
    PACKED_IDS,
    PACKED_SUFFIX,
    PAGE_SUFFIX,
    RECEIVED_LAG,
    SEQ_SUFFIX,
    UUID_SUFFIX,
    cold_select,
    id_suffixes,
)

if TYPE_CHECKING:
    from sightline.config import Settings

log = logging.getLogger(__name__)

#: Directory of the cold tier under the data directory when ``cold_url`` is empty.
COLD_DIR = "cold"
PART_PREFIX = "part-"
PART_SUFFIX = ".parquet"
TMP_SUFFIX = ".tmp"
ZSTD_LEVEL = 9
#: Rows per Parquet row group (a day of a busy site holds several).
ROW_GROUP_ROWS = 256 * 1024

#: The archived columns: the warm ``events`` columns, in order, with their Arrow types
#: (columns added to ``events`` later are archived too, after these). ``ts`` and
#: ``received_at`` are written in milliseconds when that loses nothing.
COLD_SCHEMA = pa.schema(
    [
        ("site_id", pa.string()),
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("ts", pa.timestamp("us")),
        ("received_at", pa.timestamp("us")),
        ("session_id", pa.string()),
        ("visitor_id", pa.string()),
        ("user_id", pa.string()),
        ("page_url", pa.string()),
        ("page_path", pa.string()),
        ("page_title", pa.string()),
        ("referrer", pa.string()),
        ("referrer_source", pa.string()),
        ("channel", pa.string()),
        ("screen_resolution", pa.string()),
        ("viewport", pa.string()),
        ("device_type", pa.string()),
        ("os", pa.string()),
        ("browser", pa.string()),
        ("browser_version", pa.string()),
        ("country", pa.string()),
        ("region", pa.string()),
        ("city", pa.string()),
        ("utm_source", pa.string()),
        ("utm_medium", pa.string()),
        ("utm_campaign", pa.string()),
        ("utm_term", pa.string()),
        ("utm_content", pa.string()),
        ("product_id", pa.string()),
        ("revenue", pa.int64()),
        ("properties", pa.string()),
        ("session_duration", pa.int64()),
    ]
)
COLD_COLUMNS: tuple[str, ...] = tuple(COLD_SCHEMA.names)
#: Times stored in milliseconds when that loses nothing.
_TIMES = ("ts", "received_at")
#: Columns written without a dictionary: unique per row, or (a session's id, sorted
#: together) repeated in runs that zstd takes better than dictionary indices.
_PLAIN = tuple(
    f"{name}{suffix}"
    for name in ("event_id", "session_id")
    for suffix in id_suffixes(name)
    if suffix in (UUID_SUFFIX, HEX_SUFFIX, PAGE_SUFFIX)
)
#: The packed id columns.
_ID_PARTS = [f"{name}{suffix}" for name in PACKED_IDS for suffix in id_suffixes(name)]
#: Visitor ids get a dictionary when a file has fewer distinct visitors than this share
#: of its sessions (visitors with several sessions a day); else, like session ids, they
#: are stored in place, in runs.
VISITOR_DICTIONARY_SHARE = 0.8
#: Integer columns whose neighbouring values are close (times within a session, seconds
#: into it): delta-encoded, which also keeps them out of the dictionary.
_DELTA = ("ts", "received_at", RECEIVED_LAG, "session_duration", "event_id" + SEQ_SUFFIX)
#: Sort order inside a file: sessions by their first event, then a session's events by
#: time, so a session's repeated values (visitor, device, place, campaign) compress to
#: runs and neighbouring timestamps differ by little (``_session_start`` is computed).
SORT_KEYS = ("_session_start", "session_id", "ts", "event_id")
_UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_HEX_PATTERN = "^[0-9a-f]{32}$"
#: The tracker's event ids: its page load's UUID and the event's number on the page.
_COUNTED_PATTERN = _UUID_PATTERN[:-1] + r"\.[1-9][0-9]{0,17}$"
#: ASCII code -> nibble value for the characters 0-9 and a-f.
_NIBBLE = np.zeros(256, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DASHES = (8, 12, 16, 20)  # a dash goes before these hex digits of the 32


class ColdError(RuntimeError):
    """The cold tier refused or failed an operation (the message says why)."""


@dataclass(frozen=True, slots=True)
class ColdFile:
    """One manifest row."""

    path: str
    site_id: str
    day: date
    rows: int
    bytes: int


class Manifest(Protocol):
    """What the cold tier needs from the warm store (the ``cold_files`` table)."""

    def cold_files(
        self, site_id: str | None = None, first: date | None = None, last: date | None = None
    ) -> list[ColdFile]: ...

    def commit_archive(self, entry: ColdFile, event_ids: pa.Array) -> int:
        """Record ``entry`` and delete its events (``event_ids`` of its site and day)
        from the warm store in one transaction; returns the rows deleted, which must
        equal ``entry.rows`` (else nothing changes and ColdError is raised)."""
        ...

    def replace_cold_file(self, old_path: str, new: ColdFile | None) -> None:
        """Swap one manifest row for another (None: remove it), atomically."""
        ...


def conform(rows: pa.Table) -> pa.Table:
    """The archived form of warm rows: the known columns (:data:`COLD_SCHEMA`) first, in
    order and with their types, then any column a later schema added, as it is (so an
    archive never drops a column)."""
    known = {f.name: f for f in COLD_SCHEMA}
    missing = [name for name in COLD_COLUMNS if name not in rows.column_names]
    if missing:
        raise ColdError(f"rows without the column(s) {', '.join(missing)}")
    names = [*COLD_COLUMNS, *(n for n in rows.column_names if n not in known)]
    fields, columns = [], []
    for name in names:
        column = rows.column(name)
        if name in known:
            column = column.cast(known[name].type)
            if name in _TIMES:
                column = _to_milliseconds(column)
        elif isinstance(column.type, pa.ExtensionType):
            column = pa.chunked_array(
                [chunk.storage for chunk in column.chunks], column.type.storage_type
            )
        fields.append(pa.field(name, column.type))
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _to_milliseconds(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Microsecond times as milliseconds when no digit is lost (events carry whole
    milliseconds): about a byte less per value on disk. DuckDB reads either as TIMESTAMP."""
    try:
        return column.cast(pa.timestamp("ms"), safe=True)
    except pa.ArrowInvalid:
        return column


def _hex_to_bytes(text: pa.Array) -> pa.Array:
    """16-byte values of strings that are all 32 lowercase hex digits."""
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset :]
    digits = data[offsets[0] : offsets[0] + 32 * len(text)].reshape(-1, 32)
    nibbles = _NIBBLE[digits]
    packed = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), len(text), [None, pa.py_buffer(packed.tobytes())]
    )


def _bytes_to_hex(values: pa.Array, dashes: bool) -> pa.Array:
    """Lowercase hex text of 16-byte values (canonical UUID form with ``dashes``);
    nulls stay null."""
    storage = values.storage if isinstance(values, pa.ExtensionArray) else values
    raw = np.frombuffer(storage.buffers()[1], dtype=np.uint8)
    raw = raw[storage.offset * 16 : (storage.offset + len(storage)) * 16].reshape(-1, 16)
    digits = np.empty((len(storage), 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX_DIGITS[raw >> 4]
    digits[:, 1::2] = _HEX_DIGITS[raw & 15]
    if dashes:
        digits = np.insert(digits, _DASHES, ord("-"), axis=1)
    width = digits.shape[1]
    offsets = np.arange(0, (len(storage) + 1) * width, width, dtype=np.int32)
    text = pa.StringArray.from_buffers(
        len(storage), pa.py_buffer(offsets.tobytes()), pa.py_buffer(digits.tobytes())
    )
    return pc.if_else(pc.is_valid(storage), text, pa.scalar(None, pa.string()))


def pack_id(column: pa.ChunkedArray | pa.Array, counted: bool = False) -> dict[str, pa.Array]:
    """The stored columns of a string id column, by suffix (:func:`id_suffixes`):
    canonical lowercase UUIDs as Parquet UUIDs, 32 lowercase hex digits as 16 bytes, with
    ``counted`` ``<UUID>.<n>`` as the UUID and n, and anything else as it was."""
    text = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    text = text.cast(pa.string())
    is_uuid = pc.fill_null(pc.match_substring_regex(text, _UUID_PATTERN), False)
    is_hex = pc.fill_null(pc.match_substring_regex(text, _HEX_PATTERN), False)
    is_counted = pa.repeat(False, len(text))
    if counted:
        is_counted = pc.fill_null(pc.match_substring_regex(text, _COUNTED_PATTERN), False)
    zeros = pa.scalar("0" * 32, pa.string())
    uuid_text = pc.if_else(is_counted, pc.utf8_slice_codeunits(text, 0, 36), text)
    digits = pc.if_else(
        pc.or_(is_uuid, is_counted), pc.replace_substring(uuid_text, "-", ""), zeros
    )
    # Every value is now 32 characters long, so they lie back to back in the data buffer.
    raw = _hex_to_bytes(pc.if_else(is_hex, text, digits))
    null = pa.scalar(None, pa.binary(16))

    def as_uuid(mask: pa.Array) -> pa.Array:
        return pa.ExtensionArray.from_storage(pa.uuid(), pc.if_else(mask, raw, null))

    packed = pc.or_(pc.or_(is_uuid, is_hex), is_counted)
    parts = {"": pc.if_else(packed, pa.scalar(None, pa.string()), text)}
    if counted:
        number = pc.if_else(is_counted, pc.utf8_slice_codeunits(text, 37), pa.scalar("0"))
        parts[PAGE_SUFFIX] = as_uuid(is_counted)
        parts[SEQ_SUFFIX] = pc.if_else(
            is_counted, number.cast(pa.int64()), pa.scalar(None, pa.int64())
        )
    parts[UUID_SUFFIX] = as_uuid(is_uuid)
    parts[HEX_SUFFIX] = pc.if_else(is_hex, raw, null)
    return parts


def unpack(table: pa.Table) -> pa.Table:
    """Rows read from a cold file as the warm ``events`` columns: packed ids given back
    as the exact text that was archived (a table without packed ids is returned as is)."""
    for name in PACKED_IDS:
        if name + UUID_SUFFIX not in table.column_names:
            continue
        forms = [table.column(name).combine_chunks().cast(pa.string())]
        if name + PAGE_SUFFIX in table.column_names:
            pages = table.column(name + PAGE_SUFFIX).combine_chunks()
            seqs = table.column(name + SEQ_SUFFIX).combine_chunks().cast(pa.string())
            page_text = _bytes_to_hex(pages, dashes=True)
            forms.append(pc.binary_join_element_wise(page_text, seqs, "."))
        forms.append(_bytes_to_hex(table.column(name + UUID_SUFFIX).combine_chunks(), dashes=True))
        forms.append(_bytes_to_hex(table.column(name + HEX_SUFFIX).combine_chunks(), dashes=False))
        at = table.column_names.index(name)
        table = table.set_column(at, name, pc.coalesce(*forms))
        parts = [name + suffix for suffix in id_suffixes(name) if suffix]
        table = table.drop_columns([p for p in parts if p in table.column_names])
    if RECEIVED_LAG in table.column_names:
        lag = table.column(RECEIVED_LAG)
        if lag.null_count < len(lag):
            ts = table.column("ts")
            unit = ts.type.unit
            late = pc.add(ts, lag.cast(pa.duration("ms")).cast(pa.duration(unit)))
            received = pc.coalesce(table.column("received_at").cast(ts.type), late)
            at = table.column_names.index("received_at")
            table = table.set_column(at, "received_at", received)
        table = table.drop_columns([RECEIVED_LAG])
    return table


def pack(table: pa.Table) -> pa.Table:
    """The stored form of conformed rows: each of :data:`PACKED_IDS` as its columns
    (:func:`id_suffixes`), and ``received_at`` as milliseconds after ``ts`` when both are
    whole milliseconds."""
    for name in PACKED_IDS:
        parts = pack_id(table.column(name), counted=name in COUNTED_IDS)
        at = table.column_names.index(name)
        table = table.set_column(at, name, parts.pop(""))
        for offset, (suffix, values) in enumerate(parts.items(), start=1):
            table = table.add_column(at + offset, name + suffix, values)
    ts, received = table.column("ts"), table.column("received_at")
    lag = pa.nulls(table.num_rows, pa.int64())
    if ts.type == received.type == pa.timestamp("ms") and received.null_count == 0:
        lag = pc.subtract(received, ts).cast(pa.int64())
        received = pa.nulls(table.num_rows, received.type)
    at = table.column_names.index("received_at")
    table = table.set_column(at, "received_at", received)
    return table.add_column(at + 1, RECEIVED_LAG, lag)


def read_cold(source: Any, columns: Sequence[str] | None = None) -> pa.Table:
    """Rows of a cold file (an open file or a path), either format, as the warm columns
    (``columns``: only these of them)."""
    parquet = pq.ParquetFile(source)
    names = parquet.schema_arrow.names
    wanted = None
    if columns is not None:
        wanted = [n for c in columns for n in (c + x for x in id_suffixes(c)) if n in names]
    return unpack(parquet.read(columns=wanted))


def _sorted(table: pa.Table) -> pa.Table:
    """``table`` in :data:`SORT_KEYS` order (sessions by their first event)."""
    rows = table.append_column("_row", pa.array(np.arange(table.num_rows), pa.int64()))
    starts = rows.group_by("session_id").aggregate([("ts", "min")])
    starts = starts.rename_columns(["session_id", "_session_start"])
    keyed = rows.select(["_row", "session_id", "ts", "event_id"]).join(
        starts, "session_id", join_type="left outer"
    )
    if keyed.num_rows != table.num_rows:
        raise ColdError("sorting changed the number of rows")
    order = keyed.sort_by([(k, "ascending") for k in SORT_KEYS]).column("_row")
    return table.take(order)


def day_path(site_id: str, day: date) -> str:
    return f"site={site_id}/day={day.isoformat()}"


def open_filesystem(url: str, endpoint_url: str = "") -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, root) for a directory or an ``s3://bucket/prefix`` URL. S3
    credentials come from the usual AWS environment variables (or the instance role);
    ``endpoint_url`` points at an S3-compatible server."""
    if url.startswith("s3://"):
        options: dict[str, Any] = {}
        if endpoint_url:
            options["endpoint_url"] = endpoint_url
        fs = fsspec.filesystem("s3", **options)
        return fs, url[len("s3://") :].rstrip("/")
    if "://" in url and not url.startswith("file://"):
        raise ColdError(f"cold_url must be a directory or an s3:// URL, not {url!r}")
    root = Path(url.removeprefix("file://")).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return fsspec.filesystem("file"), root.as_posix()


class ColdStore:
    """Archived events: writing, listing and reading Parquet files, and subject-level
    export and erasure for the privacy features."""

    def __init__(self, url: str, manifest: Manifest, *, endpoint_url: str = "") -> None:
        self.url = url
        self.manifest = manifest
        self.fs, self.root = open_filesystem(url, endpoint_url)
        self.remote = url.startswith("s3://")
        #: Held while files are written and committed (archiving, erasure), so
        #: reconciling never takes a file about to be committed for garbage.
        self.lock = threading.RLock()

    # -- locations -------------------------------------------------------------------

    def _full(self, rel: str) -> str:
        """The filesystem path of a manifest path."""
        return posixpath.join(self.root, rel)

    def location(self, rel: str) -> str:
        """What DuckDB reads for a manifest path (a local path or an ``s3://`` URL)."""
        return f"s3://{self._full(rel)}" if self.remote else self._full(rel)

    def attach(self, connection: Any) -> None:
        """Let a DuckDB connection read the cold location (S3 through fsspec, as DuckDB's
        own S3 support needs an extension download)."""
        if self.remote:
            connection.register_filesystem(self.fs)

    # -- the query layer ---------------------------------------------------------------

    def source(
        self, site_id: str | None, lo: datetime | None, hi: datetime | None
    ) -> exp.Expr | None:
        """A SELECT of the archived events of ``site_id`` (None: every site) that can lie
        in [lo, hi) (None: unbounded), reading only the files of those days; None when
        no file can hold such events."""
        first = lo.date() if lo is not None else None
        last = None
        if hi is not None:
            last = hi.date() if hi.time() != datetime.min.time() else hi.date() - timedelta(days=1)
        files = self.manifest.cold_files(site_id, first, last)
        if not files:
            return None
        return cold_select([self.location(f.path) for f in files])

    # -- writing (the archiver) --------------------------------------------------------

    def write_part(self, site_id: str, day: date, rows: pa.Table) -> tuple[ColdFile, pa.Array]:
        """Write one part of a day (sorted, zstd), durably, and read it back: returns its
        manifest entry and the event ids read back from the file. The file is not
        visible to queries until the entry is committed."""
        table = pack(_sorted(conform(rows)))
        rel = f"{day_path(site_id, day)}/{PART_PREFIX}{uuid.uuid4().hex}{PACKED_SUFFIX}"
        full = self._full(rel)
        self.fs.makedirs(posixpath.dirname(full), exist_ok=True)
        if self.remote:
            # An S3 PUT is atomic: the object appears whole or not at all.
            with self.fs.open(full, "wb") as fh:
                _write_parquet(table, fh)
        else:
            tmp = full + TMP_SUFFIX
            with open(tmp, "wb") as fh:
                _write_parquet(table, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, full)
            _fsync_dir(posixpath.dirname(full))
        size = int(self.fs.size(full))
        with self.fs.open(full, "rb") as fh:
            back = read_cold(fh, columns=["event_id"])
        if back.num_rows != table.num_rows:
            self.fs.rm(full)
            raise ColdError(f"{rel}: wrote {table.num_rows} rows but read back {back.num_rows}")
        entry = ColdFile(rel, site_id, day, table.num_rows, size)
        return entry, back.column("event_id").combine_chunks()

    def remove(self, rel: str) -> None:
        full = self._full(rel)
        if self.fs.exists(full):
            self.fs.rm(full)

    def _listing(self) -> Iterator[str]:
        """Every part and temporary file under the location (manifest-relative paths)."""
        if not self.fs.exists(self.root):
            return
        prefix = self.root.rstrip("/") + "/"
        for found in self.fs.find(self.root):
            name = posixpath.basename(found)
            ours = name.startswith(PART_PREFIX) and name.endswith(
                (PART_SUFFIX, PART_SUFFIX + TMP_SUFFIX)
            )
            if ours and found.startswith(prefix):
                yield found[len(prefix) :]

    def reconcile(self) -> list[str]:
        """Delete files the manifest does not list (left by an interrupted archive or
        rewrite); returns their paths. Run only while no archive or rewrite is under way."""
        removed = []
        with self.lock:
            known = {f.path for f in self.manifest.cold_files()}
            for rel in list(self._listing()):
                if rel not in known:
                    self.remove(rel)
                    removed.append(rel)
        if removed:
            log.info("cold tier: removed %d unrecorded file(s)", len(removed))
        return removed

    # -- data subjects (privacy) ---------------------------------------------------------

    def _subject_mask(
        self, table: pa.Table, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> pa.ChunkedArray:
        mask = pc.is_in(table.column("visitor_id"), pa.array(list(visitor_ids), pa.string()))
        if user_ids:
            users = pc.is_in(table.column("user_id"), pa.array(list(user_ids), pa.string()))
            mask = pc.or_(mask, users)
        return pc.fill_null(mask, False)

    def _subject_files(
        self, site_id: str | None, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> Iterator[tuple[ColdFile, pa.Table, pa.ChunkedArray]]:
        """(file, its rows, which rows are the subject's) for each file holding any."""
        visitors = [v for v in visitor_ids if v]
        users = [u for u in user_ids if u]
        if not visitors and not users:
            return
        for entry in self.manifest.cold_files(site_id):
            with self.fs.open(self._full(entry.path), "rb") as fh:
                keys = read_cold(fh, columns=["visitor_id", "user_id"])
            if not pc.any(self._subject_mask(keys, visitors, users)).as_py():
                continue
            with self.fs.open(self._full(entry.path), "rb") as fh:
                table = read_cold(fh)
            yield entry, table, self._subject_mask(table, visitors, users)

    def export_subject(
        self, site_id: str | None, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Every archived event of these visitors or users (of one site, or of every
        site for None), as rows with the warm ``events`` columns, in (ts, event id) order."""
        rows: list[dict[str, Any]] = []
        for _, table, mask in self._subject_files(site_id, visitor_ids, user_ids):
            rows.extend(table.filter(mask).to_pylist())
        rows.sort(key=lambda r: (r["ts"], r["event_id"]))
        return rows

    def erase_subject(
        self, site_id: str | None, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> int:
        """Rewrite every file holding events of these visitors or users without them
        (each atomically: new file, manifest swap, old file deleted); returns the rows
        removed."""
        removed = 0
        with self.lock:
            # One file at a time (the manifest is listed once, before any rewrite).
            for entry, table, mask in self._subject_files(site_id, visitor_ids, user_ids):
                kept = table.filter(pc.invert(mask))
                if kept.num_rows:
                    new, _ = self.write_part(entry.site_id, entry.day, kept)
                    self.manifest.replace_cold_file(entry.path, new)
                else:
                    self.manifest.replace_cold_file(entry.path, None)
                self.remove(entry.path)
                removed += table.num_rows - kept.num_rows
        return removed

    def drop_before(self, site_id: str, day: date) -> int:
        """Delete the site's archived days before ``day`` (retention); returns the rows
        dropped. Each file leaves the manifest first, then the file goes."""
        dropped = 0
        with self.lock:
            for entry in self.manifest.cold_files(site_id, last=day - timedelta(days=1)):
                self.manifest.replace_cold_file(entry.path, None)
                self.remove(entry.path)
                dropped += entry.rows
        return dropped

    # -- figures -----------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        files = self.manifest.cold_files()
        return {
            "location": self.url,
            "files": len(files),
            "rows": sum(f.rows for f in files),
            "bytes": sum(f.bytes for f in files),
            "days": len({(f.site_id, f.day) for f in files}),
        }


def _visitors_repeat(table: pa.Table) -> bool:
    """Whether visitors come back in more than one session of this file often enough for
    a dictionary of their 16-byte ids to beat storing each session's id in place."""
    if "visitor_id" not in table.column_names or "session_id" not in table.column_names:
        return True
    sessions = pc.count_distinct(table.column("session_id")).as_py()
    visitors = pc.count_distinct(table.column("visitor_id")).as_py()
    return bool(visitors < VISITOR_DICTIONARY_SHARE * sessions)


def _write_parquet(table: pa.Table, sink: Any) -> None:
    """Write packed rows (:func:`pack`), choosing the visitor ids' encoding first."""
    plain = set(_PLAIN) | set(_DELTA)
    if not _visitors_repeat(unpack(table.select(_ID_PARTS))):
        plain |= {"visitor_id" + UUID_SUFFIX, "visitor_id" + HEX_SUFFIX}
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        row_group_size=ROW_GROUP_ROWS,
        use_dictionary=[c for c in table.column_names if c not in plain],
        column_encoding={c: "DELTA_BINARY_PACKED" for c in _DELTA if c in table.column_names},
        write_statistics=True,
    )


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def cold_location(settings: Settings) -> str:
    """The configured cold location (default: ``<data_dir>/cold``)."""
    return settings.cold_url or (settings.data_path / COLD_DIR).as_posix()


def open_cold(settings: Settings, store: Any) -> ColdStore | None:
    """The cold tier over the warm ``store``'s manifest, or None where it cannot be
    queried: the PostgreSQL store has no Parquet reader (docs/cold.md)."""
    if getattr(store, "engine", "") != "duckdb":
        return None
    cold = ColdStore(cold_location(settings), store, endpoint_url=settings.cold_s3_endpoint_url)
    if cold.remote:
        store.register_filesystem(cold.fs)
    store.cold = cold
    return cold
