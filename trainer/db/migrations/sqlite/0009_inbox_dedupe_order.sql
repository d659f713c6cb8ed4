-- The inbox's unique key, columns reordered: the plugin's dedupe key right after the plugin.
-- Same constraint (a unique index is unique on its set of columns; ON CONFLICT names the set), but
-- keys that lead with the event time (Strava's) now land at the end of the index for everyone,
-- so a batch of webhooks touches one leaf page of it instead of one per athlete.
DROP INDEX inbox_dedupe;
CREATE UNIQUE INDEX inbox_dedupe ON inbox (plugin, dedupe_key, kind, user_id);
