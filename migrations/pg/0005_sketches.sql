-- phototag catalog on PostgreSQL, schema 5: a sketch of each stored embedding, for
-- `similar` (the flavour of ../0005_sketches.sql).
--
-- Applied by crates/phototag-light/src/catalog/pg/schema.rs after 0004.
-- Never edit a released migration: add 0006_*.sql.
--
-- 256 bits per embedding (vectors/sketch.rs), read front to back by `similar` on a
-- large catalog before the closest are compared exactly. Written with the embedding, in
-- the same transaction; removed with it. The sketches of embeddings stored before schema
-- 5 are computed by phototag right after this migration, in its transaction (PostgreSQL
-- cannot call phototag's sketch function): pg/schema.rs, `backfill_sketches`.
CREATE TABLE sketches (
    id       bigint PRIMARY KEY REFERENCES embeddings (id) ON DELETE CASCADE,
    model_id bigint NOT NULL,
    bits     bytea NOT NULL
);
