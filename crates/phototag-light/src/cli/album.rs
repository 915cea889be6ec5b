//! Flags of `album` (add, list, remove, sync) and `export`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

const ALBUM_HELP: &str = "\
Albums from the config file ([[album]] entries) are read at start and on SIGHUP; albums
added here are stored in the catalog. The daemon keeps every album folder equal to its
query's results; `album sync` does it once, now. phototag only ever removes links it made.";

#[derive(Debug, Subcommand)]
#[command(after_help = ALBUM_HELP)]
pub enum AlbumCommand {
    /// Add an album (stored in the catalog) and fill its folder
    Add(AlbumAddArgs),
    /// List albums, from the config file and the catalog
    List {
        /// One JSON object per album and line
        #[arg(long)]
        json: bool,
    },
    /// Remove an album added with `album add`, and the links phototag made for it
    Remove {
        /// The album's name
        name: String,
    },
    /// Bring an album folder up to date with its query now
    Sync(AlbumSyncArgs),
}

#[derive(Debug, Args)]
pub struct AlbumAddArgs {
    /// A name for it (letters, digits, spaces, '-', '_', '.')
    pub name: String,
    /// A query in the search language, e.g. 'dog>0.4 AND NOT cat' (quote it)
    pub query: String,
    /// The album folder; its parent must exist
    pub folder: PathBuf,
    /// Hard links instead of symbolic links (the folder must be on the photos' file system)
    #[arg(long)]
    pub hardlinks: bool,
    /// Only store the album; the daemon (or `album sync`) fills the folder
    #[arg(long)]
    pub no_sync: bool,
}

#[derive(Debug, Args)]
pub struct AlbumSyncArgs {
    /// The album's name
    #[arg(required_unless_present = "all")]
    pub name: Option<String>,
    /// Every album
    #[arg(long, conflicts_with = "name")]
    pub all: bool,
    /// Print what would change, change nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per file and line
    Json,
    /// CSV with a header, one row per file and tag
    Csv,
    /// XMP sidecars (photo.jpg.xmp) beside the photos, merged into existing ones
    Xmp,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Only files matching this query (the search language); every file when absent
    #[arg(value_name = "QUERY")]
    pub terms: Vec<String>,
    /// json/csv: write to this file instead of stdout. xmp: write the sidecars under this
    /// folder (mirroring each photo's absolute path) instead of beside the photos
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
}
