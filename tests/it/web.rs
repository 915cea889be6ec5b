//! Shared by the web tests: a small indexed catalog, `phototag serve` on a free port, and
//! a raw HTTP/1.1 client (it sends paths exactly as written, `..` included).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

/// The prepared random model the web tests use.
pub fn models() -> PathBuf {
    common::models(7)
}

/// Photos indexed into a catalog, in a temporary folder.
pub struct Library {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub db: PathBuf,
    pub cache: PathBuf,
}

impl Library {
    /// `orange.jpg`, `squirrel_cls.jpg` and a copy of the orange, indexed.
    pub fn new() -> Library {
        Library::with(&[])
    }

    /// As [`Library::new`], with more files (name, bytes) indexed with them.
    pub fn with(extra: &[(&str, Vec<u8>)]) -> Library {
        // Under the run folder: gone at exit even when a static holds the library.
        let tmp = common::tempdir();
        let root = tmp.path().join("photos");
        std::fs::create_dir_all(&root).unwrap();
        let fixtures = fixtures();
        for f in ["orange.jpg", "squirrel_cls.jpg"] {
            std::fs::copy(fixtures.join(f), root.join(f)).unwrap();
        }
        std::fs::copy(fixtures.join("orange.jpg"), root.join("z orange copy.jpg")).unwrap();
        for (name, bytes) in extra {
            std::fs::write(root.join(name), bytes).unwrap();
        }
        let lib = Library {
            root: root.canonicalize().unwrap(),
            db: tmp.path().join("catalog.db"),
            cache: tmp.path().join("cache"),
            tmp,
        };
        let out = lib.phototag(&[
            "index",
            "--model",
            "resnet18-random",
            lib.root.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lib
    }

    pub fn command(&self) -> Command {
        let mut c = common::phototag();
        c.env("PHOTOTAG_MODEL_DIR", models())
            .env("PHOTOTAG_DB", &self.db)
            .env("PHOTOTAG_CACHE_DIR", &self.cache)
            .env_remove("PHOTOTAG_SERVE_TOKEN");
        c
    }

    pub fn phototag(&self, args: &[&str]) -> std::process::Output {
        self.command().args(args).output().unwrap()
    }

    /// The JSON of `phototag <args> --json`, one value per line.
    pub fn json_lines(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let out = self.phototag(args);
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Starts `phototag serve` on a free loopback port with `config` as its config file.
    pub fn serve(&self, config: &str, env: &[(&str, &str)], listen: &str) -> Server {
        Server::start(self.serve_command(config, env, listen))
    }

    /// The command [`Library::serve`] starts.
    pub fn serve_command(&self, config: &str, env: &[(&str, &str)], listen: &str) -> Command {
        let cfg = self
            .tmp
            .path()
            .join(format!("serve-{}.toml", rand_suffix()));
        std::fs::write(&cfg, config).unwrap();
        let mut c = self.command();
        c.env("PHOTOTAG_CONFIG", &cfg).args([
            "serve",
            "--model",
            "resnet18-random",
            "--threads",
            "1",
            "--listen",
            listen,
        ]);
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }
}

impl Server {
    /// Starts a `phototag serve` command (killed with the test process, see
    /// `common::spawn`) and reads the address it prints; its log goes to a file (a pipe
    /// nobody reads would fill and stop the server).
    pub fn start(mut c: Command) -> Server {
        let log = common::run_dir().join(format!("serve-{}.log", rand_suffix()));
        c.stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = common::spawn(c);
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.is_empty() {
            let _ = child.wait();
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("phototag serve did not start: {err}");
        }
        let addr = line
            .trim()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .replace("0.0.0.0:", "127.0.0.1:");
        Server { child, addr, log }
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub fn fixtures() -> PathBuf {
    common::fixture("photos")
}

/// A running `phototag serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// Its stderr.
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request to `addr`, sent as written with `Host: host` (the address when `None`) and
/// `Connection: close`; waits at most `wait` for the answer (an error when none came).
pub fn send(
    addr: &str,
    host: Option<&str>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    wait: Duration,
) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(wait))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        host.unwrap_or(addr),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    // A server may answer (413) before reading a large body, and close.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err(std::io::Error::other(format!(
            "no HTTP answer: {:?}",
            String::from_utf8_lossy(&raw)
        )));
    }
    Ok(parse(&raw))
}

/// The multipart body and content type of an upload of `bytes` as the field `file`.
pub fn multipart(name: &str, bytes: &[u8]) -> (Vec<u8>, String) {
    let boundary = "phototag-test-boundary-7d1f";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

impl Server {
    /// One request, sent as written; `Connection: close`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        send(
            &self.addr,
            None,
            method,
            path,
            headers,
            body,
            Duration::from_secs(120),
        )
        .unwrap()
    }

    pub fn get(&self, path: &str) -> Answer {
        self.request("GET", path, &[], &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.request("GET", path, headers, &[])
    }

    /// `POST /api/classify` with `bytes` as the multipart field `file`.
    pub fn upload(&self, name: &str, bytes: &[u8], headers: &[(&str, &str)]) -> Answer {
        let (body, ct) = multipart(name, bytes);
        let mut h = vec![("Content-Type", ct.as_str())];
        h.extend_from_slice(headers);
        self.request("POST", "/api/classify", &h, &body)
    }

    /// Waits until the model is loaded (uploads before that get 503).
    pub fn wait_for_model(&self) {
        let start = Instant::now();
        loop {
            let s = self.get("/api/session").json();
            if !s["model"].is_null() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "model never loaded: {s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn parse(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol]).unwrap().trim();
        let size = usize::from_str_radix(size, 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
    out
}
