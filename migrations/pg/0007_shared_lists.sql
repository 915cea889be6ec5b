-- phototag catalog on PostgreSQL, schema 7: per-class search lists (what SQLite
-- has had since ../0003_class_lists.sql), for a catalog many hosts write at once.
--
-- Applied by crates/phototag-light/src/catalog/pg/schema.rs after 0006.
-- Never edit a released migration: add 0008_*.sql.
--
-- A full listing ("every dog", --count) on 1,000,000 images gathered 354,000
-- index rows into 135,000 images and joined their files on the server: about
-- 1 s whatever the indexes. With lists it reads a few of these rows instead, one
-- per class of the query, and evaluates the query in phototag
-- (crates/phototag-light/src/catalog/pg/lists.rs; the byte format, with each
-- file's host, is in catalog/lists/format.rs).
--
-- SQLite keeps a list true by deleting it in the transaction of any change. Here
-- several writers commit at once, and a delete by one could be overtaken by a
-- list another built from an older snapshot; deleting a shared row from each
-- writer would also make writers wait on each other. Instead:
-- * every change to a tag of a class, or to a file of an image tagged with it,
--   records (class, the writer's transaction id) in class_changes (statement
--   triggers below; a writer never waits on another for it);
-- * a list records the snapshot it was built from (built_in);
-- * a list is true for a reader while every change of its class that the reader
--   can see was visible in built_in (pg_visible_in_snapshot). A change not yet
--   committed is invisible to the reader and absent from the list alike.
-- A builder holds the class's advisory lock while it builds, stores the list and
-- deletes the changes the list holds, in one transaction.

CREATE TABLE class_lists (
    class_index integer PRIMARY KEY,
    built_in    pg_snapshot NOT NULL,
    -- The list's first bytes: format, mark count, marks (small).
    marks       bytea NOT NULL,
    -- Its records, best first: read up to the byte a query's minimum needs.
    records     bytea NOT NULL
);
-- Uncompressed out of line, so that reading the first bytes of records reads
-- only those.
ALTER TABLE class_lists ALTER COLUMN records SET STORAGE EXTERNAL;

CREATE TABLE class_changes (
    class_index integer NOT NULL,
    xid         xid8 NOT NULL,
    PRIMARY KEY (class_index, xid)
);

-- Taught tags (class 1000 and up) are not in lists: their changes are not kept.
CREATE FUNCTION phototag_tags_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO class_changes (class_index, xid)
    SELECT DISTINCT class_index, pg_current_xact_id() FROM changed
    WHERE class_index < 1000
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION phototag_files_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO class_changes (class_index, xid)
    SELECT DISTINCT t.class_index, pg_current_xact_id()
    FROM (SELECT DISTINCT hash FROM changed) f JOIN tags t ON t.hash = f.hash
    WHERE t.class_index < 1000
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

-- An update of files counts when it changes what a list holds of a file (a
-- rescan only sets last_seen).
CREATE FUNCTION phototag_files_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO class_changes (class_index, xid)
    SELECT DISTINCT t.class_index, pg_current_xact_id()
    FROM ((SELECT host, path, hash, mtime_ns FROM before_rows
           EXCEPT SELECT host, path, hash, mtime_ns FROM after_rows)
          UNION
          (SELECT host, path, hash, mtime_ns FROM after_rows
           EXCEPT SELECT host, path, hash, mtime_ns FROM before_rows)) f
    JOIN tags t ON t.hash = f.hash
    WHERE t.class_index < 1000
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION phototag_tags_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO class_changes (class_index, xid)
    SELECT DISTINCT class_index, pg_current_xact_id()
    FROM (SELECT class_index FROM before_rows UNION ALL SELECT class_index FROM after_rows) c
    WHERE class_index < 1000
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER class_lists_tags_insert AFTER INSERT ON tags
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION phototag_tags_changed();
CREATE TRIGGER class_lists_tags_delete AFTER DELETE ON tags
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION phototag_tags_changed();
CREATE TRIGGER class_lists_tags_update AFTER UPDATE ON tags
    REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows
    FOR EACH STATEMENT EXECUTE FUNCTION phototag_tags_updated();
CREATE TRIGGER class_lists_files_insert AFTER INSERT ON files
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION phototag_files_changed();
CREATE TRIGGER class_lists_files_delete AFTER DELETE ON files
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION phototag_files_changed();
CREATE TRIGGER class_lists_files_update AFTER UPDATE ON files
    REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows
    FOR EACH STATEMENT EXECUTE FUNCTION phototag_files_updated();
