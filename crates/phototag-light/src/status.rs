//! The daemon's status record: a small JSON file beside the catalog, rewritten atomically
//! every few seconds, that `phototag status` reads. No IPC server is needed.
//!
//! May not: hold anything the catalog already holds (counts of files and images come
//! from the catalog).

use std::path::{Path, PathBuf};

use crate::catalog::Location;

use serde::{Deserialize, Serialize};

/// One root as the daemon sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootStatus {
    pub path: PathBuf,
    /// `watching` (inotify), `polling`, or `offline`.
    pub state: String,
    /// Why it is polled, when it is (`network mount nfs4`, `inotify watches exhausted`, `configured`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One album as the daemon last synced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlbumStatus {
    pub name: String,
    pub folder: PathBuf,
    /// `ok`, `unavailable` (its folder's parent is missing: an unmounted share?) or `error`.
    pub state: String,
    /// Links phototag keeps in the folder.
    pub links: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The catalog's server, while the daemon cannot reach it (a shared PostgreSQL catalog).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogStatus {
    /// `unreachable`.
    pub state: String,
    /// Since when (Unix seconds).
    pub since_unix: i64,
    /// The last error (never holds a password).
    pub error: String,
    /// When the daemon tries again.
    pub retry_in_seconds: f64,
    /// Jobs kept until the server is back, and the files in them.
    pub waiting_jobs: usize,
    pub waiting_files: usize,
}

/// The record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub version: String,
    /// `starting`, `running` or `stopped`.
    pub state: String,
    pub started_unix: i64,
    pub updated_unix: i64,
    /// The model the daemon classifies with.
    pub model: Option<String>,
    /// Whether that model is in memory now: it is loaded when a photo needs it and
    /// unloaded after `[watch] unload_after_seconds` without work.
    #[serde(default)]
    pub model_loaded: bool,
    pub roots: Vec<RootStatus>,
    /// Files waiting to be still before they are read.
    pub settling: usize,
    /// Files handed to the worker and not yet done.
    pub queue: usize,
    /// Files processed since start (new, duplicate or failed).
    pub done: u64,
    /// Of which failed.
    pub failed: u64,
    /// Photos recorded in the catalog whose classification waits (schedule windows, load).
    #[serde(default)]
    pub waiting: u64,
    /// Why classification waits now, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<String>,
    /// The schedule windows (`always` when there are none).
    #[serde(default)]
    pub schedule: String,
    /// When the next window opens (`HH:MM` local time), while the schedule is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_window_in_seconds: Option<u64>,
    /// Images classified per second over the last minutes, once measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Seconds until what is queued and waiting is classified, at that rate, counting only
    /// time inside the windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<f64>,
    /// Albums, as last synced.
    #[serde(default)]
    pub albums: Vec<AlbumStatus>,
    /// Set while the catalog's server is away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogStatus>,
}

/// Where the status record of the catalog `db` lives: beside a SQLite file; for a
/// PostgreSQL catalog (on another machine), in this user's data folder, named after the
/// server and database.
pub fn path_for(db: &Location) -> PathBuf {
    match db {
        Location::Sqlite(db) => {
            let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
            name.push(".status.json");
            db.with_file_name(name)
        }
        Location::Postgres(t) => {
            let shown = t.to_string();
            let rest = shown.split_once("://").map_or(shown.as_str(), |(_, r)| r);
            let rest = rest.split('?').next().unwrap_or(rest);
            let name: String = rest
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            crate::paths::data_dir()
                .join("status")
                .join(format!("postgresql-{name}.status.json"))
        }
    }
}

impl Status {
    /// Writes the record atomically.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        // A PostgreSQL catalog's record is in the data folder, perhaps not made yet.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        crate::fsutil::write_atomic(path, &json)
    }

    /// Reads a record; None when there is none.
    pub fn read(path: &Path) -> std::io::Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the process that wrote this record is alive and is a phototag.
    pub fn is_alive(&self) -> bool {
        if self.state == "stopped" {
            return false;
        }
        std::fs::read(format!("/proc/{}/cmdline", self.pid))
            .map(|c| {
                c.split(|b| *b == 0)
                    .next()
                    .is_some_and(|argv0| argv0.ends_with(b"phototag"))
            })
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_liveness() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_for(&dir.path().join("catalog.db").into());
        assert!(p.ends_with("catalog.db.status.json"));
        assert_eq!(Status::read(&p).unwrap(), None);
        let s = Status {
            pid: u32::MAX - 1,
            version: "x".into(),
            state: "running".into(),
            started_unix: 1,
            updated_unix: 2,
            model: Some("m".into()),
            model_loaded: true,
            roots: vec![RootStatus {
                path: "/p".into(),
                state: "watching".into(),
                reason: None,
            }],
            settling: 0,
            queue: 3,
            done: 4,
            failed: 1,
            waiting: 7,
            paused: Some("outside the schedule windows".into()),
            schedule: "01:00-07:00".into(),
            next_window: Some("01:00".into()),
            next_window_in_seconds: Some(3600),
            rate: Some(4.5),
            eta_seconds: Some(5000.0),
            albums: vec![AlbumStatus {
                name: "Dogs".into(),
                folder: "/a/dogs".into(),
                state: "unavailable".into(),
                links: 0,
                problem: Some("parent missing".into()),
            }],
            catalog: Some(CatalogStatus {
                state: "unreachable".into(),
                since_unix: 5,
                error: "connection refused".into(),
                retry_in_seconds: 2.0,
                waiting_jobs: 1,
                waiting_files: 7,
            }),
        };
        s.write(&p).unwrap();
        let back = Status::read(&p).unwrap().unwrap();
        assert_eq!(back, s);
        assert!(!back.is_alive(), "no such process");
    }
}
