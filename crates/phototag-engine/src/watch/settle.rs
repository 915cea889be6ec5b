//! Settling: a file is handed on only after its size and mtime have stayed the same for the
//! settle time, so a photo copied slowly is read once, complete, never half-written.
//!
//! May not: read file contents, or hand on a file that vanished meanwhile.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::index::walk::{mtime_ns, Entry};

#[derive(Debug, Clone, Copy)]
struct Pending {
    size: u64,
    mtime_ns: i64,
    since: Instant,
}

/// Files waiting to be still.
#[derive(Debug)]
pub struct Settler {
    pending: HashMap<PathBuf, Pending>,
    settle: Duration,
}

impl Settler {
    pub fn new(settle: Duration) -> Self {
        Self {
            pending: HashMap::new(),
            settle,
        }
    }

    pub fn set_settle(&mut self, settle: Duration) {
        self.settle = settle;
    }

    /// Number of files waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Notes that `path` may have changed (an event, or a scan that found it new).
    pub fn observe(&mut self, path: &Path, now: Instant) {
        let Ok(meta) = std::fs::metadata(path) else {
            self.pending.remove(path);
            return;
        };
        if !meta.is_file() {
            return;
        }
        let (size, mtime) = (meta.len(), mtime_ns(&meta));
        match self.pending.get_mut(path) {
            Some(p) if p.size == size && p.mtime_ns == mtime => {}
            Some(p) => {
                *p = Pending {
                    size,
                    mtime_ns: mtime,
                    since: now,
                }
            }
            None => {
                self.pending.insert(
                    path.to_path_buf(),
                    Pending {
                        size,
                        mtime_ns: mtime,
                        since: now,
                    },
                );
            }
        }
    }

    /// Drops everything under `dir` (it went away).
    pub fn forget_under(&mut self, dir: &Path) {
        self.pending.retain(|p, _| !p.starts_with(dir));
    }

    /// Files that have been still for the settle time, checked again now. A file that
    /// changed since starts waiting again; one that vanished is dropped.
    pub fn due(&mut self, now: Instant) -> Vec<Entry> {
        let ripe: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.since) >= self.settle)
            .map(|(path, _)| path.clone())
            .collect();
        let mut out = Vec::new();
        for path in ripe {
            let Some(p) = self.pending.get_mut(&path) else {
                continue;
            };
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => {
                    let (size, mtime) = (meta.len(), mtime_ns(&meta));
                    if size == p.size && mtime == p.mtime_ns {
                        self.pending.remove(&path);
                        out.push(Entry {
                            path,
                            size,
                            mtime_ns: mtime,
                            dev: meta.dev(),
                            ino: meta.ino(),
                        });
                    } else {
                        *p = Pending {
                            size,
                            mtime_ns: mtime,
                            since: now,
                        };
                    }
                }
                _ => {
                    self.pending.remove(&path);
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_growing_file_is_held_until_it_is_still() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("slow.jpg");
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(b"part one").unwrap();
        let mut s = Settler::new(Duration::from_millis(100));
        let t0 = Instant::now();
        s.observe(&p, t0);
        assert!(s.due(t0).is_empty(), "not yet settled");
        // It grows before the settle time is up: the clock restarts at the next check.
        f.write_all(b" and part two").unwrap();
        f.sync_all().unwrap();
        let t1 = t0 + Duration::from_millis(150);
        assert!(s.due(t1).is_empty(), "changed since it was seen");
        assert_eq!(s.len(), 1);
        let t2 = t1 + Duration::from_millis(150);
        let due = s.due(t2);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].size, 21);
        assert!(s.is_empty());
    }

    #[test]
    fn a_vanished_file_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gone.jpg");
        std::fs::write(&p, b"x").unwrap();
        let mut s = Settler::new(Duration::ZERO);
        let t = Instant::now();
        s.observe(&p, t);
        std::fs::remove_file(&p).unwrap();
        assert!(s.due(t).is_empty());
        assert!(s.is_empty());
    }
}
