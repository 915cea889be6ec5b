//! Flags of the search commands: `search`, `labels`, `dupes`, `similar`.

use std::path::PathBuf;

use clap::Args;

use crate::search::time::{parse_moment, Moment};

const SEARCH_HELP: &str = "\
Query language:
  dog                    every class at or below \"dog\" in WordNet (the 118 breeds); case-
                         insensitive, whole names only (\"dog\" is not \"hot dog\"), plurals too
  dog cat, dog AND cat   both
  dog OR cat             either
  NOT cat, -cat          not (-cat as an argument of its own needs -- first: search -- dog -cat)
  (dog OR cat) -lion     parentheses group; NOT binds tighter than AND, AND than OR
  \"golden retriever\"     a phrase (an argument with spaces and no operators is one too)
  dog>0.5, dog>50%       a dog tag of at least 50%; on groups too: (dog OR cat)>0.3
A tag matches when it is among an image's stored top tags with at least the probability
asked (--min-prob for every term). Results are ranked by the matching probability.
`phototag labels WORD` lists the classes a word covers.

Exit codes: 0 something matched; 1 nothing matched; 2 bad query or flags; 4 other errors.";

#[derive(Debug, Args)]
#[command(after_help = SEARCH_HELP)]
pub struct SearchArgs {
    /// The query (see below): words, "phrases", AND, OR, NOT, -word, (...), word>0.5
    #[arg(required = true, value_name = "QUERY")]
    pub terms: Vec<String>,
    /// Only tags at least this probable, in percent (0-100), for every term
    #[arg(long, default_value_t = 0.0, value_name = "P", value_parser = percent)]
    pub min_prob: f32,
    /// Only files under this folder (repeatable: under any of them)
    #[arg(long, value_name = "DIR")]
    pub under: Vec<PathBuf>,
    /// Only files modified from this date on: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], in UTC
    /// unless followed by Z or an offset (+02:00)
    #[arg(long, value_name = "DATE", value_parser = parse_moment)]
    pub since: Option<Moment>,
    /// Only files modified up to this date, the whole day (or minute, second) included; UTC
    /// unless followed by Z or an offset
    #[arg(long, value_name = "DATE", value_parser = parse_moment)]
    pub until: Option<Moment>,
    /// At most this many files (the best ones)
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// One path per line (the default when stdout is not a terminal)
    #[arg(long, group = "format")]
    pub paths: bool,
    /// Paths only, each followed by a NUL byte (for xargs -0)
    #[arg(short = '0', long = "null", group = "format")]
    pub null: bool,
    /// One JSON object per file and line: path, hash, score, matched, tags
    #[arg(long, group = "format")]
    pub json: bool,
    /// Columns: path, best matching tag, its probability (the default on a terminal)
    #[arg(long, group = "format")]
    pub table: bool,
    /// Only the number of matching files
    #[arg(long, group = "format")]
    pub count: bool,
}

/// `--min-prob`: a percentage, `50` or `50%`.
fn percent(s: &str) -> Result<f32, String> {
    let v: f32 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err("a percentage is between 0 and 100".into())
    }
}

#[derive(Debug, Args)]
pub struct LabelsArgs {
    /// A search word or phrase (dog, golden retriever); without one, every class is listed
    #[arg(value_name = "TERM")]
    pub term: Vec<String>,
    /// One JSON object per class and line: index, wnid, name, synonyms, hypernyms
    #[arg(long)]
    pub json: bool,
}

const DUPES_HELP: &str = "\
Without --near: groups of paths with the same content (exact copies).
With --near: groups of photos that look the same to the model: exact copies, and resized,
re-encoded, lightly cropped or brightened versions, and burst shots. The photo with the
most pixels comes first; each other's similarity to it is at least the threshold. Needs
the images' embeddings (`phototag retag --embeddings` adds those of older images).

Exit codes: 0 some group found; 1 none; 2 bad flags; 4 other errors.";

#[derive(Debug, Args)]
#[command(after_help = DUPES_HELP)]
pub struct DupesArgs {
    /// Only paths under this folder
    #[arg(long, value_name = "DIR")]
    pub under: Option<PathBuf>,
    /// Near copies too: groups of photos whose embeddings are at least --threshold similar
    #[arg(long)]
    pub near: bool,
    /// Cosine similarity (0-1) from which two photos are near copies [default: config
    /// similar.near_threshold]
    #[arg(long, value_name = "T", requires = "near", value_parser = unit_interval)]
    pub threshold: Option<f32>,
    /// One JSON object per group and line: hash, size, paths (with --near: members, each
    /// hash, paths, similarity, best first)
    #[arg(long)]
    pub json: bool,
}

/// A number in [0, 1]: a similarity threshold or score.
pub(crate) fn unit_interval(s: &str) -> Result<f32, String> {
    let v: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err("a similarity is between 0 and 1".into())
    }
}

const SIMILAR_HELP: &str = "\
PHOTO is a file: in the catalog (its stored embedding is used, which takes milliseconds)
or not (it is classified now and compared; nothing is written). HASH is the content hash
of a catalogued image (64 hex digits, as `search --json` and `show` print). The photo
itself and its copies are not listed. Score: cosine similarity of the model's embeddings,
1 for the same picture; photos of one scene are usually above 0.8.

Exit codes: 0 something listed; 1 nothing, an unknown hash, or a file that cannot be read
or decoded; 2 bad flags; 3 model missing; 4 other errors.";

#[derive(Debug, Args)]
#[command(after_help = SIMILAR_HELP)]
pub struct SimilarArgs {
    /// A photo file, or a catalogued image's content hash
    #[arg(value_name = "PHOTO|HASH")]
    pub target: PathBuf,
    /// At most this many files (the most similar)
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
    /// Only files under this folder (repeatable: under any of them)
    #[arg(long, value_name = "DIR")]
    pub under: Vec<PathBuf>,
    /// Only photos at least this similar (0-1)
    #[arg(long, value_name = "S", value_parser = unit_interval)]
    pub min_score: Option<f32>,
    /// Compare every stored embedding, not only those their sketches propose (slower on a
    /// large catalog; the answer differs only in rare close calls)
    #[arg(long)]
    pub exact: bool,
    /// One path per line (the default when stdout is not a terminal)
    #[arg(long, group = "format")]
    pub paths: bool,
    /// Paths only, each followed by a NUL byte (for xargs -0)
    #[arg(short = '0', long = "null", group = "format")]
    pub null: bool,
    /// One JSON object per file and line: path, hash, score, tags
    #[arg(long, group = "format")]
    pub json: bool,
    /// Columns: score, path, top tag (the default on a terminal)
    #[arg(long, group = "format")]
    pub table: bool,
    /// The model that classifies a PHOTO the catalog does not know (it must be the one
    /// whose embeddings the catalog holds)
    #[command(flatten)]
    pub run: super::RunArgs,
}
