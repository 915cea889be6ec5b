//! `phototag index`: walks photo folders, skips what has not changed, hashes what has, and
//! classifies only content the catalog has never seen.

pub mod plan;
pub mod run;
pub mod walk;
