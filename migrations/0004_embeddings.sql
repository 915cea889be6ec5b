-- phototag catalog, schema 4: image embeddings, and files by date.
--
-- Applied by src/catalog/schema.rs after 0003; sets PRAGMA user_version = 4.
-- Never edit a released migration: add 0005_*.sql.

-- What the model saw in an image: its pooled features, L2-normalised, one signed
-- byte per dimension (vector, as many bytes as the model's embedding_size) times
-- scale (so the vector times scale has length 1). Written with the image's tags, in
-- the same transaction, by the model in model_id (the image's model: an image
-- retagged by a model that gives no embedding loses its row). Images catalogued
-- before schema 4 have none until `phototag retag --embeddings`.
--
-- A rowid table (not WITHOUT ROWID): rows of ~1.3 KB stay on their leaf page, and
-- `similar` reads the table front to back, in parts by rowid range.
CREATE TABLE embeddings (
    id       INTEGER PRIMARY KEY,
    hash     BLOB NOT NULL UNIQUE REFERENCES images (hash) ON DELETE CASCADE,
    model_id INTEGER NOT NULL REFERENCES models (id),
    vector   BLOB NOT NULL,
    scale    REAL NOT NULL
);

-- The web page's library, newest first (file mtime), a page at a time.
CREATE INDEX files_by_mtime ON files (mtime_ns);
