//! The real daemon (`phototag watch`) in a folder of its own: its configuration
//! `phototag.toml`, catalog `catalog.db`, a stand-in systemd notify socket `notify.sock` and
//! its log `daemon.log`. Killed when dropped, so a failing test leaves no daemon behind.

use std::ffi::{OsStr, OsString};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub child: Child,
    sock: UnixDatagram,
    models: PathBuf,
    batch_size: u16,
    /// `PHOTOTAG_DB`: `catalog.db` in the folder, or a PostgreSQL URL.
    db: OsString,
    env: Vec<(String, OsString)>,
    pub tmp: tempfile::TempDir,
}

impl Daemon {
    /// Starts `phototag watch --model resnet18-random` (from `models`) with the
    /// configuration already written in `tmp`, and waits for READY=1.
    pub fn start(tmp: tempfile::TempDir, models: &Path, batch_size: u16) -> Daemon {
        let db = tmp.path().join("catalog.db").into_os_string();
        Self::start_full(tmp, models, batch_size, db, &[])
    }

    /// As [`Daemon::start`], with more environment variables (`TZ`, `PHOTOTAG_LOADAVG`).
    pub fn start_with_env(
        tmp: tempfile::TempDir,
        models: &Path,
        batch_size: u16,
        env: &[(&str, &OsStr)],
    ) -> Daemon {
        let db = tmp.path().join("catalog.db").into_os_string();
        Self::start_full(tmp, models, batch_size, db, env)
    }

    /// As [`Daemon::start`], on the catalog `db` (a file or a PostgreSQL URL). Its data
    /// folder (`$XDG_DATA_HOME`, where a PostgreSQL catalog's status record goes) is
    /// `data/` in the folder.
    pub fn start_on(
        tmp: tempfile::TempDir,
        models: &Path,
        batch_size: u16,
        db: OsString,
    ) -> Daemon {
        Self::start_full(tmp, models, batch_size, db, &[])
    }

    fn start_full(
        tmp: tempfile::TempDir,
        models: &Path,
        batch_size: u16,
        db: OsString,
        env: &[(&str, &OsStr)],
    ) -> Daemon {
        let env: Vec<(String, OsString)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_os_string()))
            .collect();
        let (child, sock) = spawn(tmp.path(), models, batch_size, &db, &env);
        let d = Daemon {
            child,
            sock,
            models: models.to_path_buf(),
            batch_size,
            db,
            env,
            tmp,
        };
        d.expect_notify("READY=1", Duration::from_secs(30));
        d
    }

    /// Starts the daemon again in the same folder (after it stopped or was killed).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, sock) = spawn(
            self.tmp.path(),
            &self.models,
            self.batch_size,
            &self.db,
            &self.env,
        );
        self.child = child;
        self.sock = sock;
        self.expect_notify("READY=1", Duration::from_secs(30));
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }
    pub fn db(&self) -> PathBuf {
        self.dir().join("catalog.db")
    }
    pub fn config(&self) -> PathBuf {
        self.dir().join("phototag.toml")
    }

    /// Waits for a notify message with a line starting with `prefix`.
    pub fn expect_notify(&self, prefix: &str, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                if msg.lines().any(|l| l.starts_with(prefix)) {
                    return msg;
                }
            }
        }
        panic!("no {prefix} from the daemon within {timeout:?}");
    }

    /// `phototag status --json` for this daemon's catalog.
    pub fn status(&self) -> serde_json::Value {
        let out = std::process::Command::new(super::bin())
            .args(["status", "--json"])
            .env("PHOTOTAG_DB", self.db())
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("daemon.log")).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// SIGTERM, then waits (at most 15 s) for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < end,
                "daemon did not stop within 15 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(
    dir: &Path,
    models: &Path,
    batch_size: u16,
    db: &OsStr,
    env: &[(String, OsString)],
) -> (Child, UnixDatagram) {
    let sock_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&sock_path);
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut cmd = Command::new(super::bin());
    cmd.arg("--config")
        .arg(dir.join("phototag.toml"))
        .args(["watch", "--model", "resnet18-random", "--batch-size"])
        .arg(batch_size.to_string())
        .env("PHOTOTAG_MODEL_DIR", models)
        .env("PHOTOTAG_DB", db)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("NOTIFY_SOCKET", &sock_path)
        .env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("daemon.log")).unwrap());
    (super::spawn(cmd), sock)
}
