//! `phototag album add|list|remove|sync`.
//!
//! May not: decide what an album holds or touch links itself (see `album`).

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Context, Outcome};
use crate::album::{self, Album, Change, Source, UsageError};
use crate::catalog::{AlbumRow, Catalog};
use crate::cli::{AlbumAddArgs, AlbumCommand, AlbumSyncArgs};
use crate::config::LinkKind;
use crate::search::Query;

pub fn run(ctx: &Context, cmd: &AlbumCommand) -> anyhow::Result<Outcome> {
    match cmd {
        AlbumCommand::Add(a) => add(ctx, a),
        AlbumCommand::List { json } => list(ctx, *json),
        AlbumCommand::Remove { name } => remove(ctx, name),
        AlbumCommand::Sync(a) => sync(ctx, a),
    }
}

fn usage(msg: String) -> anyhow::Error {
    UsageError(msg).into()
}

/// The config file, for messages.
fn config_name(ctx: &Context) -> String {
    match &ctx.origin {
        crate::config::Origin::File(p) => p.display().to_string(),
        crate::config::Origin::Defaults => "the config file".into(),
    }
}

/// Refuses a folder that would hide photos: one holding a watched root, or `/`.
fn check_folder(ctx: &Context, folder: &Path) -> anyhow::Result<()> {
    if folder.parent().is_none() {
        return Err(usage(format!(
            "{} cannot be an album folder",
            folder.display()
        )));
    }
    for r in &ctx.config.watch.roots {
        let r = super::stored_path(r);
        if r.starts_with(folder) {
            return Err(usage(format!(
                "the album folder {} holds the watched root {}: album folders are never walked, so its photos would be hidden",
                folder.display(),
                r.display()
            )));
        }
    }
    Ok(())
}

fn add(ctx: &Context, a: &AlbumAddArgs) -> anyhow::Result<Outcome> {
    crate::config::check_album_name(&a.name).map_err(usage)?;
    if ctx.config.album.iter().any(|c| c.name == a.name) {
        return Err(usage(format!(
            "an album `{}` is already defined in {}",
            a.name,
            config_name(ctx)
        )));
    }
    let mut catalog = ctx.open_catalog()?;
    let q = Query::compile_with(&a.query, 0.0, &catalog.taught_names()?)?;
    if let Some(t) = q.unknown().next() {
        let mut m = format!("no ImageNet class or label matches `{}`", t.text);
        if !t.suggestions.is_empty() {
            m.push_str(&format!("; close: {}", t.suggestions.join(", ")));
        }
        return Err(usage(m));
    }
    let folder = album::canonical_folder(&std::path::absolute(&a.folder)?);
    check_folder(ctx, &folder)?;
    let kind = if a.hardlinks {
        LinkKind::Hardlink
    } else {
        LinkKind::Symlink
    };
    let row = AlbumRow {
        name: a.name.clone(),
        query: a.query.clone(),
        folder: folder.clone(),
        links: kind.as_str().into(),
    };
    if !catalog.add_album(&row, crate::catalog::unix_now())? {
        return Err(usage(format!(
            "an album `{}` exists already (`phototag album remove {}` first)",
            a.name, a.name
        )));
    }
    eprintln!(
        "album `{}` added: {} ← {}",
        a.name,
        folder.display(),
        a.query
    );
    if a.no_sync {
        return Ok(Outcome::Success);
    }
    let albums = album::load(&ctx.config, Some(&catalog))?;
    let me = albums
        .iter()
        .find(|x| x.name == a.name)
        .cloned()
        .expect("just added");
    sync_one(&mut catalog, &me, &album::folders(&albums), false)
}

fn list(ctx: &Context, json: bool) -> anyhow::Result<Outcome> {
    let catalog = Catalog::open_readonly(&ctx.db).ok();
    let albums = album::load(&ctx.config, catalog.as_ref())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for a in &albums {
        let links = match &catalog {
            Some(c) => Some(c.album_links(&a.name)?.len()),
            None => None,
        };
        if json {
            let v = serde_json::json!({
                "name": a.name,
                "query": a.query,
                "folder": a.folder.to_string_lossy(),
                "links": a.links.as_str(),
                "source": a.source.as_str(),
                "linked": links,
            });
            writeln!(out, "{v}")?;
        } else {
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{} links",
                a.name,
                a.source.as_str(),
                a.links.as_str(),
                a.folder.display(),
                a.query,
                links.unwrap_or(0)
            )?;
        }
    }
    Ok(if albums.is_empty() {
        Outcome::NoMatch
    } else {
        Outcome::Success
    })
}

fn remove(ctx: &Context, name: &str) -> anyhow::Result<Outcome> {
    if ctx.config.album.iter().any(|c| c.name == name) {
        return Err(usage(format!(
            "album `{name}` is defined in {}: remove its [[album]] entry there (the daemon then removes its links)",
            config_name(ctx)
        )));
    }
    let mut catalog = ctx.open_catalog()?;
    if !catalog.remove_album(name)? {
        return Err(usage(format!("no album `{name}` in the catalog")));
    }
    let n = album::clear(&mut catalog, name)?;
    eprintln!("album `{name}` removed with the {n} links phototag made; its folder and anything else in it stay");
    Ok(Outcome::Success)
}

fn sync(ctx: &Context, a: &AlbumSyncArgs) -> anyhow::Result<Outcome> {
    let mut catalog = if a.dry_run {
        ctx.open_catalog_readonly()?
    } else {
        ctx.open_catalog()?
    };
    let albums = album::load(&ctx.config, Some(&catalog))?;
    let chosen: Vec<&Album> = match &a.name {
        Some(n) => match albums.iter().find(|x| &x.name == n) {
            Some(x) => vec![x],
            None => return Err(usage(format!("no album `{n}` (see `phototag album list`)"))),
        },
        None => albums.iter().collect(),
    };
    let folders = album::folders(&albums);
    let mut outcome = Outcome::Success;
    for al in chosen {
        if sync_one(&mut catalog, al, &folders, a.dry_run)? != Outcome::Success {
            outcome = Outcome::Partial;
        }
    }
    Ok(outcome)
}

fn name_in(folder: &Path, p: &Path) -> PathBuf {
    p.strip_prefix(folder).unwrap_or(p).to_path_buf()
}

fn sync_one(
    catalog: &mut Catalog,
    al: &Album,
    folders: &[PathBuf],
    dry_run: bool,
) -> anyhow::Result<Outcome> {
    let mode = if dry_run {
        album::Mode::DryRun
    } else {
        album::Mode::Verify
    };
    let (report, plan) = album::sync(catalog, al, folders, mode)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for c in &plan.changes {
        let (what, r) = match c {
            Change::Create(r) => ("create", r),
            Change::Remove(r) => ("remove", r),
            Change::Forget(r) => ("forget", r),
        };
        let mut line = format!("{what}\t").into_bytes();
        line.extend_from_slice(name_in(&al.folder, &r.path).as_os_str().as_bytes());
        if let Change::Create(r) = c {
            line.extend_from_slice(b"\t");
            line.extend_from_slice(r.target.as_os_str().as_bytes());
        }
        line.push(b'\n');
        out.write_all(&line)?;
    }
    let would = if dry_run {
        " (dry run: nothing changed)"
    } else {
        ""
    };
    eprintln!(
        "album `{}` ({}): {} matched; {} created, {} removed, {} kept, {} records of replaced or missing links forgotten{would}",
        al.name,
        match al.source {
            Source::Config => "config",
            Source::Catalog => "catalog",
        },
        report.matched,
        report.created,
        report.removed,
        report.kept,
        report.forgotten
    );
    for p in &report.problems {
        eprintln!("phototag: album `{}`: {p}", al.name);
    }
    Ok(if report.problems.is_empty() {
        Outcome::Success
    } else {
        Outcome::Partial
    })
}
