//! Every call of the public catalog, handed to its backend: the SQLite file (`read`,
//! `write`, `query`, `lists`, `albums` beside this file) or the PostgreSQL database
//! (`pg/`). Each backend documents what its calls do; both give the same answers to the
//! same rows. What only one backend has is said here: search lists and checkpoints are
//! SQLite's (no-ops on PostgreSQL), claims and hosts PostgreSQL's.
//!
//! May not: hold SQL or logic beyond choosing the backend.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::albums::{AlbumRow, FileTags, LinkRow};
use super::embeddings::{EmbeddingCounts, EmbeddingScan, StoredEmbedding};
use super::listing::Listing;
use super::lists::ListsRefresh;
use super::pg::{self, Claimer};
use super::query::{DupeGroup, SearchQuery};
use super::rows::{
    FailureRow, FileRow, Hash, Hit, ImageRow, LabelCount, NewFile, NewImage, Stats, TagRow,
};
use super::taught::{ExampleRow, NewTaught, TaughtRow};
use super::{write, Backend, Catalog, CatalogError, Location};
use crate::search::Request;
use crate::vectors::sketch::Sketch;
use crate::vectors::EmbeddingRef;

/// `dispatch!(self, c => c.call(args))`: the call on whichever backend `self` has.
macro_rules! dispatch {
    ($self:ident, $c:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sqlite($c) => $call,
            Backend::Postgres($c) => $call,
        }
    };
    (mut $self:ident, $c:ident => $call:expr) => {
        match &mut $self.backend {
            Backend::Sqlite($c) => $call,
            Backend::Postgres($c) => $call,
        }
    };
}

impl Catalog {
    /// PostgreSQL: from how many bytes a search reads half of its lists on a second
    /// connection; returns how many searches have so far. (Tests: make small searches
    /// split.)
    #[cfg(test)]
    pub(crate) fn pg_split_reads(&self, from_bytes: usize) -> usize {
        match &self.backend {
            Backend::Postgres(c) => c.split_reads(from_bytes),
            Backend::Sqlite(_) => 0,
        }
    }

    /// Where the catalog is.
    pub fn location(&self) -> Location {
        match &self.backend {
            Backend::Sqlite(c) => Location::Sqlite(c.path().to_path_buf()),
            Backend::Postgres(c) => Location::Postgres(c.target().clone()),
        }
    }

    /// Whether several machines may share it (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// The name this machine's roots and files are recorded under (PostgreSQL only).
    pub fn host(&self) -> Option<&str> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(c) => Some(c.host()),
        }
    }

    /// Whether the catalog answers now; on PostgreSQL this connects again after the
    /// server went away.
    pub fn ping(&self) -> Result<(), CatalogError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(c) => c.ping(),
        }
    }

    /// The schema version recorded in the catalog.
    pub fn schema_version(&self) -> Result<u32, CatalogError> {
        dispatch!(self, c => c.schema_version())
    }

    /// Records a model and returns its id; the same SHA-256 always gives the same id (the
    /// name and architecture are updated to the latest seen).
    pub fn register_model(
        &mut self,
        name: &str,
        sha256: &str,
        architecture: &str,
    ) -> Result<i64, CatalogError> {
        dispatch!(mut self, c => c.register_model(name, sha256, architecture))
    }

    /// Starts the one write transaction. Dropped without [`Writer::commit`], it rolls back.
    pub fn begin(&mut self) -> Result<Writer<'_>, CatalogError> {
        Ok(Writer(match &mut self.backend {
            Backend::Sqlite(c) => Inner::Sqlite(c.begin()?),
            Backend::Postgres(c) => Inner::Postgres(c.begin()?),
        }))
    }

    /// SQLite: moves the write-ahead log into the file (see `Sqlite::checkpoint`).
    /// PostgreSQL: nothing to do (true).
    pub fn checkpoint(&self) -> Result<bool, CatalogError> {
        match &self.backend {
            Backend::Sqlite(c) => c.checkpoint(),
            Backend::Postgres(_) => Ok(true),
        }
    }

    /// Claims on contents for workers sharing the catalog (PostgreSQL); `None` for a
    /// SQLite catalog, which has one writer at a time.
    pub fn claimer(&self) -> Result<Option<Claimer>, CatalogError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::Postgres(c) => c.claimer().map(Some),
        }
    }

    // --- reads -------------------------------------------------------------------------

    /// Every file row of this host strictly under `root` (by path bytes).
    pub fn files_under(&self, root: &Path) -> Result<HashMap<PathBuf, FileRow>, CatalogError> {
        dispatch!(self, c => c.files_under(root))
    }

    /// Every failure row of this host strictly under `root`.
    pub fn failures_under(
        &self,
        root: &Path,
    ) -> Result<HashMap<PathBuf, FailureRow>, CatalogError> {
        dispatch!(self, c => c.failures_under(root))
    }

    /// The hash of every stored image (what never needs classifying again).
    pub fn image_hashes(&self) -> Result<HashSet<Hash>, CatalogError> {
        dispatch!(self, c => c.image_hashes())
    }

    /// One image and the name of the model that tagged it.
    pub fn image(&self, hash: &Hash) -> Result<Option<ImageRow>, CatalogError> {
        dispatch!(self, c => c.image(hash))
    }

    /// The file row of one path of this host.
    pub fn file(&self, path: &Path) -> Result<Option<FileRow>, CatalogError> {
        dispatch!(self, c => c.file(path))
    }

    /// Every file row of one content, by path bytes (another host's as `host:path`).
    pub fn files_with(&self, hash: &Hash) -> Result<Vec<FileRow>, CatalogError> {
        dispatch!(self, c => c.files_with(hash))
    }

    /// The `limit` most frequent first-ranked labels, most frequent first (ties by label).
    pub fn top_labels(&self, limit: usize) -> Result<Vec<LabelCount>, CatalogError> {
        dispatch!(self, c => c.top_labels(limit))
    }

    /// An image's tags, rank 1 first; empty for an unknown hash.
    pub fn tags(&self, hash: &Hash) -> Result<Vec<TagRow>, CatalogError> {
        dispatch!(self, c => c.tags(hash))
    }

    /// Images tagged by a model other than `model_id` (and with `without_embedding`, those
    /// of `model_id` that have no embedding by it), each with the paths of its content
    /// (this host's, on PostgreSQL), for `retag`.
    pub fn images_to_retag(
        &self,
        model_id: i64,
        without_embedding: bool,
    ) -> Result<Vec<(Hash, Vec<PathBuf>)>, CatalogError> {
        dispatch!(self, c => c.images_to_retag(model_id, without_embedding))
    }

    /// Files newest first (by mtime, then path, both descending; this host's on
    /// PostgreSQL), those after `after`, at most `limit`: the web page's library.
    pub fn newest_files(
        &self,
        after: Option<(i64, &Path)>,
        limit: usize,
    ) -> Result<Vec<FileRow>, CatalogError> {
        dispatch!(self, c => c.newest_files(after, limit))
    }

    /// Content recorded while classification waited (see [`Writer::put_queued`]), at most
    /// `limit`, each with the file rows (this host's) that point at it, first recorded
    /// first.
    pub fn queued_images(&self, limit: usize) -> Result<Vec<(Hash, Vec<FileRow>)>, CatalogError> {
        dispatch!(self, c => c.queued_images(limit))
    }

    /// How many contents wait to be classified (on PostgreSQL, of those this host holds).
    pub fn queued_count(&self) -> Result<u64, CatalogError> {
        dispatch!(self, c => c.queued_count())
    }

    /// Counts for `phototag stats`, from one snapshot.
    pub fn stats(&self) -> Result<Stats, CatalogError> {
        dispatch!(self, c => c.stats())
    }

    // --- search --------------------------------------------------------------------------

    /// Files whose image has a tag of one of `q.classes`, best first, each with its
    /// image's tags (see [`Catalog::find`]).
    pub fn search(&self, q: &SearchQuery) -> Result<Vec<Hit>, CatalogError> {
        self.find(&q.request())
    }

    /// Files matching a compiled query within the request's folders and dates, best score
    /// first, then by path bytes, from one snapshot.
    pub fn find(&self, q: &Request) -> Result<Vec<Hit>, CatalogError> {
        dispatch!(self, c => c.find(q))
    }

    /// The files matching a compiled query, as [`Catalog::find`] gives them but without
    /// tags, in the compact form a long listing needs.
    pub fn list(&self, q: &Request) -> Result<Listing, CatalogError> {
        dispatch!(self, c => c.list(q))
    }

    /// How many files [`Catalog::list`] gives, without keeping or ranking them where it
    /// can (`search --count`).
    pub fn count(&self, q: &Request) -> Result<usize, CatalogError> {
        dispatch!(self, c => c.count(q))
    }

    /// Groups of at least two paths with the same content (only paths strictly under
    /// `under` when given), ordered by their first path.
    pub fn duplicates(&self, under: Option<&Path>) -> Result<Vec<DupeGroup>, CatalogError> {
        dispatch!(self, c => c.duplicates(under))
    }

    /// [`Catalog::find`] by a chosen SQLite strategy; on PostgreSQL, `Lists` reads only
    /// the class lists and `Scan` and `Lookup` only the statements (tests compare them
    /// all).
    #[cfg(test)]
    pub(super) fn search_using(
        &self,
        q: &Request,
        strategy: super::query::Strategy,
    ) -> Result<Vec<Hit>, CatalogError> {
        use super::pg::Way;
        use super::query::Strategy;
        match &self.backend {
            Backend::Sqlite(c) => c.search_using(q, strategy),
            Backend::Postgres(c) => c.find_using(
                q,
                match strategy {
                    Strategy::Auto => Way::Auto,
                    Strategy::Lists => Way::Lists,
                    Strategy::Scan | Strategy::Lookup => Way::Statement,
                },
            ),
        }
    }

    /// Rebuilds the per-class search lists that changes removed or made stale (see
    /// `catalog::lists` and `catalog::pg::lists`), until none is left or `budget` is spent.
    pub fn refresh_class_lists(
        &mut self,
        budget: Option<Duration>,
    ) -> Result<ListsRefresh, CatalogError> {
        match &mut self.backend {
            Backend::Sqlite(c) => c.refresh_class_lists(budget),
            Backend::Postgres(c) => c.refresh_class_lists(budget),
        }
    }

    /// How many classes have no (true) search list.
    pub fn missing_class_lists(&self) -> Result<usize, CatalogError> {
        dispatch!(self, c => c.missing_class_lists())
    }

    // --- embeddings (see `embeddings`) ---------------------------------------------------

    /// One image's embedding, if it has one.
    pub fn embedding(&self, hash: &Hash) -> Result<Option<StoredEmbedding>, CatalogError> {
        dispatch!(self, c => c.embedding(hash))
    }

    /// The smallest and one past the largest row id of the stored embeddings (None when
    /// there are none): split it to give each reader of a scan its part.
    pub fn embedding_ids(&self) -> Result<Option<(i64, i64)>, CatalogError> {
        dispatch!(self, c => c.embedding_ids())
    }

    /// Calls `f` with the hash, model and embedding of every stored embedding `scan`
    /// selects, in row order, reading one row at a time. Returns how many it read.
    pub fn scan_embeddings(
        &self,
        scan: &EmbeddingScan,
        f: impl FnMut(&[u8], i64, EmbeddingRef<'_>),
    ) -> Result<u64, CatalogError> {
        dispatch!(self, c => c.scan_embeddings(scan, f))
    }

    /// Calls `f` with the row id, model and sketch (`vectors::sketch`) of every stored
    /// embedding whose id is in `[start, end)`, in row order. Returns how many it read.
    pub fn scan_sketches(
        &self,
        ids: (i64, i64),
        f: impl FnMut(i64, i64, &Sketch),
    ) -> Result<u64, CatalogError> {
        dispatch!(self, c => c.scan_sketches(ids, f))
    }

    /// Calls `f` with the hash and embedding of each row id in `ids` that holds one (ids
    /// with none, removed meanwhile, are passed over), in the order given.
    pub fn embeddings_by_id(
        &self,
        ids: &[i64],
        f: impl FnMut(i64, &[u8], EmbeddingRef<'_>),
    ) -> Result<(), CatalogError> {
        dispatch!(self, c => c.embeddings_by_id(ids, f))
    }

    /// How many images there are, and how many have an embedding by each model.
    pub fn embedding_counts(&self) -> Result<EmbeddingCounts, CatalogError> {
        dispatch!(self, c => c.embedding_counts())
    }

    /// Every model that ever tagged anything here: id and name.
    pub fn model_names(&self) -> Result<Vec<(i64, String)>, CatalogError> {
        dispatch!(self, c => c.model_names())
    }

    /// How many images the catalog holds.
    pub fn image_count(&self) -> Result<u64, CatalogError> {
        dispatch!(self, c => c.image_count())
    }

    /// The id of the model with this TorchScript SHA-256, if it ever tagged anything here.
    pub fn model_id(&self, sha256: &str) -> Result<Option<i64>, CatalogError> {
        dispatch!(self, c => c.model_id(sha256))
    }

    // --- albums --------------------------------------------------------------------------

    /// Albums added from the command line (this host's, on PostgreSQL), by name.
    pub fn albums(&self) -> Result<Vec<AlbumRow>, CatalogError> {
        dispatch!(self, c => c.albums())
    }

    /// Stores an album; false when one of that name exists (nothing changed).
    pub fn add_album(&mut self, a: &AlbumRow, now: i64) -> Result<bool, CatalogError> {
        dispatch!(mut self, c => c.add_album(a, now))
    }

    /// Forgets a stored album (not its link records); false when there was none.
    pub fn remove_album(&mut self, name: &str) -> Result<bool, CatalogError> {
        dispatch!(mut self, c => c.remove_album(name))
    }

    /// The recorded links of an album, by path.
    pub fn album_links(&self, album: &str) -> Result<Vec<LinkRow>, CatalogError> {
        dispatch!(self, c => c.album_links(album))
    }

    /// Names of albums that have link records.
    pub fn albums_with_links(&self) -> Result<Vec<String>, CatalogError> {
        dispatch!(self, c => c.albums_with_links())
    }

    /// Records links (before they are made), replacing records of the same paths.
    pub fn record_links(&mut self, links: &[LinkRow]) -> Result<(), CatalogError> {
        dispatch!(mut self, c => c.record_links(links))
    }

    /// Sets the inode of a recorded hard link once it is made.
    pub fn set_link_inode(&mut self, path: &Path, inode: u64) -> Result<(), CatalogError> {
        dispatch!(mut self, c => c.set_link_inode(path, inode))
    }

    /// Forgets link records (after the links are removed, or found not to be ours).
    pub fn forget_links(&mut self, paths: &[&Path]) -> Result<(), CatalogError> {
        dispatch!(mut self, c => c.forget_links(paths))
    }

    /// The record of one link path, if phototag made it.
    pub fn link(&self, path: &Path) -> Result<Option<LinkRow>, CatalogError> {
        dispatch!(self, c => c.link(path))
    }

    /// Every file with its image's model and tags, by path, in one snapshot.
    pub fn all_files_with_tags(&self) -> Result<Vec<FileTags>, CatalogError> {
        dispatch!(self, c => c.all_files_with_tags())
    }

    /// The model name and tags of one content.
    pub fn model_and_tags(
        &self,
        hash: &Hash,
    ) -> Result<Option<(String, Vec<TagRow>)>, CatalogError> {
        dispatch!(self, c => c.model_and_tags(hash))
    }

    /// Every taught tag, by name.
    pub fn taught_tags(&self) -> Result<Vec<TaughtRow>, CatalogError> {
        dispatch!(self, c => c.taught_tags())
    }

    /// The taught tag of this name (case-insensitive), if any.
    pub fn taught_tag(&self, name: &str) -> Result<Option<TaughtRow>, CatalogError> {
        dispatch!(self, c => c.taught_tag(name))
    }

    /// The names of the taught tags and their class indexes: what a query resolves.
    pub fn taught_names(&self) -> Result<Vec<(String, usize)>, CatalogError> {
        dispatch!(self, c => c.taught_names())
    }

    /// A taught tag's examples, by hash.
    pub fn taught_examples(&self, id: i64) -> Result<Vec<ExampleRow>, CatalogError> {
        dispatch!(self, c => c.taught_examples(id))
    }

    /// How many images have the taught tag `id` (a probability at its threshold or more).
    pub fn taught_match_count(&self, id: i64) -> Result<u64, CatalogError> {
        dispatch!(self, c => c.taught_match_count(id))
    }

    /// A number that changes when another connection commits: the daemon's worker polls
    /// it to notice `phototag retag`, `index` or `album add`.
    pub fn data_version(&self) -> Result<i64, CatalogError> {
        dispatch!(self, c => c.data_version())
    }
}

/// The open write transaction (see [`Catalog::begin`]): nothing is visible to readers
/// until [`Writer::commit`]; dropping it rolls everything back.
pub struct Writer<'c>(Inner<'c>);

enum Inner<'c> {
    Sqlite(write::Writer<'c>),
    Postgres(pg::Writer<'c>),
}

macro_rules! on_writer {
    ($self:ident, $w:ident => $call:expr) => {
        match &mut $self.0 {
            Inner::Sqlite($w) => $call,
            Inner::Postgres($w) => $call,
        }
    };
}

impl Writer<'_> {
    /// The id of a root folder, recording it (state `online`) the first time. The path is
    /// stored as given: callers pass the canonical form.
    pub fn root_id(&mut self, root: &Path) -> Result<i64, CatalogError> {
        on_writer!(self, w => w.root_id(root))
    }

    /// Records the state a scan found a root in (`online`, `offline`, ...) at `now`.
    pub fn set_root_state(
        &mut self,
        root_id: i64,
        state: &str,
        now: i64,
    ) -> Result<(), CatalogError> {
        on_writer!(self, w => w.set_root_state(root_id, state, now))
    }

    /// Marks unchanged files as seen at `now`. Unknown paths are ignored.
    pub fn touch_files(&mut self, paths: &[&Path], now: i64) -> Result<(), CatalogError> {
        on_writer!(self, w => w.touch_files(paths, now))
    }

    /// Stores a classified content: inserts the image, or replaces its size, format,
    /// model, all its tags and its embedding (a retag). An image without an embedding
    /// loses any it had (it was another model's).
    pub fn put_image(&mut self, img: &NewImage) -> Result<(), CatalogError> {
        on_writer!(self, w => w.put_image(img))
    }

    /// Stores a taught tag (a new one, or the same name fitted again: its id stays) and
    /// replaces its examples. Returns its id.
    pub fn put_taught(&mut self, t: &NewTaught<'_>) -> Result<i64, CatalogError> {
        on_writer!(self, w => w.put_taught(t))
    }

    /// Replaces the scores of taught tag `id` (`name`) with these.
    pub fn set_taught_scores(
        &mut self,
        id: i64,
        name: &str,
        scores: &[(Hash, f32)],
    ) -> Result<(), CatalogError> {
        on_writer!(self, w => w.set_taught_scores(id, name, scores))
    }

    /// Forgets a taught tag, its examples and its scores. False when there is none.
    pub fn remove_taught(&mut self, name: &str) -> Result<bool, CatalogError> {
        on_writer!(self, w => w.remove_taught(name))
    }

    /// Records content whose classification waits: an image row with `classified_at = 0`
    /// and no tags, so that its file rows can be written now. Content already stored is
    /// left alone.
    pub fn put_queued(&mut self, hash: &Hash, model_id: i64) -> Result<(), CatalogError> {
        on_writer!(self, w => w.put_queued(hash, model_id))
    }

    /// Forgets queued content that no file holds any more. Returns how many.
    pub fn remove_unheld_queued(&mut self) -> Result<usize, CatalogError> {
        on_writer!(self, w => w.remove_unheld_queued())
    }

    /// Records where a content is (insert or update by path) and forgets any earlier
    /// failure of that path. The image must already be stored (foreign key).
    pub fn put_file(&mut self, f: &NewFile) -> Result<(), CatalogError> {
        on_writer!(self, w => w.put_file(f))
    }

    /// Records that a file could not be tagged (counting attempts), and forgets its file
    /// row.
    pub fn put_failure(
        &mut self,
        path: &Path,
        root_id: i64,
        size: u64,
        mtime_ns: i64,
        error: &str,
        now: i64,
    ) -> Result<(), CatalogError> {
        on_writer!(self, w => w.put_failure(path, root_id, size, mtime_ns, error, now))
    }

    /// Forgets paths (and their failures). Returns how many file rows went.
    pub fn remove_files(&mut self, paths: &[&Path]) -> Result<usize, CatalogError> {
        on_writer!(self, w => w.remove_files(paths))
    }

    /// Deletes images no file points at, with their tags. Returns how many.
    pub fn remove_orphan_images(&mut self) -> Result<usize, CatalogError> {
        on_writer!(self, w => w.remove_orphan_images())
    }

    /// Makes everything written through this writer visible at once.
    pub fn commit(self) -> Result<(), CatalogError> {
        match self.0 {
            Inner::Sqlite(w) => w.commit(),
            Inner::Postgres(w) => w.commit(),
        }
    }
}
