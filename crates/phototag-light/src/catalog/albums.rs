//! Albums and their links: the albums added from the command line, the record of every
//! link phototag made in an album folder, and the whole-catalog listing `export` reads.
//!
//! May not: touch the file system (`album::links` does), or decide what an album holds
//! (`album::plan` does).

use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension};

use super::read::tags_of;
use super::rows::{path_bytes, path_from, Hash, TagRow};
use super::{CatalogError, Sqlite};

/// An album stored in the catalog (`phototag album add`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlbumRow {
    pub name: String,
    pub query: String,
    pub folder: PathBuf,
    /// `symlink` or `hardlink`.
    pub links: String,
}

/// A link phototag made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    pub path: PathBuf,
    pub album: String,
    /// What it points at (the photo's path).
    pub target: PathBuf,
    pub hash: Hash,
    /// For hard links: the inode the link had when made.
    pub inode: Option<u64>,
}

/// One file of the catalog with its image's tags and model, for `export`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileTags {
    pub path: PathBuf,
    pub hash: Hash,
    pub model: String,
    pub tags: Vec<TagRow>,
}

impl Sqlite {
    /// Albums added from the command line, by name.
    pub fn albums(&self) -> Result<Vec<AlbumRow>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, query, folder, links FROM albums ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok(AlbumRow {
                name: r.get(0)?,
                query: r.get(1)?,
                folder: path_from(r.get(2)?),
                links: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores an album; false when one of that name exists (nothing changed).
    pub fn add_album(&mut self, a: &AlbumRow, now: i64) -> Result<bool, CatalogError> {
        let n = self.conn.execute(
            "INSERT INTO albums (name, query, folder, links, created) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (name) DO NOTHING",
            params![a.name, a.query, path_bytes(&a.folder), a.links, now],
        )?;
        Ok(n == 1)
    }

    /// Forgets a stored album (not its link records); false when there was none.
    pub fn remove_album(&mut self, name: &str) -> Result<bool, CatalogError> {
        let n = self
            .conn
            .execute("DELETE FROM albums WHERE name = ?1", [name])?;
        Ok(n == 1)
    }

    /// The recorded links of an album, by path.
    pub fn album_links(&self, album: &str) -> Result<Vec<LinkRow>, CatalogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT path, album, target, hash, inode FROM album_links WHERE album = ?1
             ORDER BY path",
        )?;
        let rows = stmt.query_map([album], |r| {
            Ok(LinkRow {
                path: path_from(r.get(0)?),
                album: r.get(1)?,
                target: path_from(r.get(2)?),
                hash: r.get(3)?,
                inode: r.get::<_, Option<i64>>(4)?.map(|i| i as u64),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Names of albums that have link records.
    pub fn albums_with_links(&self) -> Result<Vec<String>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT album FROM album_links ORDER BY album")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records links (before they are made), replacing records of the same paths.
    pub fn record_links(&mut self, links: &[LinkRow]) -> Result<(), CatalogError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO album_links (path, album, target, hash, inode)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for l in links {
                stmt.execute(params![
                    path_bytes(&l.path),
                    l.album,
                    path_bytes(&l.target),
                    l.hash,
                    l.inode.map(|i| i as i64)
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets the inode of a recorded hard link once it is made.
    pub fn set_link_inode(&mut self, path: &Path, inode: u64) -> Result<(), CatalogError> {
        self.conn.execute(
            "UPDATE album_links SET inode = ?2 WHERE path = ?1",
            params![path_bytes(path), inode as i64],
        )?;
        Ok(())
    }

    /// Forgets link records (after the links are removed, or found not to be ours).
    pub fn forget_links(&mut self, paths: &[&Path]) -> Result<(), CatalogError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("DELETE FROM album_links WHERE path = ?1")?;
            for p in paths {
                stmt.execute([path_bytes(p)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The record of one link path, if phototag made it.
    pub fn link(&self, path: &Path) -> Result<Option<LinkRow>, CatalogError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT path, album, target, hash, inode FROM album_links WHERE path = ?1",
            )?
            .query_row([path_bytes(path)], |r| {
                Ok(LinkRow {
                    path: path_from(r.get(0)?),
                    album: r.get(1)?,
                    target: path_from(r.get(2)?),
                    hash: r.get(3)?,
                    inode: r.get::<_, Option<i64>>(4)?.map(|i| i as u64),
                })
            })
            .optional()?)
    }

    /// Every file with its image's model and tags, by path, in one snapshot.
    pub fn all_files_with_tags(&self) -> Result<Vec<FileTags>, CatalogError> {
        let tx = self.snapshot()?;
        let mut out = Vec::new();
        {
            let mut stmt = tx.prepare(
                "SELECT f.path, f.hash, m.name FROM files f
                 JOIN images i ON i.hash = f.hash JOIN models m ON m.id = i.model_id
                 ORDER BY f.path",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let hash: Hash = r.get(1)?;
                out.push(FileTags {
                    path: path_from(r.get(0)?),
                    hash,
                    model: r.get(2)?,
                    tags: Vec::new(),
                });
            }
        }
        for f in &mut out {
            f.tags = tags_of(&tx, &f.hash)?;
        }
        Ok(out)
    }

    /// The model name and tags of one content.
    pub fn model_and_tags(
        &self,
        hash: &Hash,
    ) -> Result<Option<(String, Vec<TagRow>)>, CatalogError> {
        let tx = self.snapshot()?;
        let model: Option<String> = tx
            .query_row(
                "SELECT m.name FROM images i JOIN models m ON m.id = i.model_id WHERE i.hash = ?1",
                [hash],
                |r| r.get(0),
            )
            .optional()?;
        match model {
            Some(m) => Ok(Some((m, tags_of(&tx, hash)?))),
            None => Ok(None),
        }
    }

    /// A number that changes when another connection commits (`PRAGMA data_version`):
    /// the daemon's worker polls it to notice `phototag retag`, `index` or `album add`.
    pub fn data_version(&self) -> Result<i64, CatalogError> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }
}
