-- phototag catalog, schema 3: per-class search lists.
--
-- Applied by src/catalog/schema.rs after 0002; sets PRAGMA user_version = 3.
-- Never edit a released migration: add 0004_*.sql.

-- For each ImageNet class, one BLOB listing every image tagged with it, best
-- probability first, with the path and mtime of each of its files (the format is
-- in crates/phototag-core/src/catalog/lists.rs). A search that lists everything
-- reads a few of these instead of one index row per tag and one lookup per file.
--
-- A row exists only while it is true: the triggers below delete a class's row in
-- the same transaction as any change to a tag of that class, or to a file (path,
-- content or mtime) of an image tagged with it. The writer rebuilds missing rows
-- (Catalog::refresh_class_lists); a search builds a missing one for itself.
CREATE TABLE class_lists (
    class_index INTEGER PRIMARY KEY,
    data        BLOB NOT NULL
);

CREATE TRIGGER class_lists_tag_insert AFTER INSERT ON tags BEGIN
    DELETE FROM class_lists WHERE class_index = NEW.class_index;
END;

CREATE TRIGGER class_lists_tag_delete AFTER DELETE ON tags BEGIN
    DELETE FROM class_lists WHERE class_index = OLD.class_index;
END;

CREATE TRIGGER class_lists_tag_update AFTER UPDATE ON tags BEGIN
    DELETE FROM class_lists WHERE class_index IN (OLD.class_index, NEW.class_index);
END;

CREATE TRIGGER class_lists_file_insert AFTER INSERT ON files BEGIN
    DELETE FROM class_lists
    WHERE class_index IN (SELECT class_index FROM tags WHERE hash = NEW.hash);
END;

CREATE TRIGGER class_lists_file_delete AFTER DELETE ON files BEGIN
    DELETE FROM class_lists
    WHERE class_index IN (SELECT class_index FROM tags WHERE hash = OLD.hash);
END;

-- A rescan only touches last_seen: that changes no list.
CREATE TRIGGER class_lists_file_update AFTER UPDATE ON files
WHEN OLD.path IS NOT NEW.path OR OLD.hash IS NOT NEW.hash
     OR OLD.mtime_ns IS NOT NEW.mtime_ns
BEGIN
    DELETE FROM class_lists
    WHERE class_index IN (SELECT class_index FROM tags WHERE hash IN (OLD.hash, NEW.hash));
END;
