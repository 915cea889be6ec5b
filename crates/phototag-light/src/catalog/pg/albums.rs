//! Albums on PostgreSQL, as `catalog/albums.rs` has them for SQLite: an album folder is on
//! one host, so the albums added from the command line and the record of their links are
//! this host's. The export listing covers every host (another host's files as
//! `host:path`).
//!
//! May not: touch the file system, or decide what an album holds.

use std::path::Path;

use super::read::tags_of;
use super::{hash_of, PgCatalog};
use crate::catalog::albums::{AlbumRow, FileTags, LinkRow};
use crate::catalog::rows::{path_bytes, path_from, Hash, TagRow};
use crate::catalog::CatalogError;

fn link_row(r: &postgres::Row) -> Result<LinkRow, CatalogError> {
    Ok(LinkRow {
        path: path_from(r.get(0)),
        album: r.get(1),
        target: path_from(r.get(2)),
        hash: hash_of(r, 3)?,
        inode: r.get::<_, Option<i64>>(4).map(|i| i as u64),
    })
}

impl PgCatalog {
    /// This host's albums added from the command line, by name.
    pub fn albums(&self) -> Result<Vec<AlbumRow>, CatalogError> {
        let rows = self.rows(
            "SELECT name, query, folder, links FROM albums WHERE host = $1
             ORDER BY name COLLATE \"C\"",
            &[&self.host],
        )?;
        Ok(rows
            .iter()
            .map(|r| AlbumRow {
                name: r.get(0),
                query: r.get(1),
                folder: path_from(r.get(2)),
                links: r.get(3),
            })
            .collect())
    }

    /// Stores an album; false when this host has one of that name (nothing changed).
    pub fn add_album(&mut self, a: &AlbumRow, now: i64) -> Result<bool, CatalogError> {
        let mut c = self.conn()?;
        let n = c
            .execute(
                "INSERT INTO albums (host, name, query, folder, links, created)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (host, name) DO NOTHING",
                &[
                    &self.host,
                    &a.name,
                    &a.query,
                    &path_bytes(&a.folder),
                    &a.links,
                    &now,
                ],
            )
            .map_err(|e| self.error(e))?;
        Ok(n == 1)
    }

    /// Forgets a stored album of this host; false when there was none.
    pub fn remove_album(&mut self, name: &str) -> Result<bool, CatalogError> {
        let mut c = self.conn()?;
        let n = c
            .execute(
                "DELETE FROM albums WHERE host = $1 AND name = $2",
                &[&self.host, &name],
            )
            .map_err(|e| self.error(e))?;
        Ok(n == 1)
    }

    /// The recorded links of an album of this host, by path.
    pub fn album_links(&self, album: &str) -> Result<Vec<LinkRow>, CatalogError> {
        self.rows(
            "SELECT path, album, target, hash, inode FROM album_links
             WHERE host = $1 AND album = $2 ORDER BY path",
            &[&self.host, &album],
        )?
        .iter()
        .map(link_row)
        .collect()
    }

    /// Names of this host's albums that have link records.
    pub fn albums_with_links(&self) -> Result<Vec<String>, CatalogError> {
        let rows = self.rows(
            "SELECT album FROM album_links WHERE host = $1 GROUP BY album ORDER BY album COLLATE \"C\"",
            &[&self.host],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Records links (before they are made), replacing records of the same paths.
    pub fn record_links(&mut self, links: &[LinkRow]) -> Result<(), CatalogError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(|e| self.error(e))?;
        let s = self.stmt(
            &mut tx,
            "INSERT INTO album_links (host, path, album, target, hash, inode)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (host, path) DO UPDATE SET album = excluded.album,
                 target = excluded.target, hash = excluded.hash, inode = excluded.inode",
        )?;
        for l in links {
            tx.execute(
                &s,
                &[
                    &self.host,
                    &path_bytes(&l.path),
                    &l.album,
                    &path_bytes(&l.target),
                    &&l.hash[..],
                    &l.inode.map(|i| i as i64),
                ],
            )
            .map_err(|e| self.error(e))?;
        }
        tx.commit().map_err(|e| self.error(e))
    }

    /// Sets the inode of a recorded hard link once it is made.
    pub fn set_link_inode(&mut self, path: &Path, inode: u64) -> Result<(), CatalogError> {
        let mut c = self.conn()?;
        c.execute(
            "UPDATE album_links SET inode = $3 WHERE host = $1 AND path = $2",
            &[&self.host, &path_bytes(path), &(inode as i64)],
        )
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Forgets link records.
    pub fn forget_links(&mut self, paths: &[&Path]) -> Result<(), CatalogError> {
        let mut c = self.conn()?;
        let bytes: Vec<&[u8]> = paths.iter().map(|p| path_bytes(p)).collect();
        c.execute(
            "DELETE FROM album_links WHERE host = $1 AND path = ANY ($2)",
            &[&self.host, &bytes],
        )
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The record of one link path of this host, if phototag made it.
    pub fn link(&self, path: &Path) -> Result<Option<LinkRow>, CatalogError> {
        self.rows(
            "SELECT path, album, target, hash, inode FROM album_links
             WHERE host = $1 AND path = $2",
            &[&self.host, &path_bytes(path)],
        )?
        .first()
        .map(link_row)
        .transpose()
    }

    /// Every file (of every host) with its image's model and tags, by shown path, in one
    /// snapshot.
    pub fn all_files_with_tags(&self) -> Result<Vec<FileTags>, CatalogError> {
        let mut c = self.conn()?;
        let mut tx = self.snapshot(&mut c)?;
        let rows = tx
            .query(
                "SELECT f.host, f.path, f.hash, m.name FROM files f
                 JOIN images i ON i.hash = f.hash JOIN models m ON m.id = i.model_id",
                &[],
            )
            .map_err(|e| self.error(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(FileTags {
                path: self.shown_path(r.get(0), r.get(1)),
                hash: hash_of(r, 2)?,
                model: r.get(3),
                tags: Vec::new(),
            });
        }
        out.sort_by(|a, b| path_bytes(&a.path).cmp(path_bytes(&b.path)));
        let tags = tx
            .query(
                "SELECT hash, rank, class_index, label, probability FROM tags ORDER BY hash, rank",
                &[],
            )
            .map_err(|e| self.error(e))?;
        let mut by_hash: std::collections::HashMap<Hash, Vec<TagRow>> = Default::default();
        for r in &tags {
            by_hash.entry(hash_of(r, 0)?).or_default().push(TagRow {
                rank: r.get::<_, i32>(1).max(0) as u32,
                class_index: r.get::<_, i32>(2).max(0) as usize,
                label: r.get(3),
                probability: r.get(4),
            });
        }
        for f in &mut out {
            f.tags = by_hash.get(&f.hash).cloned().unwrap_or_default();
        }
        tx.commit().map_err(|e| self.error(e))?;
        Ok(out)
    }

    /// The model name and tags of one content.
    pub fn model_and_tags(
        &self,
        hash: &Hash,
    ) -> Result<Option<(String, Vec<TagRow>)>, CatalogError> {
        let mut c = self.conn()?;
        let mut tx = self.snapshot(&mut c)?;
        let model = tx
            .query_opt(
                "SELECT m.name FROM images i JOIN models m ON m.id = i.model_id WHERE i.hash = $1",
                &[&&hash[..]],
            )
            .map_err(|e| self.error(e))?
            .map(|r| r.get::<_, String>(0));
        let out = match model {
            Some(m) => Some((m, tags_of(self, &mut tx, hash)?)),
            None => None,
        };
        tx.commit().map_err(|e| self.error(e))?;
        Ok(out)
    }
}
