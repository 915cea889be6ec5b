-- phototag catalog on PostgreSQL, schema 3: search at scale (the flavour of
-- ../0003_class_lists.sql).
--
-- Applied by crates/phototag-light/src/catalog/pg/schema.rs after 0002.
-- Never edit a released migration: add 0004_*.sql.
--
-- SQLite's schema 3 adds per-class lists (BLOBs rebuilt by the writer) because a
-- full listing there costs an index row per tag and a lookup per file. PostgreSQL
-- answers a search with one statement (catalog/pg/query.rs): the tags of the
-- query's classes, grouped per image, joined to files. What makes that fast is
-- reading each side from an index alone (an index-only scan), so the indexes
-- carry the columns the statement reads (README.md, "More than one machine").

-- Tags of a class, best first, with the image they belong to: no heap visit.
DROP INDEX tags_by_class;
CREATE INDEX tags_by_class ON tags (class_index, probability DESC) INCLUDE (hash);

-- The files of an image with what a search shows and filters on.
DROP INDEX files_by_hash;
CREATE INDEX files_by_hash ON files (hash) INCLUDE (host, path, mtime_ns);
