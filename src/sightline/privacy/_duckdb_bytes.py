"""Making erased rows leave the DuckDB file's bytes, not only its tables.

A DELETE in DuckDB marks rows deleted; their bytes stay in the row group until the row
group is rewritten, and a rewritten row group's old blocks go to the free list with
their contents intact. So after an erasure deletes a subject's rows:

1. every row group that held one of them (and every row group sharing a block with
   those: DuckDB packs small segments together) is rewritten: its surviving rows are
   copied out, the whole row group is deleted (a fully deleted row group is dropped at
   the next checkpoint) and the survivors are appended again;
2. CHECKPOINT writes the result and frees the old blocks (the WAL is emptied too);
3. the free blocks are overwritten: a filler table of random text is grown until the
   file has no free block left, checkpointed, then dropped and checkpointed again;
4. the file is read back and searched for every erased id; if one is still found (a
   block shared with another table), every table is rewritten the same way and the
   file checked again.

The cost is the affected row groups (about 120,000 rows each) and the file's free
space, not the size of the store, except in the fallback of step 4.
"""

from __future__ import annotations

import logging
import mmap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_FILL_TABLE = "_privacy_fill"
#: Rows of filler text per free block (rows of 128 characters in 256 KiB blocks).
_ROW_BYTES = 128


def checkpoint(cur: Any, attempts: int = 20) -> None:
    """CHECKPOINT, waiting for concurrent transactions to finish (then forcing it)."""
    for _ in range(attempts):
        try:
            cur.execute("CHECKPOINT")
            return
        except Exception as exc:
            log.debug("checkpoint deferred: %s", exc)
            time.sleep(0.05)
    cur.execute("FORCE CHECKPOINT")


def row_group_ranges(cur: Any, table: str) -> list[tuple[int, int]]:
    """[start, end) row ids of each persisted row group of ``table``."""
    rows = cur.execute(
        "SELECT row_group_id, max(count) FROM pragma_storage_info(?) "
        "WHERE column_id = 0 AND segment_type = 'VALIDITY' GROUP BY row_group_id "
        "ORDER BY row_group_id",
        [table],
    ).fetchall()
    ranges: list[tuple[int, int]] = []
    start = 0
    for _, count in rows:
        ranges.append((start, start + int(count)))
        start += int(count)
    return ranges


def affected_ranges(cur: Any, table: str, where: str, params: Any) -> list[tuple[int, int]]:
    """The row-group ranges holding rows that match ``where`` (call before deleting),
    with every row group sharing a block with one of them: DuckDB packs small segments
    of several row groups into one block, and a block is freed only when all go."""
    rowids = [
        int(r[0])
        for r in cur.execute(f'SELECT rowid FROM "{table}" WHERE {where}', params).fetchall()
    ]
    if not rowids:
        return []
    ranges = row_group_ranges(cur, table)
    end = ranges[-1][1] if ranges else 0
    chosen: set[int] = set()
    tail = False
    for rowid in rowids:
        index = next((i for i, r in enumerate(ranges) if r[0] <= rowid < r[1]), None)
        if index is None:
            tail = True
        else:
            chosen.add(index)
    chosen = _sharing_blocks(cur, table, chosen)
    found = [ranges[i] for i in sorted(chosen)]
    return [*found, (end, 2**62)] if tail else found


def _sharing_blocks(cur: Any, table: str, groups: set[int]) -> set[int]:
    """``groups`` and every row group of ``table`` that shares a block with them."""
    pairs = cur.execute(
        "SELECT DISTINCT row_group_id, block_id FROM pragma_storage_info(?) WHERE block_id >= 0",
        [table],
    ).fetchall()
    blocks_of: dict[int, set[int]] = {}
    for group, block in pairs:
        blocks_of.setdefault(int(group), set()).add(int(block))
    result = set(groups)
    while True:
        blocks = set().union(*(blocks_of.get(g, set()) for g in result))
        grown = {g for g, owned in blocks_of.items() if owned & blocks} | result
        if grown == result:
            return result
        result = grown


def rewrite_ranges(cur: Any, table: str, ranges: Sequence[tuple[int, int]]) -> None:
    """Rewrite the rows of these row-id ranges (the deleted ones are left behind)."""
    if not ranges:
        return
    inside = " OR ".join(f"(rowid >= {lo} AND rowid < {hi})" for lo, hi in ranges)
    cur.execute("BEGIN")
    try:
        cur.execute(f'CREATE TEMP TABLE _privacy_keep AS SELECT * FROM "{table}" WHERE {inside}')
        cur.execute(f'DELETE FROM "{table}" WHERE {inside}')
        cur.execute(f'INSERT INTO "{table}" SELECT * FROM _privacy_keep')
        cur.execute("DROP TABLE _privacy_keep")
        cur.execute("COMMIT")
    except Exception:
        cur.execute("ROLLBACK")
        raise


def overwrite_free_blocks(cur: Any, max_rounds: int = 30) -> None:
    """Fill every free block of the file with random text, then free it again."""
    checkpoint(cur)
    cur.execute(f"CREATE OR REPLACE TABLE {_FILL_TABLE} (b VARCHAR)")
    try:
        for _ in range(max_rounds):
            free, block_size = cur.execute(
                "SELECT free_blocks, block_size FROM pragma_database_size()"
            ).fetchone()
            if not free:
                break
            rows = max(1, int(free) * int(block_size) // _ROW_BYTES)
            cur.execute(
                f"INSERT INTO {_FILL_TABLE} SELECT md5(random()::VARCHAR) || "
                "md5(random()::VARCHAR) || md5(random()::VARCHAR) || md5(random()::VARCHAR) "
                "FROM range(?)",
                [rows],
            )
            checkpoint(cur)
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {_FILL_TABLE}")
        checkpoint(cur)


def file_contains(path: Path, needles: Sequence[str]) -> list[str]:
    """Which of ``needles`` occur in the bytes of the store file or its WAL."""
    found: list[str] = []
    for candidate in (path, path.with_name(path.name + ".wal")):
        if not candidate.exists() or candidate.stat().st_size == 0:
            continue
        with open(candidate, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
            for needle in needles:
                if needle and needle not in found and m.find(needle.encode()) != -1:
                    found.append(needle)
    return found


def purge_bytes(
    cur: Any,
    path: Path,
    tables: dict[str, list[tuple[int, int]]],
    ids: Sequence[str],
) -> dict[str, Any]:
    """Steps 1-4 above for the row groups ``tables`` lists (from affected_ranges)."""
    started = time.monotonic()
    for table, ranges in tables.items():
        rewrite_ranges(cur, table, ranges)
    overwrite_free_blocks(cur)
    remaining = file_contains(path, ids)
    fallback = False
    if remaining:
        # A block shared with another table's segments: rewrite every table.
        fallback = True
        log.warning("erasure: ids still in the file after the row-group rewrite; full rewrite")
        every = [
            r[0]
            for r in cur.execute(
                "SELECT table_name FROM duckdb_tables() WHERE NOT temporary "
                "AND database_name = current_database()"
            ).fetchall()
        ]
        for table in every:
            rewrite_ranges(cur, table, [(0, 2**62)])
        overwrite_free_blocks(cur)
        remaining = file_contains(path, ids)
    return {
        "rowGroupsRewritten": sum(len(r) for r in tables.values()),
        "fullRewrite": fallback,
        "verified": not remaining,
        "seconds": round(time.monotonic() - started, 3),
    }
