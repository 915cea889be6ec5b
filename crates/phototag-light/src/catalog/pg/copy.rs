//! Pages of a PostgreSQL catalog for `catalog copy` (see `catalog/copy`): this host's
//! part, read in key order (bytewise: text keys compared `COLLATE "C"`), and written a
//! page per statement (`unnest` of arrays) with `ON CONFLICT DO NOTHING`, in one
//! transaction per page.
//!
//! May not: change a row the catalog already has, or read or write another host's rows.

use std::collections::HashSet;

use super::{hash_of, PgCatalog};
use crate::catalog::copy::{Row, Table};
use crate::catalog::{CatalogError, Hash};

impl PgCatalog {
    pub(crate) fn read_page(
        &self,
        table: Table,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Row>, CatalogError> {
        let after_blob: &[u8] = after.unwrap_or(b"");
        let after_text = String::from_utf8_lossy(after_blob).into_owned();
        let limit = limit as i64;
        let host = &self.host;
        let out = match table {
            Table::Models => self
                .rows(
                    "SELECT sha256, name, architecture FROM models
                     WHERE sha256 COLLATE \"C\" > $1 ORDER BY sha256 COLLATE \"C\" LIMIT $2",
                    &[&after_text, &limit],
                )?
                .iter()
                .map(|r| Row::Model {
                    sha256: r.get(0),
                    name: r.get(1),
                    architecture: r.get(2),
                })
                .collect(),
            Table::Roots => self
                .rows(
                    "SELECT path, state, last_scan FROM roots
                     WHERE host = $1 AND path > $2 ORDER BY path LIMIT $3",
                    &[host, &after_blob, &limit],
                )?
                .iter()
                .map(|r| Row::Root {
                    path: r.get(0),
                    state: r.get(1),
                    last_scan: r.get(2),
                })
                .collect(),
            Table::Images => {
                // The images this host's files point at, and those no file points at, with
                // their tags.
                let rows = self.rows(
                    "SELECT i.hash, i.width, i.height, i.format, m.sha256, i.classified_at,
                            t.rank, t.class_index, t.label, t.probability
                     FROM (SELECT * FROM images i
                           WHERE i.hash > $2
                             AND (EXISTS (SELECT 1 FROM files f WHERE f.hash = i.hash AND f.host = $1)
                                  OR NOT EXISTS (SELECT 1 FROM files f WHERE f.hash = i.hash))
                           ORDER BY i.hash LIMIT $3) i
                     JOIN models m ON m.id = i.model_id
                     LEFT JOIN tags t ON t.hash = i.hash
                     ORDER BY i.hash, t.rank",
                    &[host, &after_blob, &limit],
                )?;
                let mut out: Vec<Row> = Vec::new();
                for r in &rows {
                    let hash = hash_of(r, 0)?;
                    let new = !matches!(out.last(), Some(Row::Image { hash: h, .. }) if *h == hash);
                    if new {
                        out.push(Row::Image {
                            hash,
                            width: i64::from(r.get::<_, i32>(1)),
                            height: i64::from(r.get::<_, i32>(2)),
                            format: r.get(3),
                            model_sha256: r.get(4),
                            classified_at: r.get(5),
                            tags: Vec::new(),
                        });
                    }
                    if let (Some(rank), Some(Row::Image { tags, .. })) =
                        (r.get::<_, Option<i32>>(6), out.last_mut())
                    {
                        tags.push((
                            rank.max(0) as u32,
                            i64::from(r.get::<_, i32>(7)),
                            r.get(8),
                            r.get(9),
                        ));
                    }
                }
                out
            }
            Table::Embeddings => self
                .rows(
                    "SELECT e.hash, m.sha256, e.vector, e.scale
                     FROM embeddings e JOIN models m ON m.id = e.model_id
                     WHERE e.hash > $2
                       AND (EXISTS (SELECT 1 FROM files f WHERE f.hash = e.hash AND f.host = $1)
                            OR NOT EXISTS (SELECT 1 FROM files f WHERE f.hash = e.hash))
                     ORDER BY e.hash LIMIT $3",
                    &[host, &after_blob, &limit],
                )?
                .iter()
                .map(|r| {
                    Ok(Row::Embedding {
                        hash: hash_of(r, 0)?,
                        model_sha256: r.get(1),
                        vector: r.get(2),
                        scale: r.get(3),
                    })
                })
                .collect::<Result<_, CatalogError>>()?,
            Table::Files => {
                let rows = self.rows(
                    "SELECT f.path, r.path, f.hash, f.size, f.mtime_ns, f.last_seen
                     FROM files f JOIN roots r ON r.id = f.root_id
                     WHERE f.host = $1 AND f.path > $2 ORDER BY f.path LIMIT $3",
                    &[host, &after_blob, &limit],
                )?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    out.push(Row::File {
                        path: r.get(0),
                        root: r.get(1),
                        hash: hash_of(r, 2)?,
                        size: r.get(3),
                        mtime_ns: r.get(4),
                        last_seen: r.get(5),
                    });
                }
                out
            }
            Table::Failures => self
                .rows(
                    "SELECT f.path, r.path, f.size, f.mtime_ns, f.error, f.attempts, f.last_attempt
                     FROM failures f JOIN roots r ON r.id = f.root_id
                     WHERE f.host = $1 AND f.path > $2 ORDER BY f.path LIMIT $3",
                    &[host, &after_blob, &limit],
                )?
                .iter()
                .map(|r| Row::Failure {
                    path: r.get(0),
                    root: r.get(1),
                    size: r.get(2),
                    mtime_ns: r.get(3),
                    error: r.get(4),
                    attempts: i64::from(r.get::<_, i32>(5)),
                    last_attempt: r.get(6),
                })
                .collect(),
            Table::Albums => self
                .rows(
                    "SELECT name, query, folder, links, created FROM albums
                     WHERE host = $1 AND name COLLATE \"C\" > $2
                     ORDER BY name COLLATE \"C\" LIMIT $3",
                    &[host, &after_text, &limit],
                )?
                .iter()
                .map(|r| Row::Album {
                    name: r.get(0),
                    query: r.get(1),
                    folder: r.get(2),
                    links: r.get(3),
                    created: r.get(4),
                })
                .collect(),
            Table::AlbumLinks => {
                let rows = self.rows(
                    "SELECT path, album, target, hash, inode FROM album_links
                     WHERE host = $1 AND path > $2 ORDER BY path LIMIT $3",
                    &[host, &after_blob, &limit],
                )?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    out.push(Row::Link {
                        path: r.get(0),
                        album: r.get(1),
                        target: r.get(2),
                        hash: hash_of(r, 3)?,
                        inode: r.get(4),
                    });
                }
                out
            }
            Table::TaughtTags => self.read_taught_page(&after_text, limit)?,
        };
        Ok(out)
    }

    pub(crate) fn write_page(&mut self, table: Table, rows: &[Row]) -> Result<u64, CatalogError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(|e| self.error(e))?;
        let host = self.host.clone();
        let e = |e| super::to_catalog_error(&self.target.to_string(), e);
        let n = match table {
            Table::Models => {
                let mut n = 0;
                for r in rows {
                    if let Row::Model {
                        sha256,
                        name,
                        architecture,
                    } = r
                    {
                        n += tx
                            .execute(
                                "INSERT INTO models (name, architecture, sha256) VALUES ($1, $2, $3)
                                 ON CONFLICT (sha256) DO NOTHING",
                                &[name, architecture, sha256],
                            )
                            .map_err(e)?;
                    }
                }
                n
            }
            Table::Roots => {
                let mut n = 0;
                for r in rows {
                    if let Row::Root {
                        path,
                        state,
                        last_scan,
                    } = r
                    {
                        n += tx
                            .execute(
                                "INSERT INTO roots (host, path, state, last_scan)
                                 VALUES ($1, $2, $3, $4) ON CONFLICT (host, path) DO NOTHING",
                                &[&host, path, state, last_scan],
                            )
                            .map_err(e)?;
                    }
                }
                n
            }
            Table::Images => {
                let (mut hashes, mut widths, mut heights, mut formats, mut models, mut times) = (
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                );
                for r in rows {
                    if let Row::Image {
                        hash,
                        width,
                        height,
                        format,
                        model_sha256,
                        classified_at,
                        ..
                    } = r
                    {
                        hashes.push(&hash[..]);
                        widths.push(*width as i32);
                        heights.push(*height as i32);
                        formats.push(format.as_str());
                        models.push(model_sha256.as_str());
                        times.push(*classified_at);
                    }
                }
                let inserted = tx
                    .query(
                        "INSERT INTO images (hash, width, height, format, model_id, classified_at)
                         SELECT u.h, u.w, u.ht, u.f, m.id, u.c
                         FROM unnest($1::bytea[], $2::integer[], $3::integer[], $4::text[],
                                     $5::text[], $6::bigint[]) AS u (h, w, ht, f, sha, c)
                         JOIN models m ON m.sha256 = u.sha
                         ON CONFLICT (hash) DO NOTHING RETURNING hash",
                        &[&hashes, &widths, &heights, &formats, &models, &times],
                    )
                    .map_err(e)?;
                let new: HashSet<Hash> = inserted
                    .iter()
                    .map(|r| hash_of(r, 0))
                    .collect::<Result<_, _>>()?;
                let (mut th, mut ranks, mut classes, mut labels, mut probs) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for r in rows {
                    if let Row::Image { hash, tags, .. } = r {
                        if new.contains(hash) {
                            for (rank, class, label, p) in tags {
                                th.push(&hash[..]);
                                ranks.push(*rank as i32);
                                classes.push(*class as i32);
                                labels.push(label.as_str());
                                probs.push(*p);
                            }
                        }
                    }
                }
                tx.execute(
                    "INSERT INTO tags (hash, rank, class_index, label, probability)
                     SELECT * FROM unnest($1::bytea[], $2::integer[], $3::integer[], $4::text[],
                                          $5::real[])",
                    &[&th, &ranks, &classes, &labels, &probs],
                )
                .map_err(e)?;
                new.len() as u64
            }
            Table::Embeddings => {
                let (mut hashes, mut models, mut vectors, mut scales) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for r in rows {
                    if let Row::Embedding {
                        hash,
                        model_sha256,
                        vector,
                        scale,
                    } = r
                    {
                        hashes.push(&hash[..]);
                        models.push(model_sha256.as_str());
                        vectors.push(vector.as_slice());
                        scales.push(*scale);
                    }
                }
                let n = tx
                    .execute(
                        "INSERT INTO embeddings (hash, model_id, vector, scale)
                     SELECT u.h, m.id, u.v, u.s
                     FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::real[])
                          AS u (h, sha, v, s)
                     JOIN models m ON m.sha256 = u.sha
                     ON CONFLICT (hash) DO NOTHING",
                        &[&hashes, &models, &vectors, &scales],
                    )
                    .map_err(e)?;
                // Their sketches, as the writer stores them (what `similar` reads first).
                let bits: Vec<Vec<u8>> = vectors
                    .iter()
                    .map(|v| crate::vectors::sketch::sketch(v).to_vec())
                    .collect();
                tx.execute(
                    "INSERT INTO sketches (id, model_id, bits)
                     SELECT e.id, e.model_id, u.b
                     FROM unnest($1::bytea[], $2::bytea[]) AS u (h, b)
                     JOIN embeddings e ON e.hash = u.h
                     ON CONFLICT (id) DO NOTHING",
                    &[&hashes, &bits],
                )
                .map_err(e)?;
                n
            }
            Table::Files => {
                let (mut paths, mut roots, mut hashes, mut sizes, mut mtimes, mut seen) = (
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                );
                for r in rows {
                    if let Row::File {
                        path,
                        root,
                        hash,
                        size,
                        mtime_ns,
                        last_seen,
                    } = r
                    {
                        paths.push(path.as_slice());
                        roots.push(root.as_slice());
                        hashes.push(&hash[..]);
                        sizes.push(*size);
                        mtimes.push(*mtime_ns);
                        seen.push(*last_seen);
                    }
                }
                tx.execute(
                    "INSERT INTO files (host, path, root_id, hash, size, mtime_ns, last_seen)
                     SELECT $1, u.p, r.id, u.h, u.s, u.m, u.l
                     FROM unnest($2::bytea[], $3::bytea[], $4::bytea[], $5::bigint[],
                                 $6::bigint[], $7::bigint[]) AS u (p, rp, h, s, m, l)
                     JOIN roots r ON r.host = $1 AND r.path = u.rp
                     ON CONFLICT (host, path) DO NOTHING",
                    &[&host, &paths, &roots, &hashes, &sizes, &mtimes, &seen],
                )
                .map_err(e)?
            }
            Table::Failures => {
                let mut n = 0;
                for r in rows {
                    if let Row::Failure {
                        path,
                        root,
                        size,
                        mtime_ns,
                        error,
                        attempts,
                        last_attempt,
                    } = r
                    {
                        n += tx
                            .execute(
                                "INSERT INTO failures
                                 (host, path, root_id, size, mtime_ns, error, attempts, last_attempt)
                                 SELECT $1, $2, r.id, $4, $5, $6, $7, $8 FROM roots r
                                 WHERE r.host = $1 AND r.path = $3
                                 ON CONFLICT (host, path) DO NOTHING",
                                &[
                                    &host,
                                    path,
                                    root,
                                    size,
                                    mtime_ns,
                                    error,
                                    &(*attempts as i32),
                                    last_attempt,
                                ],
                            )
                            .map_err(e)?;
                    }
                }
                n
            }
            Table::Albums => {
                let mut n = 0;
                for r in rows {
                    if let Row::Album {
                        name,
                        query,
                        folder,
                        links,
                        created,
                    } = r
                    {
                        n += tx
                            .execute(
                                "INSERT INTO albums (host, name, query, folder, links, created)
                                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (host, name) DO NOTHING",
                                &[&host, name, query, folder, links, created],
                            )
                            .map_err(e)?;
                    }
                }
                n
            }
            Table::AlbumLinks => {
                let mut n = 0;
                for r in rows {
                    if let Row::Link {
                        path,
                        album,
                        target,
                        hash,
                        inode,
                    } = r
                    {
                        n += tx
                            .execute(
                                "INSERT INTO album_links (host, path, album, target, hash, inode)
                                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (host, path) DO NOTHING",
                                &[&host, path, album, target, &&hash[..], inode],
                            )
                            .map_err(e)?;
                    }
                }
                n
            }
            Table::TaughtTags => {
                let mut n = 0;
                for r in rows {
                    if let Row::Taught(t) = r {
                        n += super::taught::copy_taught(&mut tx, t).map_err(e)?;
                    }
                }
                n
            }
        };
        tx.commit().map_err(e)?;
        Ok(n)
    }
}
