//! A real PostgreSQL for the tests (the catalog's unit tests and `tests/it`, through the
//! `test-fixtures` feature), started by the test process itself: Debian's
//! `postgresql` binaries (`/usr/lib/postgresql/N/bin`, or `initdb` on the `PATH`), `initdb`
//! into a temporary folder (as the `postgres` user through `runuser` when the tests run as
//! root: PostgreSQL refuses to run as root), listening on a free port of 127.0.0.1 and on a
//! socket in that folder, stopped and removed when the test process exits.
//!
//! One [`shared`] server per test run, a fresh database per test ([`database`], dropped with
//! it); a test that stops and starts its server gets one of its own ([`Server::start`]).
//! Where no server can be had, the test prints `SKIPPED <test>: <why>` ([`database`] returns
//! `None`).
//!
//! Roles: `postgres` (the superuser; trusted on 127.0.0.1), `phototag_secret` (password
//! [`SECRET_PASSWORD`], SCRAM), `phototag_tls` (trusted, but only over TLS). The server's
//! certificate (for `localhost` and 127.0.0.1) is signed by a test CA whose certificate is
//! [`Server::ca_file`].

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::PgError;

/// Says, past the test harness's output capture, that a test skips and why.
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// The password of the role `phototag_secret`.
pub const SECRET_PASSWORD: &str = "s3cret-pw-of-the-tests";

/// A PostgreSQL server of the tests.
pub struct Server {
    /// The temporary folder: `data/` (the cluster), the socket, certificates, `server.log`.
    pub dir: PathBuf,
    port: std::sync::atomic::AtomicU16,
    bin: PathBuf,
    /// Run the server's programs as the `postgres` user (the tests run as root).
    as_postgres: bool,
}

/// Servers to stop when the test process exits: (bin, data folder, as_postgres, folder).
type Running = Vec<(PathBuf, PathBuf, bool, PathBuf)>;
static RUNNING: Mutex<Running> = Mutex::new(Vec::new());

extern "C" fn stop_all() {
    let running = RUNNING.lock().map(|r| r.clone()).unwrap_or_default();
    for (bin, data, as_postgres, dir) in running {
        let _ = pg_ctl_cmd(&bin, as_postgres)
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn pg_ctl_cmd(bin: &Path, as_postgres: bool) -> Command {
    program(bin, "pg_ctl", as_postgres)
}

/// `bin/name`, run as `postgres` through `runuser` when asked.
fn program(bin: &Path, name: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(name));
        c
    } else {
        Command::new(bin.join(name))
    }
}

/// The folder of `initdb`, `pg_ctl` and `postgres`: `$PHOTOTAG_TEST_PG_BIN`, else the
/// newest `/usr/lib/postgresql/N/bin`, else the folder of `initdb` on the `PATH`.
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(b) = std::env::var_os("PHOTOTAG_TEST_PG_BIN") {
        return Ok(PathBuf::from(b));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for d in std::env::split_paths(&path) {
        if let Ok(real) = std::fs::canonicalize(d.join("initdb")) {
            if let Some(parent) = real.parent() {
                return Ok(parent.to_path_buf());
            }
        }
    }
    Err("PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on the PATH; `scripts/setup.sh` installs Debian's postgresql)".into())
}

fn run(mut c: Command, what: &str) -> Result<(), String> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// uid and gid of the `postgres` user.
fn postgres_ids() -> Result<(u32, u32), String> {
    let name = std::ffi::CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam with a valid C string; the record is read at once, before any
    // other call could overwrite it (tests take the RUNNING lock around server starts).
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err("there is no `postgres` user to run PostgreSQL as (the tests run as root, which PostgreSQL refuses); install Debian's postgresql".into());
    }
    // SAFETY: pw is a valid record (checked above).
    Ok(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

/// The test CA and a server certificate it signed, for `localhost` and 127.0.0.1, as PEM
/// files: `ca.pem`, `server.crt`, `server.key`.
fn write_certificates(dir: &Path) -> Result<(), String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let e = |e: rcgen::Error| format!("test certificates: {e}");
    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca = CertificateParams::new(Vec::new()).map_err(e)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "phototag test CA");
    let ca_cert = ca.self_signed(&ca_key).map_err(e)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().map_err(e)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .map_err(e)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &issuer).map_err(e)?;
    let w = |name: &str, text: String| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("writing {name}: {e}"))
    };
    w("ca.pem", ca_cert.pem())?;
    w("server.crt", cert.pem())?;
    w("server.key", key.serialize_pem())?;
    Ok(())
}

const HBA: &str = "\
local   all  all                            trust
hostssl all  phototag_tls     127.0.0.1/32  trust
host    all  phototag_tls     127.0.0.1/32  reject
host    all  phototag_secret  127.0.0.1/32  scram-sha-256
host    all  all              127.0.0.1/32  trust
";

impl Server {
    /// `initdb`s a new cluster in a temporary folder and starts it (stopped and removed
    /// when dropped, or when the test process exits).
    pub fn start() -> Result<Server, String> {
        let bin = bin_dir()?;
        // SAFETY: geteuid has no preconditions.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::Builder::new()
            .prefix("phototag-pg-")
            .tempdir()
            .map_err(|e| format!("temporary folder: {e}"))?
            .keep();
        let server = Server {
            dir: dir.clone(),
            port: std::sync::atomic::AtomicU16::new(0),
            bin,
            as_postgres,
        };
        let data = dir.join("data");
        {
            static AT_EXIT: std::sync::Once = std::sync::Once::new();
            // SAFETY: registers a plain function to run at exit; it stops servers.
            AT_EXIT.call_once(|| unsafe {
                libc::atexit(stop_all);
            });
            let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
            running.push((server.bin.clone(), data.clone(), as_postgres, dir.clone()));
        }
        write_certificates(&dir)?;
        if as_postgres {
            let (uid, gid) = postgres_ids()?;
            for entry in std::fs::read_dir(&dir).map_err(|e| e.to_string())? {
                let p = entry.map_err(|e| e.to_string())?.path();
                std::os::unix::fs::chown(&p, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
            }
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .map_err(|e| e.to_string())?;
        let mut initdb = program(&server.bin, "initdb", as_postgres);
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .arg("--locale=C");
        run(initdb, "initdb")?;
        let hba = data.join("pg_hba.conf");
        std::fs::write(&hba, HBA).map_err(|e| format!("writing pg_hba.conf: {e}"))?;
        let conf = format!(
            "\n# phototag tests: speed over durability, TLS with the test CA's certificate\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             ssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n\
             max_connections = 200\n",
            dir = dir.display()
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .map_err(|e| e.to_string())?;
        std::io::Write::write_all(&mut f, conf.as_bytes()).map_err(|e| e.to_string())?;
        server.start_again()?;
        let mut c = server.superuser("postgres")?;
        c.batch_execute(&format!(
            "CREATE ROLE phototag_secret LOGIN PASSWORD '{SECRET_PASSWORD}';
             CREATE ROLE phototag_tls LOGIN;"
        ))
        .map_err(|e| format!("creating the test roles: {}", PgError(e)))?;
        Ok(server)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::Relaxed)
    }

    /// Starts the (stopped) server again, on the same port (a new free one the first time,
    /// or when that one was taken meanwhile).
    pub fn start_again(&self) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..3 {
            if self.port() == 0 || !last.is_empty() {
                self.port.store(free_port()?, Ordering::Relaxed);
            }
            let mut c = pg_ctl_cmd(&self.bin, self.as_postgres);
            c.arg("-D")
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .arg("-o")
                .arg(format!(
                    "-p {} -k {} -c listen_addresses=127.0.0.1",
                    self.port(),
                    self.dir.display()
                ))
                .args(["-w", "-t", "60", "start"]);
            match run(c, "pg_ctl start") {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last = format!(
                        "{e}\n{}",
                        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
                    )
                }
            }
        }
        Err(last)
    }

    /// Stops the server (fast shutdown: connections are cut, as when a server goes away).
    pub fn stop(&self) {
        let mut c = pg_ctl_cmd(&self.bin, self.as_postgres);
        c.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"]);
        run(c, "pg_ctl stop").unwrap();
    }

    /// A connection as the superuser to `db`.
    pub fn superuser(&self, db: &str) -> Result<postgres::Client, String> {
        let started = Instant::now();
        loop {
            match postgres::Client::connect(&self.url(db), postgres::NoTls) {
                Ok(c) => return Ok(c),
                Err(e) if started.elapsed() > Duration::from_secs(10) => {
                    return Err(format!("connecting to the test server: {}", PgError(e)))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The URL of database `db` as the superuser, over TCP without TLS.
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port())
    }

    /// The test CA's certificate (PEM): what `sslrootcert` names for `verify-full`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A fresh, empty database; dropped with the returned value.
    pub fn database(&self, test: &str) -> Result<Db<'_>, String> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let clean: String = test
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(40)
            .collect();
        let name = format!(
            "t{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            clean.to_ascii_lowercase()
        );
        let mut c = self.superuser("postgres")?;
        // One statement each: CREATE DATABASE cannot run inside a transaction block.
        for sql in [
            format!("CREATE DATABASE {name}"),
            format!("GRANT ALL ON DATABASE {name} TO PUBLIC"),
        ] {
            c.batch_execute(&sql)
                .map_err(|e| format!("creating database {name}: {}", PgError(e)))?;
        }
        let mut db = self.superuser(&name)?;
        db.batch_execute("GRANT ALL ON SCHEMA public TO PUBLIC")
            .map_err(|e| format!("granting on {name}: {}", PgError(e)))?;
        Ok(Db {
            url: self.url(&name),
            name,
            server: self,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = pg_ctl_cmd(&self.bin, self.as_postgres)
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Ok(mut r) = RUNNING.lock() {
            r.retain(|(_, d, _, _)| *d != data);
        }
    }
}

/// A database of a test.
pub struct Db<'s> {
    /// As the superuser, over TCP.
    pub url: String,
    pub name: String,
    pub server: &'s Server,
}

impl Db<'_> {
    /// A connection as the superuser.
    pub fn client(&self) -> postgres::Client {
        self.server.superuser(&self.name).unwrap()
    }

    /// The URL as `user` (no password), with extra query parameters (`sslmode=...`).
    pub fn url_as(&self, user: &str, query: &str) -> String {
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!(
            "postgresql://{user}@127.0.0.1:{}/{}{q}",
            self.server.port(),
            self.name
        )
    }
}

impl Drop for Db<'_> {
    fn drop(&mut self) {
        if let Ok(mut c) = self.server.superuser("postgres") {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The server of this test run, started at the first call; `None` (after saying why once
/// per test) when there can be none.
pub fn shared(test: &str) -> Option<&'static Server> {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    match SERVER.get_or_init(Server::start) {
        Ok(s) => Some(s),
        Err(e) => {
            skip(test, &format!("no PostgreSQL test server: {e}"));
            None
        }
    }
}

/// A fresh database on the shared server, or `None` after printing `SKIPPED test: why`.
pub fn database(test: &str) -> Option<Db<'static>> {
    let server = shared(test)?;
    match server.database(test) {
        Ok(db) => Some(db),
        Err(e) => {
            skip(test, &e);
            None
        }
    }
}
