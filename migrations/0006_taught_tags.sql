-- phototag catalog, schema 6: tags taught by example (`phototag teach`).
--
-- Applied by src/catalog/schema.rs after 0005; sets PRAGMA user_version = 6.
-- Never edit a released migration: add 0007_*.sql.

-- A tag a person taught from examples: a logistic regression over one model's
-- embeddings (weights: little-endian f32, one per dimension of that model's
-- embedding; bias), the probability from which a photo has the tag (threshold,
-- chosen by cross-validation on the examples), and the figures of that
-- cross-validation (JSON). Its scores are stored as ordinary rows of `tags` with
-- class_index = 1000 + id and rank = 1000 + id (ImageNet classes are 0..999 and
-- ranks of a model's top-k are small), label = name, for every image of the
-- model whose probability reaches the threshold: search, the class lists and
-- their triggers, albums, sidecars and export see them as any tag.
CREATE TABLE taught_tags (
    id         INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 1047),
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    model_id   INTEGER NOT NULL REFERENCES models (id),
    weights    BLOB NOT NULL,
    bias       REAL NOT NULL,
    threshold  REAL NOT NULL,
    figures    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    fitted_at  INTEGER NOT NULL
);

-- The examples of a taught tag: content hashes, yes (positive = 1) or no, with
-- the embedding they had when given (by model_id), so an example whose photo is
-- not in the catalog still counts, and a retag can refit from the catalog's new
-- embeddings of the same content.
CREATE TABLE taught_examples (
    tag_id   INTEGER NOT NULL REFERENCES taught_tags (id) ON DELETE CASCADE,
    hash     BLOB NOT NULL CHECK (length(hash) = 32),
    positive INTEGER NOT NULL CHECK (positive IN (0, 1)),
    model_id INTEGER NOT NULL REFERENCES models (id),
    vector   BLOB NOT NULL,
    scale    REAL NOT NULL,
    PRIMARY KEY (tag_id, hash)
) WITHOUT ROWID;
