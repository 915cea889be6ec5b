//! `phototag watch` (the daemon) and `phototag status`.

use super::{Context, Outcome};
use crate::cli::{StatusArgs, WatchArgs};

pub fn run(_ctx: &Context, _args: &WatchArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("phototag watch is not available yet")
}

pub fn status(_ctx: &Context, _args: &StatusArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("phototag status is not available yet")
}
