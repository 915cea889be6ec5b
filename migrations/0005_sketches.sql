-- phototag catalog, schema 5: a sketch of each stored embedding, for `similar`.
--
-- Applied by src/catalog/schema.rs after 0004; sets PRAGMA user_version = 5.
-- Never edit a released migration: add 0006_*.sql.

-- 256 bits per embedding (vectors/sketch.rs: the signs of fixed sparse random
-- projections), whose Hamming distances estimate the embeddings' angles. `similar` on a
-- large catalog reads this small table front to back (~40 bytes a row, against ~1.3 KB in
-- embeddings), keeps the closest few thousand and compares only those exactly. Written
-- with the embedding, in the same transaction; removed with it.
CREATE TABLE sketches (
    id       INTEGER PRIMARY KEY REFERENCES embeddings (id) ON DELETE CASCADE,
    model_id INTEGER NOT NULL,
    bits     BLOB NOT NULL
);

-- Embeddings stored before schema 5. phototag_sketch() is registered by phototag on the
-- connection that migrates (the sqlite3 shell does not know it).
INSERT INTO sketches (id, model_id, bits)
    SELECT id, model_id, phototag_sketch(vector) FROM embeddings;
