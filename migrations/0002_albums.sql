-- phototag catalog, schema 2: smart albums.
--
-- Applied by src/catalog/schema.rs after 0001; sets PRAGMA user_version = 2.
-- Never edit a released migration: add 0003_*.sql.

-- Albums added with `phototag album add` (albums of the config file are not stored
-- here). query is in the search language; folder is the album folder's path bytes;
-- links is 'symlink' or 'hardlink'.
CREATE TABLE albums (
    name    TEXT PRIMARY KEY,
    query   TEXT NOT NULL,
    folder  BLOB NOT NULL,
    links   TEXT NOT NULL DEFAULT 'symlink',
    created INTEGER NOT NULL
);

-- Every link phototag made in an album folder, for albums from the config and the
-- catalog alike: phototag removes or replaces only files recorded here, and only
-- while they are still what it made (the symlink's target, or the hard link's inode).
-- A row is written before its link is made and deleted after it is removed, so a
-- crash leaves at worst a row without a link (made again, or dropped, at the next sync).
CREATE TABLE album_links (
    path   BLOB PRIMARY KEY,
    album  TEXT NOT NULL,
    target BLOB NOT NULL,
    hash   BLOB NOT NULL CHECK (length(hash) = 32),
    inode  INTEGER
) WITHOUT ROWID;

CREATE INDEX album_links_by_album ON album_links (album);
