//! Flags of the search commands: `search`, `labels`, `dupes`.

use clap::Args;

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Class names or synonyms (case-insensitive); a file matching any term is listed
    #[arg(required = true, value_name = "TERM")]
    pub terms: Vec<String>,
    /// Only tags at least this probable, in percent (0-100)
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub min_prob: f32,
    /// At most this many files
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// One JSON object per file and line: path, hash, score, tags
    #[arg(long, conflicts_with = "null")]
    pub json: bool,
    /// Paths only, each followed by a NUL byte (for xargs -0)
    #[arg(short = '0', long = "null")]
    pub null: bool,
}

#[derive(Debug, Args)]
pub struct LabelsArgs {
    /// A search term; without one, every class is listed
    #[arg(value_name = "TERM")]
    pub term: Option<String>,
}

#[derive(Debug, Args)]
pub struct DupesArgs {
    /// One JSON object per group and line
    #[arg(long)]
    pub json: bool,
}
