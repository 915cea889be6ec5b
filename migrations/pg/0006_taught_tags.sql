-- phototag catalog on PostgreSQL, schema 6: tags taught by example (the flavour of
-- ../0006_taught_tags.sql).
--
-- Applied by crates/phototag-light/src/catalog/pg/schema.rs after 0005.
-- Never edit a released migration: add 0007_*.sql.
--
-- The same tables as in SQLite, so that both schemas keep one version. This release
-- does not teach tags on a PostgreSQL catalog yet: `teach` says so (the tables stay
-- empty, searches and albums see no taught tag).
CREATE TABLE taught_tags (
    id         bigint PRIMARY KEY CHECK (id BETWEEN 1 AND 1047),
    name       text NOT NULL,
    model_id   bigint NOT NULL REFERENCES models (id),
    weights    bytea NOT NULL,
    bias       real NOT NULL,
    threshold  real NOT NULL,
    figures    text NOT NULL,
    created_at bigint NOT NULL,
    fitted_at  bigint NOT NULL
);
-- Names are unique whatever their case (SQLite: COLLATE NOCASE).
CREATE UNIQUE INDEX taught_tags_by_name ON taught_tags (lower(name));

CREATE TABLE taught_examples (
    tag_id   bigint NOT NULL REFERENCES taught_tags (id) ON DELETE CASCADE,
    hash     bytea NOT NULL CHECK (length(hash) = 32),
    positive boolean NOT NULL,
    model_id bigint NOT NULL REFERENCES models (id),
    vector   bytea NOT NULL,
    scale    real NOT NULL,
    PRIMARY KEY (tag_id, hash)
);
