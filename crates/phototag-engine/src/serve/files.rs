//! From a content hash the catalog knows to bytes on disk: the request names only a hash
//! (64 hex digits, parsed, never used as a path); the catalog gives the paths of that
//! content; the first one that still holds the same bytes is read. A file changed since it
//! was indexed is skipped (its stat first, then its BLAKE3 hash), so what is served is
//! always the content the catalog describes.
//!
//! May not: build a path from anything in a request, or follow a path the catalog did not give.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use phototag_light::catalog::{Catalog, CatalogError, FileRow, Hash, ImageRow};
use phototag_light::fsutil::open_regular;

/// A known content: its image row and its file rows.
#[derive(Debug)]
pub struct Known {
    pub image: ImageRow,
    pub files: Vec<FileRow>,
}

/// The image and files of a hash, or `None` when the catalog does not know it (or no file
/// holds it any more).
pub fn known(catalog: &Catalog, hash: &Hash) -> Result<Option<Known>, CatalogError> {
    let Some(image) = catalog.image(hash)? else {
        return Ok(None);
    };
    let files = catalog.files_with(hash)?;
    if files.is_empty() {
        return Ok(None);
    }
    Ok(Some(Known { image, files }))
}

/// The bytes of the first of `files` that still holds `hash` (at most `max` bytes), and
/// its path; `None` when every copy is gone or changed.
pub fn read_content(files: &[FileRow], hash: &Hash, max: u64) -> Option<(PathBuf, Vec<u8>)> {
    files.iter().find_map(|f| {
        read_if_same(&f.path, f, hash, max)
            .map(|b| (f.path.clone(), b))
            .map_err(|why| tracing::debug!(path = %f.path.display(), "not served: {why}"))
            .ok()
    })
}

fn read_if_same(path: &Path, row: &FileRow, hash: &Hash, max: u64) -> Result<Vec<u8>, String> {
    // Never blocks: a FIFO put at a catalogued path is refused, not waited on.
    let (file, meta) = open_regular(path).map_err(|e| e.to_string())?;
    let mtime_ns = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
    if meta.len() != row.size || mtime_ns != row.mtime_ns as i128 {
        return Err("changed since it was indexed".into());
    }
    if meta.len() > max {
        return Err(format!("{} bytes, over the limit of {max}", meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if blake3::hash(&bytes) != *hash {
        return Err("content differs from the catalog's".into());
    }
    Ok(bytes)
}

/// The media type of a stored format name (`jpeg`, `png`, ...).
pub fn media_type(format: &str) -> &'static str {
    match format {
        "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "tiff" => "image/tiff",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jpg");
        std::fs::write(&path, b"original").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let hash = phototag_light::catalog::hash_bytes(b"original");
        let row = FileRow {
            path: path.clone(),
            root_id: 1,
            hash,
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            last_seen: 0,
        };
        let got = read_content(std::slice::from_ref(&row), &hash, 1 << 20).unwrap();
        assert_eq!(got.1, b"original");
        assert!(
            read_content(std::slice::from_ref(&row), &hash, 3).is_none(),
            "limit"
        );
        // Same size and mtime, other bytes: the hash catches it.
        std::fs::write(&path, b"0riginal").unwrap();
        let t = std::fs::FileTimes::new().set_modified(meta.modified().unwrap());
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_times(t)
            .unwrap();
        assert!(read_content(std::slice::from_ref(&row), &hash, 1 << 20).is_none());
        std::fs::remove_file(&path).unwrap();
        assert!(read_content(&[row], &hash, 1 << 20).is_none());
    }
}
