//! `phototag catalog copy`: moves a catalog between backends (SQLite ↔ PostgreSQL, or
//! between two of either) with nothing lost, and proves it: every table is read from the
//! source in pages (in key order), each page written to the target in one transaction,
//! and then each table of the target is read back and compared, row for row, by count
//! and by a checksum of its rows' contents.
//!
//! Rows travel by their natural keys, not their ids (a model by its SHA-256, a root and
//! a file by path, an image by hash), so a target that already holds some of them (a copy
//! that was interrupted, run again) keeps what it has and gets the rest: a copy is
//! resumed by running it again. A row the target already had with other contents is
//! kept, and the comparison says so.
//!
//! A PostgreSQL catalog is read and written as this host's part (its roots, files,
//! failures, albums and links, and the images they point at): copying a shared catalog
//! into SQLite takes one host's library.
//!
//! Layout: here the rows, the driver and the checksums; `sqlite` and `pg` (in `pg/`)
//! read and write pages.
//!
//! May not: change a row the target already has, or touch the source.

mod sqlite;

use std::collections::HashSet;

use super::{Backend, Catalog, CatalogError, Hash};

/// The tables copied, in the order they are (what a row refers to comes first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    Models,
    Roots,
    Images,
    Embeddings,
    Files,
    Failures,
    Albums,
    AlbumLinks,
    TaughtTags,
}

impl Table {
    pub const ALL: [Table; 9] = [
        Table::Models,
        Table::Roots,
        Table::Images,
        Table::Embeddings,
        Table::Files,
        Table::Failures,
        Table::Albums,
        Table::AlbumLinks,
        Table::TaughtTags,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Models => "models",
            Table::Roots => "roots",
            Table::Images => "images",
            Table::Embeddings => "embeddings",
            Table::Files => "files",
            Table::Failures => "failures",
            Table::Albums => "albums",
            Table::AlbumLinks => "album_links",
            Table::TaughtTags => "taught_tags",
        }
    }

    /// Rows per page (and per target transaction): [`PAGE`], but a few taught tags, each of
    /// which carries all its examples with their embeddings.
    pub fn page(self) -> usize {
        match self {
            Table::TaughtTags => 16,
            _ => PAGE,
        }
    }
}

/// A tag of a copied image: rank, class, label, probability.
pub type CopiedTag = (u32, i64, String, f32);

/// An example of a copied taught tag: hash, yes or no, the SHA-256 of the model of its
/// embedding, the embedding's bytes and scale.
pub type CopiedExample = (Hash, bool, String, Vec<u8>, f32);

/// One row, by natural keys (no ids).
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Model {
        sha256: String,
        name: String,
        architecture: String,
    },
    Root {
        path: Vec<u8>,
        state: String,
        last_scan: Option<i64>,
    },
    /// An image with all its tags.
    Image {
        hash: Hash,
        width: i64,
        height: i64,
        format: String,
        model_sha256: String,
        classified_at: i64,
        tags: Vec<CopiedTag>,
    },
    /// An image's embedding, by the model that made it.
    Embedding {
        hash: Hash,
        model_sha256: String,
        vector: Vec<u8>,
        scale: f32,
    },
    File {
        path: Vec<u8>,
        root: Vec<u8>,
        hash: Hash,
        size: i64,
        mtime_ns: i64,
        last_seen: i64,
    },
    Failure {
        path: Vec<u8>,
        root: Vec<u8>,
        size: i64,
        mtime_ns: i64,
        error: String,
        attempts: i64,
        last_attempt: i64,
    },
    Album {
        name: String,
        query: String,
        folder: Vec<u8>,
        links: String,
        created: i64,
    },
    Link {
        path: Vec<u8>,
        album: String,
        target: Vec<u8>,
        hash: Hash,
        inode: Option<i64>,
    },
    /// A taught tag with all its examples.
    Taught(CopiedTaught),
}

/// A copied taught tag with all its examples. Its id travels with it: the id is the class
/// number of its scores, which travel as the tags of their images.
#[derive(Debug, Clone, PartialEq)]
pub struct CopiedTaught {
    pub name: String,
    pub id: i64,
    pub model_sha256: String,
    /// Little-endian f32s, as stored.
    pub weights: Vec<u8>,
    pub bias: f32,
    pub threshold: f32,
    pub figures: String,
    pub created_at: i64,
    pub fitted_at: i64,
    pub examples: Vec<CopiedExample>,
}

impl Row {
    /// The key pages are ordered and resumed by.
    pub fn key(&self) -> Vec<u8> {
        match self {
            Row::Model { sha256, .. } => sha256.as_bytes().to_vec(),
            Row::Root { path, .. }
            | Row::File { path, .. }
            | Row::Failure { path, .. }
            | Row::Link { path, .. } => path.clone(),
            Row::Image { hash, .. } | Row::Embedding { hash, .. } => hash.to_vec(),
            Row::Album { name, .. } => name.as_bytes().to_vec(),
            Row::Taught(t) => t.name.as_bytes().to_vec(),
        }
    }

    /// Every field, in a fixed layout (lengths before variable parts, floats by their
    /// bits): what the checksum is taken over.
    fn canonical(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(128);
        let bytes = |b: &mut Vec<u8>, v: &[u8]| {
            b.extend_from_slice(&(v.len() as u64).to_le_bytes());
            b.extend_from_slice(v);
        };
        let int = |b: &mut Vec<u8>, v: i64| b.extend_from_slice(&v.to_le_bytes());
        let opt = |b: &mut Vec<u8>, v: Option<i64>| match v {
            Some(v) => {
                b.push(1);
                b.extend_from_slice(&v.to_le_bytes());
            }
            None => b.push(0),
        };
        match self {
            Row::Model {
                sha256,
                name,
                architecture,
            } => {
                b.push(1);
                bytes(&mut b, sha256.as_bytes());
                bytes(&mut b, name.as_bytes());
                bytes(&mut b, architecture.as_bytes());
            }
            Row::Root {
                path,
                state,
                last_scan,
            } => {
                b.push(2);
                bytes(&mut b, path);
                bytes(&mut b, state.as_bytes());
                opt(&mut b, *last_scan);
            }
            Row::Image {
                hash,
                width,
                height,
                format,
                model_sha256,
                classified_at,
                tags,
            } => {
                b.push(3);
                bytes(&mut b, hash);
                int(&mut b, *width);
                int(&mut b, *height);
                bytes(&mut b, format.as_bytes());
                bytes(&mut b, model_sha256.as_bytes());
                int(&mut b, *classified_at);
                int(&mut b, tags.len() as i64);
                for (rank, class, label, p) in tags {
                    int(&mut b, i64::from(*rank));
                    int(&mut b, *class);
                    bytes(&mut b, label.as_bytes());
                    b.extend_from_slice(&p.to_bits().to_le_bytes());
                }
            }
            Row::Embedding {
                hash,
                model_sha256,
                vector,
                scale,
            } => {
                b.push(8);
                bytes(&mut b, hash);
                bytes(&mut b, model_sha256.as_bytes());
                bytes(&mut b, vector);
                b.extend_from_slice(&scale.to_bits().to_le_bytes());
            }
            Row::File {
                path,
                root,
                hash,
                size,
                mtime_ns,
                last_seen,
            } => {
                b.push(4);
                bytes(&mut b, path);
                bytes(&mut b, root);
                bytes(&mut b, hash);
                int(&mut b, *size);
                int(&mut b, *mtime_ns);
                int(&mut b, *last_seen);
            }
            Row::Failure {
                path,
                root,
                size,
                mtime_ns,
                error,
                attempts,
                last_attempt,
            } => {
                b.push(5);
                bytes(&mut b, path);
                bytes(&mut b, root);
                int(&mut b, *size);
                int(&mut b, *mtime_ns);
                bytes(&mut b, error.as_bytes());
                int(&mut b, *attempts);
                int(&mut b, *last_attempt);
            }
            Row::Album {
                name,
                query,
                folder,
                links,
                created,
            } => {
                b.push(6);
                bytes(&mut b, name.as_bytes());
                bytes(&mut b, query.as_bytes());
                bytes(&mut b, folder);
                bytes(&mut b, links.as_bytes());
                int(&mut b, *created);
            }
            Row::Link {
                path,
                album,
                target,
                hash,
                inode,
            } => {
                b.push(7);
                bytes(&mut b, path);
                bytes(&mut b, album.as_bytes());
                bytes(&mut b, target);
                bytes(&mut b, hash);
                opt(&mut b, *inode);
            }
            Row::Taught(t) => {
                b.push(9);
                bytes(&mut b, t.name.as_bytes());
                int(&mut b, t.id);
                bytes(&mut b, t.model_sha256.as_bytes());
                bytes(&mut b, &t.weights);
                b.extend_from_slice(&t.bias.to_bits().to_le_bytes());
                b.extend_from_slice(&t.threshold.to_bits().to_le_bytes());
                bytes(&mut b, t.figures.as_bytes());
                int(&mut b, t.created_at);
                int(&mut b, t.fitted_at);
                int(&mut b, t.examples.len() as i64);
                for (hash, positive, model, vector, scale) in &t.examples {
                    bytes(&mut b, hash);
                    b.push(u8::from(*positive));
                    bytes(&mut b, model.as_bytes());
                    bytes(&mut b, vector);
                    b.extend_from_slice(&scale.to_bits().to_le_bytes());
                }
            }
        }
        b
    }
}

/// An order-independent checksum of rows: the sum (mod 2^128) of the first 16 bytes of
/// each row's BLAKE3, and the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Digest {
    pub rows: u64,
    sum: u128,
}

impl Digest {
    fn add(&mut self, row: &Row) {
        let h = blake3::hash(&row.canonical());
        let mut first = [0u8; 16];
        first.copy_from_slice(&h.as_bytes()[..16]);
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(first));
        self.rows += 1;
    }

    /// The checksum as 32 hex digits.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }
}

/// What the copy did to one table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableReport {
    pub table: Table,
    /// Rows in the source.
    pub source_rows: u64,
    /// Rows the target did not have and got now.
    pub copied: u64,
    /// Rows the target already had (an earlier, interrupted copy, or its own).
    pub present: u64,
    /// Of the source's rows, how many the target holds now, and the checksums of both.
    pub target_rows: u64,
    pub source_checksum: String,
    pub target_checksum: String,
}

impl TableReport {
    /// The target holds every row of the source, with the same contents.
    pub fn matches(&self) -> bool {
        self.target_rows == self.source_rows && self.source_checksum == self.target_checksum
    }
}

/// Rows per page (and per target transaction).
pub const PAGE: usize = 2_000;

/// Reads a page of a table: up to `limit` rows with a key above `after`, in key order.
fn read_page(
    cat: &Catalog,
    table: Table,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<Row>, CatalogError> {
    match &cat.backend {
        Backend::Sqlite(c) => sqlite::read_page(c, table, after, limit),
        Backend::Postgres(c) => c.read_page(table, after, limit),
    }
}

/// Writes rows the target does not have (by key), in one transaction; how many it
/// wrote.
fn write_page(cat: &mut Catalog, table: Table, rows: &[Row]) -> Result<u64, CatalogError> {
    match &mut cat.backend {
        Backend::Sqlite(c) => sqlite::write_page(c, rows),
        Backend::Postgres(c) => c.write_page(table, rows),
    }
}

/// Copies every table of `from` into `to`, then compares them; `progress` hears of each
/// page (table, rows so far).
pub fn copy(
    from: &Catalog,
    to: &mut Catalog,
    progress: &mut dyn FnMut(Table, u64),
) -> Result<Vec<TableReport>, CatalogError> {
    // Copy every table (what a row refers to comes first)...
    let mut copied_tables = Vec::new();
    for table in Table::ALL {
        let mut digest = Digest::default();
        let mut keys: HashSet<[u8; 16]> = HashSet::new();
        let mut copied = 0;
        let mut after: Option<Vec<u8>> = None;
        let page = table.page();
        loop {
            let rows = read_page(from, table, after.as_deref(), page)?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                digest.add(r);
                keys.insert(key_digest(&r.key()));
            }
            copied += write_page(to, table, &rows)?;
            after = rows.last().map(Row::key);
            progress(table, digest.rows);
            if rows.len() < page {
                break;
            }
        }
        copied_tables.push((table, digest, keys, copied));
    }
    // ...then read each back: the target's rows with the source's keys.
    let mut reports = Vec::new();
    for (table, digest, keys, copied) in copied_tables {
        let mut back = Digest::default();
        let mut after: Option<Vec<u8>> = None;
        let page = table.page();
        loop {
            let rows = read_page(to, table, after.as_deref(), page)?;
            for r in rows.iter().filter(|r| keys.contains(&key_digest(&r.key()))) {
                back.add(r);
            }
            after = rows.last().map(Row::key);
            if rows.len() < page {
                break;
            }
        }
        reports.push(TableReport {
            table,
            source_rows: digest.rows,
            copied,
            present: digest.rows.saturating_sub(copied),
            target_rows: back.rows,
            source_checksum: digest.hex(),
            target_checksum: back.hex(),
        });
    }
    // A SQLite target: build the search lists the new rows removed.
    to.refresh_class_lists(None)?;
    Ok(reports)
}

fn key_digest(key: &[u8]) -> [u8; 16] {
    let mut k = [0u8; 16];
    k.copy_from_slice(&blake3::hash(key).as_bytes()[..16]);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_ignores_order_and_sees_every_field() {
        let file = |size: i64| Row::File {
            path: b"/p/a.jpg".to_vec(),
            root: b"/p".to_vec(),
            hash: [1; 32],
            size,
            mtime_ns: 5,
            last_seen: 6,
        };
        let album = Row::Album {
            name: "Dogs".into(),
            query: "dog".into(),
            folder: b"/a".to_vec(),
            links: "symlink".into(),
            created: 1,
        };
        let (mut a, mut b) = (Digest::default(), Digest::default());
        a.add(&file(1));
        a.add(&album);
        b.add(&album);
        b.add(&file(1));
        assert_eq!(a, b);
        let mut c = Digest::default();
        c.add(&album);
        c.add(&file(2));
        assert_ne!(a.hex(), c.hex());
        assert_eq!(a.rows, 2);
    }
}
