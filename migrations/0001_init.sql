-- phototag catalog, schema 1.
--
-- Applied by src/catalog/schema.rs inside one transaction, which then sets
-- PRAGMA user_version = 1. Never edit a released migration: add 0002_*.sql.
--
-- Paths are BLOBs of their raw bytes (non-UTF-8 names survive); they compare
-- with memcmp, so "every path under /a/b" is the range ['/a/b/', '/a/b0').
-- Hashes are BLAKE3 of the file's bytes, 32-byte BLOBs. Times are Unix seconds
-- unless the column name says _ns.

-- A TorchScript model that tagged images; identified by its file's SHA-256.
CREATE TABLE models (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    architecture TEXT NOT NULL,
    sha256       TEXT NOT NULL UNIQUE
);

-- A folder being indexed. state: 'online', 'offline' (vanished or unmounted:
-- its files are kept, never purged on a miss), or another word the indexer uses.
CREATE TABLE roots (
    id        INTEGER PRIMARY KEY,
    path      BLOB NOT NULL UNIQUE,
    state     TEXT NOT NULL DEFAULT 'online',
    last_scan INTEGER
);

-- One row per distinct content, classified once whatever the number of paths.
-- model_id says which model made its tags, so a model change is visible per image.
CREATE TABLE images (
    hash          BLOB PRIMARY KEY CHECK (length(hash) = 32),
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    format        TEXT NOT NULL,
    model_id      INTEGER NOT NULL REFERENCES models (id),
    classified_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The top-k classes of an image, rank 1 the most likely.
CREATE TABLE tags (
    hash        BLOB NOT NULL REFERENCES images (hash) ON DELETE CASCADE,
    rank        INTEGER NOT NULL CHECK (rank >= 1),
    class_index INTEGER NOT NULL,
    label       TEXT NOT NULL,
    probability REAL NOT NULL,
    PRIMARY KEY (hash, rank)
) WITHOUT ROWID;

-- Search: WHERE class_index IN (..) AND probability >= ? (covers hash too).
CREATE INDEX tags_by_class ON tags (class_index, probability DESC);

-- Where content lives. Several paths may share one image. The writer inserts
-- the image before its file rows in the same transaction.
CREATE TABLE files (
    path      BLOB PRIMARY KEY,
    root_id   INTEGER NOT NULL REFERENCES roots (id),
    hash      BLOB NOT NULL REFERENCES images (hash),
    size      INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX files_by_hash ON files (hash);
CREATE INDEX files_by_root ON files (root_id);

-- Files that could not be tagged. The indexer retries one only when its size
-- or mtime changes, so a corrupt file is not retried forever.
CREATE TABLE failures (
    path         BLOB PRIMARY KEY,
    root_id      INTEGER NOT NULL REFERENCES roots (id),
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    error        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 1,
    last_attempt INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX failures_by_root ON failures (root_id);
