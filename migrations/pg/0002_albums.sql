-- phototag catalog on PostgreSQL, schema 2: smart albums (the flavour of
-- ../0002_albums.sql).
--
-- Applied by crates/phototag-light/src/catalog/pg/schema.rs after 0001.
-- Never edit a released migration: add 0003_*.sql.
--
-- An album folder is on one host: albums and the record of their links belong
-- to the host that made them (host), and each host's daemon keeps its own.

-- Albums added with `phototag album add` (albums of the config file are not stored
-- here). query is in the search language; folder is the album folder's path bytes;
-- links is 'symlink' or 'hardlink'.
CREATE TABLE albums (
    host    text NOT NULL,
    name    text NOT NULL,
    query   text NOT NULL,
    folder  bytea NOT NULL,
    links   text NOT NULL DEFAULT 'symlink',
    created bigint NOT NULL,
    PRIMARY KEY (host, name)
);

-- Every link phototag made in an album folder (see ../0002_albums.sql): a row is
-- written before its link is made and deleted after it is removed.
CREATE TABLE album_links (
    host   text NOT NULL,
    path   bytea NOT NULL,
    album  text NOT NULL,
    target bytea NOT NULL,
    hash   bytea NOT NULL CHECK (length(hash) = 32),
    inode  bigint,
    PRIMARY KEY (host, path)
);

CREATE INDEX album_links_by_album ON album_links (host, album);

CREATE TRIGGER albums_changed AFTER INSERT OR UPDATE OR DELETE ON albums
    FOR EACH STATEMENT EXECUTE FUNCTION phototag_changed();
