//! The checks serde cannot make: ranges, names, patterns and addresses. An error names the
//! dotted key; `parse` turns it into file, line and column.
//!
//! May not: read files or change the configuration.

use super::sections::{check_album_name, MAX_THREADS};
use super::Config;

impl Config {
    /// Checks values serde cannot: ranges and names.
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        if self.classify.batch_size == 0 || self.classify.batch_size > 256 {
            return Err((
                "classify.batch_size".into(),
                "must be between 1 and 256".into(),
            ));
        }
        if self.classify.top_k == 0 || self.classify.top_k > 1000 {
            return Err(("classify.top_k".into(), "must be between 1 and 1000".into()));
        }
        if self.classify.decode_threads > MAX_THREADS {
            return Err((
                "classify.decode_threads".into(),
                format!("must be at most {MAX_THREADS} (0 means one per core)"),
            ));
        }
        if self.classify.threads > MAX_THREADS {
            return Err((
                "classify.threads".into(),
                format!("must be at most {MAX_THREADS} (0 means all cores)"),
            ));
        }
        if self.model != crate::model_files::names::AUTO
            && !crate::model_files::names::is_valid(&self.model)
        {
            return Err((
                "model".into(),
                format!("model name `{}` is not valid: use letters, digits, '-', '_' and '.', not starting with '.'", self.model),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err((
                "log_level".into(),
                format!("`{}` is not a log filter (try \"info\")", self.log_level),
            ));
        }
        if let Err(e) = globset_check(&self.index.exclude) {
            return Err(("index.exclude".into(), e));
        }
        let pg = &self.postgresql;
        for (key, v, lo) in [
            ("postgresql.claim_seconds", pg.claim_seconds, 1.0),
            (
                "postgresql.connect_timeout_seconds",
                pg.connect_timeout_seconds,
                0.1,
            ),
        ] {
            if !(v.is_finite() && (lo..=86_400.0).contains(&v)) {
                return Err((
                    key.into(),
                    format!("must be between {lo} and 86400 seconds"),
                ));
            }
        }
        if !pg.password_file.as_os_str().is_empty() && !pg.password_file.is_absolute() {
            return Err((
                "postgresql.password_file".into(),
                "must be an absolute path".into(),
            ));
        }
        let w = &self.watch;
        // Whether a root exists is checked when the daemon starts (a share may be
        // unmounted while the file is edited); its form is checked here.
        for r in &w.roots {
            if r.as_os_str().is_empty() {
                return Err(("watch.roots".into(), "an empty path is not a folder".into()));
            }
            if !r.is_absolute() {
                return Err((
                    "watch.roots".into(),
                    format!(
                        "`{}` is relative: roots are absolute paths (e.g. \"/srv/photos\")",
                        r.display()
                    ),
                ));
            }
        }
        for (key, v) in [
            ("watch.settle_seconds", w.settle_seconds),
            ("watch.poll_interval_seconds", w.poll_interval_seconds),
            ("watch.delete_grace_seconds", w.delete_grace_seconds),
            ("watch.album_delay_seconds", w.album_delay_seconds),
        ] {
            if !(v.is_finite() && (0.0..=86_400.0).contains(&v)) {
                return Err((key.into(), "must be between 0 and 86400 seconds".into()));
            }
        }
        let v = w.unload_after_seconds;
        if !(v.is_finite() && (0.0..=7.0 * 86_400.0).contains(&v)) {
            return Err((
                "watch.unload_after_seconds".into(),
                "must be between 0 (never) and 604800 seconds".into(),
            ));
        }
        let m = self.schedule.max_load_per_core;
        if !(m.is_finite() && (0.0..=1000.0).contains(&m)) {
            return Err((
                "schedule.max_load_per_core".into(),
                "must be between 0 (no limit) and 1000".into(),
            ));
        }
        if w.poll_interval_seconds < 0.5 {
            return Err((
                "watch.poll_interval_seconds".into(),
                "must be at least 0.5 seconds".into(),
            ));
        }
        for (i, a) in self.album.iter().enumerate() {
            let key = |k: &str| format!("album[{i}].{k}");
            if let Err(e) = check_album_name(&a.name) {
                return Err((key("name"), e));
            }
            if self.album[..i].iter().any(|b| b.name == a.name) {
                return Err((key("name"), format!("a second album named `{}`", a.name)));
            }
            if let Err(e) = crate::search::Query::compile(&a.query, 0.0) {
                return Err((key("query"), e.to_string().replace('\n', " ")));
            }
            if !a.folder.is_absolute() {
                return Err((key("folder"), "must be an absolute path".into()));
            }
            // Album folders are never walked: one holding a root would hide its photos.
            if let Some(r) = self.watch.roots.iter().find(|r| r.starts_with(&a.folder)) {
                return Err((
                    key("folder"),
                    format!(
                        "holds the watched root {}: album folders are never walked",
                        r.display()
                    ),
                ));
            }
        }
        let s = &self.serve;
        if s.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err((
                "serve.listen".into(),
                format!(
                    "`{}` is not an address and port (e.g. \"127.0.0.1:8080\")",
                    s.listen
                ),
            ));
        }
        for h in &s.hosts {
            if let Err(e) = check_host(h) {
                return Err(("serve.hosts".into(), e));
            }
        }
        if !(1..=65_536).contains(&s.max_connections) {
            return Err((
                "serve.max_connections".into(),
                "must be between 1 and 65536".into(),
            ));
        }
        if !(s.timeout_seconds.is_finite() && (0.5..=3600.0).contains(&s.timeout_seconds)) {
            return Err((
                "serve.timeout_seconds".into(),
                "must be between 0.5 and 3600 seconds".into(),
            ));
        }
        if s.max_upload_bytes == 0 {
            return Err((
                "serve.max_upload_bytes".into(),
                "must be greater than zero".into(),
            ));
        }
        for (key, v) in [
            ("serve.thumb_size", s.thumb_size),
            ("serve.preview_size", s.preview_size),
        ] {
            if !(16..=4096).contains(&v) {
                return Err((key.into(), "must be between 16 and 4096 pixels".into()));
            }
        }
        if !(0.0..=1.0).contains(&self.similar.near_threshold) {
            return Err((
                "similar.near_threshold".into(),
                "must be between 0 and 1 (a cosine similarity)".into(),
            ));
        }
        let l = &self.limits;
        if l.max_width == 0
            || l.max_height == 0
            || l.max_pixels == 0
            || l.max_file_bytes == 0
            || l.max_alloc_bytes == 0
        {
            return Err(("limits".into(), "limits must be greater than zero".into()));
        }
        Ok(())
    }
}

/// A host name for `serve.hosts`: letters, digits, `-` and `.` (no scheme, port or path).
fn check_host(h: &str) -> Result<(), String> {
    let ok = !h.is_empty()
        && h.len() <= 253
        && !h.starts_with(['.', '-'])
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{h}` is not a host name (letters, digits, '-' and '.', e.g. \"photos.example.com\"; no scheme, port or path)"
        ))
    }
}

fn globset_check(patterns: &[String]) -> Result<(), String> {
    for p in patterns {
        globset::Glob::new(p).map_err(|e| format!("bad pattern `{p}`: {e}"))?;
    }
    Ok(())
}
