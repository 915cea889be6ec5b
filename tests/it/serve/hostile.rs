//! `phototag serve` against hostile clients, over raw sockets: a huge search, DNS
//! rebinding and cross-site posts, slow and idle connections, more connections than file
//! descriptors, SIGTERM with a request half sent, a FIFO where a photo was, a flood of
//! wrong tokens, forty uploads at once and the memory they take, error bodies that must be
//! JSON, and servers that must not outlive the tests.

use crate::common;
use crate::web::{self, fixtures, Library, Server};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn orange_hash() -> String {
    let bytes = std::fs::read(fixtures().join("orange.jpg")).unwrap();
    blake3::hash(&bytes).to_hex().to_string()
}

/// Reads until the server closes the connection (or `within` passes): what it sent, and
/// whether it closed in time.
fn read_until_closed(s: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let end = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (got, false);
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset) => {
                return (got, true)
            }
            Err(_) => return (got, false),
        }
    }
}

fn status_of(raw: &[u8]) -> Option<u16> {
    let head = String::from_utf8_lossy(raw);
    head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// The server's peak resident memory so far, in MiB (`VmHWM`).
fn peak_rss_mib(s: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

#[test]
fn a_huge_search_is_refused_and_the_page_stays_responsive() {
    let lib = Library::new();
    let s = lib.serve("", &[], "127.0.0.1:0");
    // The probe's query: 60 KB of unknown words, two at once.
    let path = format!("/api/search?q={}", vec!["abcde"; 10_000].join("+"));
    let hostile: Vec<_> = (0..2)
        .map(|_| {
            let (addr, path) = (s.addr.clone(), path.clone());
            std::thread::spawn(move || {
                let t = Instant::now();
                let wait = Duration::from_secs(60);
                let a = web::send(&addr, None, "GET", &path, &[], b"", wait).unwrap();
                (a, t.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    let t = Instant::now();
    let page = web::send(&s.addr, None, "GET", "/", &[], b"", Duration::from_secs(60)).unwrap();
    let page_took = t.elapsed();
    for h in hostile {
        let (a, took) = h.join().unwrap();
        eprintln!("60 KB query: {} in {took:?}", a.status);
        assert_eq!(a.status, 400, "{}", a.text());
        let e = a.json()["error"].as_str().unwrap().to_string();
        assert!(e.contains("longer than 2000 characters"), "{e}");
    }
    eprintln!("GET / while they ran: {} in {page_took:?}", page.status);
    assert_eq!(page.status, 200);
    assert!(
        page_took < Duration::from_secs(2),
        "GET / took {page_took:?} while two hostile searches ran"
    );

    // At the limits: 64 unknown terms of 30 letters. Suggestions only for the first few.
    let words: Vec<String> = (0..64)
        .map(|i| format!("zq{i:02}{}", "x".repeat(26)))
        .collect();
    let t = Instant::now();
    let a = s.get(&format!("/api/search?q={}", words.join("%20")));
    eprintln!("64 unknown terms: {} in {:?}", a.status, t.elapsed());
    assert_eq!(a.status, 200, "{}", a.text());
    let unknown = a.json()["unknown"].as_array().unwrap().clone();
    assert_eq!(unknown.len(), 64);
    let a = s.get(&format!(
        "/api/search?q={}",
        vec!["dog"; 65].join("%20OR%20")
    ));
    assert_eq!(a.status, 400);
    assert!(a.json()["error"]
        .as_str()
        .unwrap()
        .contains("at most 64 terms"));
}

#[test]
fn other_hosts_and_cross_site_writes_are_refused() {
    let lib = Library::new();
    let s = lib.serve(
        "[serve]\nhosts = [\"photos.example.com\"]\n",
        &[],
        "127.0.0.1:0",
    );
    s.wait_for_model();
    let port = s.addr.rsplit(':').next().unwrap().to_string();
    let get = |host: &str, path: &str| {
        web::send(
            &s.addr,
            Some(host),
            "GET",
            path,
            &[],
            b"",
            Duration::from_secs(30),
        )
        .unwrap()
    };
    // A page rebound to 127.0.0.1 sends its own name: it reads nothing.
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "192.168.1.5",
        "localhost.evil.example",
    ] {
        let a = get(host, "/api/search?q=orange");
        assert_eq!(a.status, 421, "{host}: {}", a.text());
        assert!(a.json()["error"].as_str().unwrap().contains("serve.hosts"));
        assert!(!a.text().contains("orange.jpg"), "{host} read a path");
        assert_eq!(get(host, &format!("/photo/{}", orange_hash())).status, 421);
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "photos.example.com".to_string(),
        "PHOTOS.example.com:443".to_string(),
    ] {
        let a = get(&host, "/api/labels");
        assert_eq!(a.status, 200, "{host}: {}", a.text());
    }

    // A POST from another site's page carries its Origin: refused.
    let jpeg = std::fs::read(fixtures().join("orange.jpg")).unwrap();
    for origin in [
        "http://evil.example",
        "null",
        "http://127.0.0.1.evil.example",
    ] {
        let a = s.upload("orange.jpg", &jpeg, &[("Origin", origin)]);
        assert_eq!(a.status, 403, "{origin}: {}", a.text());
        assert!(a.json()["error"].is_string());
        let login = s.request(
            "POST",
            "/api/login",
            &[("Origin", origin), ("Content-Type", "application/json")],
            br#"{"token":"x"}"#,
        );
        assert_eq!(login.status, 403, "{origin}");
    }
    let own = format!("http://127.0.0.1:{port}");
    assert_eq!(
        s.upload("orange.jpg", &jpeg, &[("Origin", &own)]).status,
        200
    );
    assert_eq!(
        s.upload("orange.jpg", &jpeg, &[]).status,
        200,
        "no Origin: not a browser"
    );
}

#[test]
fn slow_idle_and_dripping_clients_are_cut_off() {
    let lib = Library::new();
    let s = lib.serve("[serve]\ntimeout_seconds = 1.0\n", &[], "127.0.0.1:0");
    let limit = Duration::from_secs(6);
    let addr = s.addr.clone();
    // Connects and sends nothing.
    let idle = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let mut c = TcpStream::connect(&addr).unwrap();
            let t = Instant::now();
            let (_, closed) = read_until_closed(&mut c, limit);
            ("idle", closed, t.elapsed(), None)
        })
    };
    // Sends its headers a byte every 300 ms (slowloris).
    let slowloris = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let mut c = TcpStream::connect(&addr).unwrap();
            let t = Instant::now();
            let head = format!(
                "GET / HTTP/1.1\r\nHost: {addr}\r\nX-Padding: {}",
                "a".repeat(100)
            );
            for b in head.bytes() {
                if c.write_all(&[b]).is_err() || t.elapsed() > limit {
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            let (_, closed) = read_until_closed(&mut c, Duration::from_millis(100));
            ("slowloris", closed, t.elapsed(), None)
        })
    };
    // One request, then keeps the connection open and idle.
    let kept = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let mut c = TcpStream::connect(&addr).unwrap();
            c.write_all(format!("GET /style.css HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
                .unwrap();
            let t = Instant::now();
            let (got, closed) = read_until_closed(&mut c, limit);
            ("keep-alive", closed, t.elapsed(), status_of(&got))
        })
    };
    // An upload whose body drips at 100 bytes a second.
    let drip = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let mut c = TcpStream::connect(&addr).unwrap();
            let (body, ct) = web::multipart("big.jpg", &vec![0u8; 100_000]);
            c.write_all(
                format!(
                    "POST /api/classify HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .unwrap();
            let t = Instant::now();
            c.set_nonblocking(true).unwrap();
            let mut answer = Vec::new();
            for chunk in body.chunks(100) {
                if t.elapsed() > limit {
                    break;
                }
                let mut buf = [0u8; 4096];
                match c.read(&mut buf) {
                    Ok(n) if n > 0 => {
                        answer.extend_from_slice(&buf[..n]);
                        break;
                    }
                    _ => {}
                }
                if c.write_all(chunk).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            c.set_nonblocking(false).unwrap();
            let (got, closed) = read_until_closed(&mut c, Duration::from_secs(2));
            answer.extend_from_slice(&got);
            ("dripped body", closed, t.elapsed(), status_of(&answer))
        })
    };
    for h in [idle, slowloris, kept, drip] {
        let (what, closed, took, status) = h.join().unwrap();
        eprintln!("{what}: closed {closed} after {took:?}, answer {status:?}");
        assert!(closed && took < limit, "{what}: still open after {took:?}");
        match what {
            "keep-alive" => assert_eq!(status, Some(200)),
            "dripped body" => assert_eq!(status, Some(408), "{what}"),
            _ => {}
        }
    }
    assert_eq!(s.get("/").status, 200, "the server still answers");
}

#[test]
fn connections_beyond_the_file_limit_do_not_lock_clients_out() {
    use std::os::unix::process::CommandExt;
    let lib = Library::new();
    let mut c = lib.serve_command("[serve]\ntimeout_seconds = 2.0\n", &[], "127.0.0.1:0");
    // The probe's open-file limit.
    // SAFETY: setrlimit between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let l = libc::rlimit {
                rlim_cur: 300,
                rlim_max: 300,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let s = Server::start(c);
    let mut idle: Vec<TcpStream> = (0..320)
        .map(|_| TcpStream::connect(&s.addr).unwrap())
        .collect();
    let t = Instant::now();
    let served = common::wait_for("a new client served", Duration::from_secs(20), || {
        web::send(&s.addr, None, "GET", "/", &[], b"", Duration::from_secs(2))
            .is_ok_and(|a| a.status == 200)
    });
    eprintln!("a new client was served {served:?} after 320 idle connections");
    // Those over the limit got 503 with Retry-After at once; the rest were closed.
    let (mut busy, mut closed) = (0, 0);
    for c in &mut idle {
        let (got, gone) = read_until_closed(c, Duration::from_secs(10));
        if status_of(&got) == Some(503) {
            assert!(String::from_utf8_lossy(&got).contains("retry-after"));
            busy += 1;
        }
        closed += usize::from(gone);
    }
    eprintln!(
        "{busy} answered 503 at once, {closed} of 320 closed within {:?}",
        t.elapsed()
    );
    assert_eq!(closed, 320, "every idle connection is closed");
    assert!(busy > 0, "connections over the limit are answered 503");
    assert_eq!(s.get("/api/labels").status, 200);
}

#[test]
fn sigterm_stops_the_server_with_a_request_half_sent() {
    let lib = Library::new();
    let mut s = lib.serve("", &[], "127.0.0.1:0");
    s.wait_for_model();
    let mut half_head = TcpStream::connect(&s.addr).unwrap();
    half_head
        .write_all(format!("GET /api/labels HTTP/1.1\r\nHost: {}\r\nX-Slow: ", s.addr).as_bytes())
        .unwrap();
    let mut half_body = TcpStream::connect(&s.addr).unwrap();
    let (body, ct) = web::multipart("a.jpg", &[0u8; 5000]);
    half_body
        .write_all(
            format!(
                "POST /api/classify HTTP/1.1\r\nHost: {}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                s.addr,
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    half_body.write_all(&body[..100]).unwrap();
    let _idle = TcpStream::connect(&s.addr).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
    let t = Instant::now();
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break Some(st);
        }
        if t.elapsed() > Duration::from_secs(9) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("stopped {:?} after SIGTERM: {status:?}", t.elapsed());
    let st = status.unwrap_or_else(|| panic!("still running 9 s after SIGTERM:\n{}", s.log()));
    assert!(st.success(), "{st:?}\n{}", s.log());
    assert!(t.elapsed() < Duration::from_secs(8));
}

/// Makes a FIFO at `path` (in place of a file).
fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

#[test]
fn a_fifo_in_place_of_a_photo_is_refused_at_once() {
    let lib = Library::new();
    let s = lib.serve("", &[], "127.0.0.1:0");
    mkfifo(&lib.root.join("orange.jpg"));
    mkfifo(&lib.root.join("z orange copy.jpg"));
    let hash = orange_hash();
    let t = Instant::now();
    let asks: Vec<_> = (0..40)
        .map(|i| {
            let addr = s.addr.clone();
            let path = if i % 2 == 0 {
                format!("/photo/{hash}")
            } else {
                format!("/thumb/{hash}")
            };
            std::thread::spawn(move || {
                web::send(&addr, None, "GET", &path, &[], b"", Duration::from_secs(10))
                    .map(|a| a.status)
            })
        })
        .collect();
    for a in asks {
        let status = a.join().unwrap();
        assert!(matches!(status, Ok(404)), "{status:?}");
    }
    eprintln!("40 requests for a FIFO answered 404 in {:?}", t.elapsed());
    let a = s.get("/api/labels");
    assert_eq!(a.status, 200, "the data routes still answer");
}

#[test]
fn wrong_tokens_are_throttled_for_the_whole_server() {
    let lib = Library::new();
    let s = lib.serve("[serve]\ntoken = \"t0ken\"\n", &[], "127.0.0.1:0");
    let login_with = |addr: &str, body: &[u8], ct: &str| {
        web::send(
            addr,
            None,
            "POST",
            "/api/login",
            &[("Content-Type", ct)],
            body,
            Duration::from_secs(30),
        )
        .unwrap()
    };
    // Malformed logins are refused in JSON before they count as guesses.
    let big = format!(r#"{{"token":"{}"}}"#, "x".repeat(70_000));
    for (body, ct, status) in [
        (&br#"{"token":"x"}"#[..], "text/plain", 415),
        (b"{not json", "application/json", 400),
        (br#"{"tok":"x"}"#, "application/json", 422),
        (big.as_bytes(), "application/json", 413),
    ] {
        let a = login_with(&s.addr, body, ct);
        assert_eq!(a.status, status, "{}", a.text());
        assert!(a.json()["error"].is_string(), "{}", a.text());
    }
    let t = Instant::now();
    let guesses: Vec<_> = (0..100)
        .map(|i| {
            let addr = s.addr.clone();
            std::thread::spawn(move || {
                let body = format!(r#"{{"token":"guess{i}"}}"#);
                web::send(
                    &addr,
                    None,
                    "POST",
                    "/api/login",
                    &[("Content-Type", "application/json")],
                    body.as_bytes(),
                    Duration::from_secs(30),
                )
                .unwrap()
            })
        })
        .collect();
    let (mut wrong, mut throttled, mut retry) = (0, 0, 0);
    for g in guesses {
        let a = g.join().unwrap();
        match a.status {
            401 => wrong += 1,
            429 => {
                throttled += 1;
                assert!(a.json()["error"].as_str().unwrap().contains("try again"));
                retry = retry.max(a.header("retry-after").unwrap().parse::<u64>().unwrap());
            }
            other => panic!("{other}: {}", a.text()),
        }
    }
    eprintln!(
        "100 parallel wrong logins in {:?}: {wrong} × 401, {throttled} × 429 (Retry-After up to {retry} s)",
        t.elapsed()
    );
    assert!(wrong <= 12, "{wrong} guesses were checked");
    assert!(throttled >= 88);
    // A bearer token is a guess too.
    let a = s.get_with("/api/labels", &[("Authorization", "Bearer guess")]);
    assert_eq!(a.status, 429, "{}", a.text());
    // Once the wait is over, the right token logs in.
    std::thread::sleep(Duration::from_secs(retry));
    let ok = login_with(&s.addr, br#"{"token":"t0ken"}"#, "application/json");
    assert_eq!(ok.status, 204, "{}", ok.text());
}

/// `POST /api/classify` with a multipart `body`, tried again as often as `tries` while the
/// answer is 503, waiting what its `Retry-After` says (as the page does): the last status,
/// and how many 503s came first.
fn upload_retrying(addr: &str, body: &[u8], ct: &str, tries: u32) -> (u16, u32) {
    let mut busy = 0;
    for _ in 0..tries {
        let a = web::send(
            addr,
            None,
            "POST",
            "/api/classify",
            &[("Content-Type", ct)],
            body,
            Duration::from_secs(120),
        )
        .unwrap();
        if a.status != 503 {
            return (a.status, busy);
        }
        busy += 1;
        assert!(a.json()["error"].is_string());
        let wait: u64 = a
            .header("retry-after")
            .expect("a 503 says when to retry")
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_secs(wait));
    }
    (503, busy)
}

#[test]
fn forty_uploads_at_once_are_all_classified() {
    let lib = Library::new();
    let s = lib.serve("", &[], "127.0.0.1:0");
    s.wait_for_model();
    let jpeg = std::fs::read(fixtures().join("orange.jpg")).unwrap();
    let t = Instant::now();
    let uploads: Vec<_> = (0..40)
        .map(|_| {
            let (addr, jpeg) = (s.addr.clone(), jpeg.clone());
            std::thread::spawn(move || {
                let (body, ct) = web::multipart("orange.jpg", &jpeg);
                upload_retrying(&addr, &body, &ct, 30)
            })
        })
        .collect();
    let results: Vec<(u16, u32)> = uploads.into_iter().map(|u| u.join().unwrap()).collect();
    let retried: u32 = results.iter().map(|r| r.1).sum();
    eprintln!(
        "40 parallel uploads: all answered in {:?}, {retried} retries after a 503; server peak RSS {} MiB",
        t.elapsed(),
        peak_rss_mib(&s)
    );
    assert!(results.iter().all(|r| r.0 == 200), "{results:?}");
}

#[test]
fn upload_memory_is_bounded_as_a_whole() {
    let lib = Library::new();
    let s = lib.serve("[serve]\nmax_upload_bytes = 20971520\n", &[], "127.0.0.1:0");
    s.wait_for_model();
    let before = peak_rss_mib(&s);
    // Twenty uploads of 19 MiB at once (not images: refused once read).
    let junk = vec![7u8; 19 << 20];
    let (body, ct) = web::multipart("junk.jpg", &junk);
    let body = std::sync::Arc::new(body);
    let uploads: Vec<_> = (0..20)
        .map(|_| {
            let (addr, body, ct) = (s.addr.clone(), body.clone(), ct.clone());
            std::thread::spawn(move || upload_retrying(&addr, &body, &ct, 60).0)
        })
        .collect();
    for u in uploads {
        assert_eq!(u.join().unwrap(), 415);
    }
    let after = peak_rss_mib(&s);
    eprintln!("20 parallel 19 MiB uploads: server peak RSS {before} → {after} MiB");
    assert!(
        after - before < 160,
        "uploads took {} MiB at once",
        after - before
    );
    // One 16-bit PNG within the pixel limit that would decode to over 800 MB: refused.
    let png = common::png16(30_000, 2982);
    eprintln!("16-bit PNG 30000x2982: {} bytes", png.len());
    let before = peak_rss_mib(&s);
    let a = s.upload("wide.png", &png, &[]);
    assert_eq!(a.status, 413, "{}", a.text());
    assert!(a.json()["error"]
        .as_str()
        .unwrap()
        .contains("max_alloc_bytes"));
    let after = peak_rss_mib(&s);
    eprintln!(
        "its upload: {} → server peak RSS {before} → {after} MiB",
        a.status
    );
    assert!(after - before < 100);
}

#[test]
fn every_error_is_json() {
    let lib = Library::new();
    let s = lib.serve("", &[], "127.0.0.1:0");
    for (method, path, status) in [
        ("GET", "/api/photos/%FF%FE", 400),
        ("GET", "/thumb/%C3%28", 400),
        ("GET", "/api/classify", 405),
        ("DELETE", "/api/labels", 405),
        ("GET", "/api/search?q=dog&min_prob=x", 400),
        ("GET", "/nothing", 404),
    ] {
        let a = s.request(method, path, &[], b"");
        assert_eq!(a.status, status, "{method} {path}: {}", a.text());
        assert!(
            a.header("content-type")
                .unwrap()
                .starts_with("application/json"),
            "{method} {path}"
        );
        let e = a.json()["error"].as_str().unwrap().to_string();
        assert!(!e.is_empty(), "{method} {path}");
    }
}

/// Run by `servers_die_with_the_tests` in a test process of its own: starts a server the
/// way the tests do, says where, and ends the process the way `PHOTOTAG_TEST_END` says.
#[test]
#[ignore = "run by servers_die_with_the_tests in a process of its own"]
fn start_a_server_and_end_the_process() {
    let Some(report) = std::env::var_os("PHOTOTAG_TEST_REPORT") else {
        return;
    };
    let dir = common::tempdir();
    let mut c = common::phototag();
    c.env("PHOTOTAG_DB", dir.path().join("catalog.db"))
        .env("PHOTOTAG_MODEL_DIR", dir.path().join("models"))
        .env("PHOTOTAG_CACHE_DIR", dir.path().join("cache"))
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let s = Server::start(c);
    let line = format!(
        "{}\n{}\n{}\n",
        s.child.id(),
        common::run_dir().display(),
        dir.path().display()
    );
    std::fs::write(&report, line).unwrap();
    // Held forever, as a shared server in a static is.
    std::mem::forget(s);
    std::mem::forget(dir);
    if std::env::var("PHOTOTAG_TEST_END").as_deref() == Ok("kill") {
        // SAFETY: the test process kills itself, as an interrupted run would be.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    std::process::exit(0);
}

fn running(pid: u32) -> bool {
    // A zombie (exited, not yet reaped by its new parent) is not running.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

#[test]
fn servers_die_with_the_tests() {
    for end in ["exit", "kill"] {
        let tmp = tempfile::tempdir().unwrap();
        let report = tmp.path().join("report");
        let st = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "serve::hostile::start_a_server_and_end_the_process",
                "--ignored",
                "--nocapture",
            ])
            .env("PHOTOTAG_TEST_REPORT", &report)
            .env("PHOTOTAG_TEST_END", end)
            .status()
            .unwrap();
        let text = std::fs::read_to_string(&report).unwrap();
        let mut lines = text.lines();
        let pid: u32 = lines.next().unwrap().parse().unwrap();
        let (run, dir) = (
            PathBuf::from(lines.next().unwrap()),
            PathBuf::from(lines.next().unwrap()),
        );
        let gone = common::wait_for("the server to die", Duration::from_secs(10), || {
            !running(pid)
        });
        eprintln!("test process ended ({end}, {st:?}): its server {pid} was gone after {gone:?}");
        if end == "kill" {
            // Killed: nothing ran at exit; the next run's start removes what it left.
            assert!(run.exists());
            common::sweep_run_dirs();
        }
        assert!(!run.exists(), "{} left behind", run.display());
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}
