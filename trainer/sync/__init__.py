"""WatermelonDB sync: the pull/push engine on top of the synced tables (protocol: docs/sync.md).

tables.py   one declaration per synced table: client columns, types, writability, cleaning rules
values.py   pushed values cleaned, server values checked
rows.py     row-level writes shared by push and server writes (stamps, tombstones, cascades)
writes.py   the API for server-side writes (ingest, analysis) that devices then pull
pull.py     sync.pullChanges: a snapshot streamed as JSON
push.py     sync.pushChanges: one transaction, conflicts, ownership, orphans
retention.py  tombstone purging, and so when a device needs a full resync
"""
