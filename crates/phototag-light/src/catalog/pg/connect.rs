//! Connecting to the PostgreSQL catalog: the URL (with libpq's `sslmode` and
//! `sslrootcert`, which tokio-postgres does not know, taken out first), the password, and
//! TLS through rustls.
//!
//! The password, first found: in the URL; in the file `[postgresql] password_file` names
//! (refused unless only its owner can read it); `$PGPASSWORD`; `~/.pgpass` (or
//! `$PGPASSFILE`; ignored, with a warning, when others can read it, as libpq does). It is
//! never logged, shown or put in an error.
//!
//! TLS, as libpq's `sslmode`: `disable`; `prefer` (the default: encrypted when the server
//! offers it, certificate not checked); `require` (encrypted, certificate not checked,
//! unless `sslrootcert` names a CA: then as `verify-ca`); `verify-ca` (the chain must lead
//! to a trusted root); `verify-full` (and name the host). Roots: `sslrootcert=FILE`, else
//! `~/.postgresql/root.crt` when it exists, else the system's.
//!
//! May not: run queries.

use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use postgres::config::{Host, SslMode};
use postgres::{Client, NoTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error as TlsError, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::PgError;
use crate::catalog::location::PgTarget;
use crate::catalog::CatalogError;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Everything needed to open connections to one catalog.
pub struct Connector {
    config: postgres::Config,
    tls: Option<MakeRustlsConnect>,
    /// The URL without its password, for messages.
    shown: String,
    pub mode: TlsMode,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("url", &self.shown)
            .field("mode", &self.mode)
            .finish()
    }
}

fn bad(target: &PgTarget, why: impl std::fmt::Display) -> CatalogError {
    CatalogError::Config(format!("{target}: {why}"))
}

impl Connector {
    /// Reads the URL and finds the password; no connection yet.
    pub fn new(target: &PgTarget) -> Result<Connector, CatalogError> {
        let (url, params) = take_tls_params(&target.url);
        let mut mode = TlsMode::Prefer;
        let mut root_file: Option<PathBuf> = None;
        for (k, v) in params {
            match k.as_str() {
                "sslmode" => {
                    mode = match v.as_str() {
                        "disable" => TlsMode::Disable,
                        "allow" | "prefer" => TlsMode::Prefer,
                        "require" => TlsMode::Require,
                        "verify-ca" => TlsMode::VerifyCa,
                        "verify-full" => TlsMode::VerifyFull,
                        other => return Err(bad(target, format!("unknown sslmode `{other}` (disable, prefer, require, verify-ca, verify-full)"))),
                    }
                }
                _ => root_file = Some(PathBuf::from(v)),
            }
        }
        if mode == TlsMode::Require && root_file.is_some() {
            mode = TlsMode::VerifyCa;
        }
        let mut config = postgres::Config::from_str(&url).map_err(|e| bad(target, e))?;
        if config.get_hosts().is_empty() {
            match std::env::var("PGHOST").ok().filter(|h| !h.is_empty()) {
                Some(h) => config.host(&h),
                None if Path::new("/var/run/postgresql").is_dir() => {
                    config.host_path("/var/run/postgresql")
                }
                None => config.host("localhost"),
            };
        }
        if config.get_ports().is_empty() {
            if let Some(p) = std::env::var("PGPORT").ok().and_then(|p| p.parse().ok()) {
                config.port(p);
            }
        }
        if config.get_user().is_none() {
            let user = std::env::var("PGUSER")
                .ok()
                .filter(|u| !u.is_empty())
                .or_else(login_name)
                .ok_or_else(|| bad(target, "no user name in the URL, $PGUSER or the system"))?;
            config.user(&user);
        }
        if config.get_dbname().is_none() {
            if let Some(db) = std::env::var("PGDATABASE").ok().filter(|d| !d.is_empty()) {
                config.dbname(&db);
            }
        }
        if config.get_password().is_none() {
            if let Some(pw) = password(&config, target)? {
                config.password(pw);
            }
        }
        config
            .application_name("phototag")
            .connect_timeout(target.options.connect_timeout)
            .keepalives(true)
            .keepalives_idle(std::time::Duration::from_secs(30));
        config.ssl_mode(match mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        });
        let tls = match mode {
            TlsMode::Disable => None,
            _ => Some(MakeRustlsConnect::new(
                tls_config(mode, root_file.as_deref()).map_err(|e| bad(target, e))?,
            )),
        };
        Ok(Connector {
            config,
            tls,
            shown: target.to_string(),
            mode,
        })
    }

    /// A new connection; a server that cannot be reached is [`CatalogError::Unavailable`].
    pub fn connect(&self) -> Result<Client, CatalogError> {
        let result = match &self.tls {
            None => self.config.connect(NoTls),
            Some(tls) => self.config.connect(tls.clone()),
        };
        result.map_err(|e| {
            let e = PgError(e);
            if e.is_unavailable() {
                CatalogError::Unavailable {
                    target: self.shown.clone(),
                    source: e,
                }
            } else {
                CatalogError::Connect {
                    target: self.shown.clone(),
                    source: e,
                }
            }
        })
    }
}

/// The URL without `sslmode` and `sslrootcert` (which tokio-postgres refuses or ignores),
/// and those two, percent-decoded.
fn take_tls_params(url: &str) -> (String, Vec<(String, String)>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if k == "sslmode" || k == "sslrootcert" {
            taken.push((k.to_string(), percent_decode(v)));
        } else {
            kept.push(kv);
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, taken)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The name of the user this process runs as.
fn login_name() -> Option<String> {
    if let Some(u) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
        return Some(u);
    }
    // SAFETY: getpwuid_r writes into the buffers we pass and the record we own; the name
    // is copied out before they go.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::geteuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// The password from the password file, `$PGPASSWORD` or the pgpass file, in that order.
fn password(config: &postgres::Config, target: &PgTarget) -> Result<Option<Vec<u8>>, CatalogError> {
    if let Some(file) = &target.options.password_file {
        return read_password_file(file).map(Some);
    }
    if let Some(pw) = std::env::var_os("PGPASSWORD").filter(|p| !p.is_empty()) {
        use std::os::unix::ffi::OsStringExt;
        return Ok(Some(pw.into_vec()));
    }
    let pgpass = match std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".pgpass"),
            None => return Ok(None),
        },
    };
    Ok(from_pgpass(&pgpass, config).map(String::into_bytes))
}

/// Whether only the owner may read or write the file (no group or other bits).
fn private(meta: &std::fs::Metadata) -> bool {
    meta.permissions().mode() & 0o077 == 0
}

/// The first line of the password file; an error (a configuration error) when it cannot be
/// read, is empty, or others may read it.
fn read_password_file(path: &Path) -> Result<Vec<u8>, CatalogError> {
    let problem = |why: String| CatalogError::Credentials {
        path: path.to_path_buf(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|e| problem(e.to_string()))?;
    if !private(&meta) {
        return Err(problem(format!(
            "it may be read by others (mode {:o}); make it private: chmod 600 {}",
            meta.permissions().mode() & 0o777,
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| problem(e.to_string()))?;
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = first.strip_suffix(b"\r").unwrap_or(first).to_vec();
    if line.is_empty() {
        return Err(problem("its first line is empty".into()));
    }
    Ok(line)
}

/// The password of the first matching line of a pgpass file
/// (`hostname:port:database:username:password`, `*` matching anything, `\:` and `\\`
/// escaped), as libpq reads it; none when the file is absent or others may read it.
fn from_pgpass(path: &Path, config: &postgres::Config) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !private(&meta) {
        tracing::warn!(
            file = %path.display(),
            "the password file may be read by others: ignored (chmod 600 it)"
        );
        return None;
    }
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or("").to_string();
    let db = config.get_dbname().unwrap_or(&user).to_string();
    let file = std::fs::File::open(path).ok()?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.ok()?;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(&line);
        if fields.len() < 5 {
            continue;
        }
        let ok = |pat: &str, v: &str| pat == "*" || pat == v;
        if ok(&fields[0], &host)
            && ok(&fields[1], &port)
            && ok(&fields[2], &db)
            && ok(&fields[3], &user)
        {
            return Some(fields[4..].join(":"));
        }
    }
    None
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().expect("one").push(n);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut().expect("one").push(c),
        }
    }
    out
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration for a mode.
fn tls_config(mode: TlsMode, root_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => Arc::new(Unverified(provider)),
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let roots = Arc::new(roots(root_file)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| e.to_string())?;
            if mode == TlsMode::VerifyCa {
                Arc::new(AnyName(webpki))
            } else {
                webpki
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The trusted roots: the file named, else `~/.postgresql/root.crt`, else the system's.
fn roots(file: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    let default = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".postgresql/root.crt"));
    let file = file
        .map(Path::to_path_buf)
        .or_else(|| default.filter(|d| d.exists()));
    let mut store = rustls::RootCertStore::empty();
    match file {
        Some(f) => {
            let certs = CertificateDer::pem_file_iter(&f)
                .map_err(|e| format!("cannot read the root certificates {}: {e}", f.display()))?;
            for c in certs {
                let c = c.map_err(|e| format!("{}: {e}", f.display()))?;
                store.add(c).map_err(|e| format!("{}: {e}", f.display()))?;
            }
            if store.is_empty() {
                return Err(format!("{} holds no certificate", f.display()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = store.add(c);
            }
            if store.is_empty() {
                return Err(
                    "no trusted root certificates on this system: name one with sslrootcert=FILE"
                        .into(),
                );
            }
        }
    }
    Ok(store)
}

/// `prefer` and `require` as libpq has them: encrypted, but any certificate is accepted
/// (the handshake's signatures are still checked).
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name is not checked.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_the_url() {
        let (url, p) = take_tls_params(
            "postgresql://u@h/db?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(url, "postgresql://u@h/db?application_name=x");
        assert_eq!(
            p,
            [
                ("sslmode".to_string(), "verify-full".to_string()),
                ("sslrootcert".to_string(), "/etc/ca.pem".to_string())
            ]
        );
        assert_eq!(take_tls_params("postgresql://h/db").0, "postgresql://h/db");
    }

    #[test]
    fn pgpass_lines_match_as_libpq_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:*:no\ndb.lan:5433:photos:alice:a\\:b\\\\c:d\n*:*:*:*:fallback\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = |s: &str| postgres::Config::from_str(s).unwrap();
        assert_eq!(
            from_pgpass(&file, &config("postgresql://alice@db.lan:5433/photos")).as_deref(),
            Some("a:b\\c:d")
        );
        assert_eq!(
            from_pgpass(&file, &config("postgresql://bob@db.lan:5433/photos")).as_deref(),
            Some("fallback")
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            from_pgpass(&file, &config("postgresql://bob@x/y")),
            None,
            "readable by others: ignored"
        );
    }

    #[test]
    fn a_password_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "hunter2\nignored\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_password_file(&file).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(read_password_file(&file).unwrap(), b"hunter2");
    }
}
