//! `phototag serve` through real HTTP: the page, uploads (good, not an image, corrupt,
//! oversized, a decompression bomb), search, tag cloud, photo info, thumbnails, originals,
//! path traversal attempts, copies that changed, and the access token.

use crate::web;

mod hostile;
mod taught;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use web::{fixtures, Library, Server};

/// One indexed library and one server for the tests that only read.
fn shared() -> &'static (Library, Server) {
    static SHARED: OnceLock<(Library, Server)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let lib = Library::new();
        let server = lib.serve("", &[], "127.0.0.1:0");
        server.wait_for_model();
        (lib, server)
    })
}

fn orange_hash() -> String {
    let bytes = std::fs::read(fixtures().join("orange.jpg")).unwrap();
    blake3::hash(&bytes).to_hex().to_string()
}

#[test]
fn the_page_and_its_assets() {
    let (_, s) = shared();
    let page = s.get("/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = page.text();
    for needle in [
        "/app.js",
        "/style.css",
        "id=\"file\"",
        "id=\"q\"",
        "id=\"cloud\"",
        "id=\"grid\"",
    ] {
        assert!(html.contains(needle), "{needle} missing from the page");
    }
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let js = s.get("/app.js");
    assert_eq!(js.status, 200);
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.text().contains("/api/classify"));
    assert_eq!(s.get("/style.css").status, 200);
    let missing = s.get("/nothing-here");
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"]
        .as_str()
        .unwrap()
        .contains("/nothing-here"));
}

#[test]
fn an_upload_gets_the_top3_of_classify_json() {
    let (lib, s) = shared();
    let file = fixtures().join("squirrel_cls.jpg");
    let bytes = std::fs::read(&file).unwrap();
    let a = s.upload("squirrel_cls.jpg", &bytes, &[]);
    assert_eq!(a.status, 200, "{}", a.text());
    let got = a.json();
    let cli = lib.json_lines(&[
        "classify",
        "--json",
        "--model",
        "resnet18-random",
        file.to_str().unwrap(),
    ]);
    let want = &cli[0];
    assert_eq!(got["file"], "squirrel_cls.jpg");
    assert_eq!(got["model"], want["model"]);
    assert_eq!(got["results"].as_array().unwrap().len(), 3);
    assert_eq!(
        got["results"], want["results"],
        "same classes and probabilities as the CLI"
    );
    // Larger than the small bodies other routes take: the upload limit applies here.
    let noise = image::RgbImage::from_fn(700, 500, |x, y| {
        let v = x
            .wrapping_mul(2_654_435_761)
            .wrapping_add(y.wrapping_mul(40_503));
        image::Rgb([(v >> 3) as u8, (v >> 11) as u8, (v >> 19) as u8])
    });
    let mut png = Vec::new();
    noise
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    assert!(png.len() > 256 * 1024, "{}", png.len());
    let a = s.upload("noise.png", &png, &[]);
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["results"].as_array().unwrap().len(), 3);

    let keys: Vec<_> = got.as_object().unwrap().keys().cloned().collect();
    let want_keys: Vec<_> = want.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys, want_keys,
        "the same JSON shape as `phototag classify --json`"
    );
}

/// A PNG whose header claims `w`×`h` pixels, with no pixel data.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let crc = crc32(&ihdr);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc.to_be_bytes());
    // A little compressed data: the decoder reads up to the first IDAT before it knows the size.
    let idat = b"IDAT\x78\x9c\xed\xc1\x01\x0d\x00\x00\x00";
    png.extend_from_slice(&((idat.len() - 4) as u32).to_be_bytes());
    png.extend_from_slice(idat);
    png.extend_from_slice(&crc32(idat).to_be_bytes());
    png.extend_from_slice(&[0, 0, 0, 0]);
    png.extend_from_slice(b"IEND");
    png.extend_from_slice(&0xAE42_6082u32.to_be_bytes());
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn bad_uploads_get_4xx_with_a_json_error() {
    let (_, s) = shared();
    let check = |name: &str, bytes: &[u8], status: u16, words: &str| {
        let a = s.upload(name, bytes, &[]);
        assert_eq!(a.status, status, "{name}: {}", a.text());
        let e = a.json();
        let msg = e["error"].as_str().unwrap_or_else(|| panic!("{name}: {e}"));
        assert!(msg.contains(words), "{name}: {msg}");
        assert_eq!(e["file"], name, "{e}");
    };
    check(
        "notes.txt",
        b"just some text, not a photo\n",
        415,
        "not a supported image",
    );
    let png = std::fs::read(fixtures().join("../hopper.png")).unwrap();
    check("cut.png", &png[..2000], 422, "corrupt or truncated");
    let jpeg = std::fs::read(fixtures().join("orange.jpg")).unwrap();
    // A decompression bomb: the header says 60000x60000; refused before decoding.
    let started = Instant::now();
    check("bomb.png", &png_header(60_000, 60_000), 413, "max_");
    assert!(started.elapsed() < Duration::from_secs(10));

    let empty = s.upload("empty.jpg", b"", &[]);
    assert_eq!(empty.status, 400, "{}", empty.text());
    assert!(empty.json()["error"].is_string());
    // No `file` field.
    let body = b"--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n";
    let a = s.request(
        "POST",
        "/api/classify",
        &[("Content-Type", "multipart/form-data; boundary=b")],
        body,
    );
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(a.json()["error"].as_str().unwrap().contains("`file`"));
    // Not multipart at all.
    let a = s.request(
        "POST",
        "/api/classify",
        &[("Content-Type", "image/jpeg")],
        &jpeg,
    );
    assert!((400..500).contains(&a.status), "{}", a.status);
    assert!(a.json()["error"].is_string());
    // GET is not how to classify.
    assert_eq!(s.get("/api/classify").status, 405);
}

#[test]
fn an_upload_over_the_limit_is_413() {
    let lib = Library::new();
    let s = lib.serve("[serve]\nmax_upload_bytes = 55000\n", &[], "127.0.0.1:0");
    s.wait_for_model();
    let small = std::fs::read(fixtures().join("orange.jpg")).unwrap(); // 50,036 bytes
    assert_eq!(s.upload("orange.jpg", &small, &[]).status, 200);
    let big = std::fs::read(fixtures().join("squirrel_cls.jpg")).unwrap(); // 62,311 bytes
    let a = s.upload("squirrel_cls.jpg", &big, &[]);
    assert_eq!(a.status, 413, "{}", a.text());
    assert!(a.json()["error"].as_str().unwrap().contains("55000"));
    // Far over: refused from the Content-Length, without reading it all.
    let huge = vec![0u8; 4 << 20];
    let a = s.upload("huge.jpg", &huge, &[]);
    assert_eq!(a.status, 413, "{}", a.text());
}

#[test]
fn search_labels_and_photo_info() {
    let (lib, s) = shared();
    let hash = orange_hash();
    let info = s.get(&format!("/api/photos/{hash}"));
    assert_eq!(info.status, 200, "{}", info.text());
    let info = info.json();
    let orange = lib.root.join("orange.jpg");
    let show = &lib.json_lines(&["show", "--json", orange.to_str().unwrap()])[0];
    assert_eq!(info["hash"], hash);
    assert_eq!(info["tags"], show["tags"]);
    assert_eq!(
        (&info["width"], &info["height"]),
        (&show["width"], &show["height"])
    );
    assert_eq!(
        info["paths"].as_array().unwrap().len(),
        2,
        "both copies: {info}"
    );
    assert_eq!(info["thumb"], format!("/thumb/{hash}"));
    assert_eq!(info["photo"], format!("/photo/{hash}"));

    // Search for the orange's top label: the web answers what the CLI answers.
    let label = info["tags"][0]["class"].as_str().unwrap().to_string();
    let q = format!("\"{label}\"");
    let url = format!("/api/search?q={}", urlencode(&q));
    let r = s.get(&url);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = r.json();
    let cli = lib.json_lines(&["search", "--json", &q]);
    let web: Vec<_> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["path"].clone())
        .collect();
    let want: Vec<_> = cli.iter().map(|h| h["path"].clone()).collect();
    assert_eq!(web, want);
    assert_eq!(r["count"], want.len());
    let hit = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hash"] == hash)
        .expect("the orange is found");
    assert_eq!(hit["thumb"], format!("/thumb/{hash}"));
    assert_eq!(hit["tags"], show["tags"]);

    let bad = s.get("/api/search?q=dog%20AND%20(");
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"]
            .as_str()
            .unwrap()
            .contains("syntax error"),
        "{}",
        bad.text()
    );
    assert_eq!(s.get("/api/search").status, 400);
    let bad_limit = s.get("/api/search?q=dog&limit=many");
    assert_eq!(bad_limit.status, 400);
    assert!(bad_limit.json()["error"].is_string());
    let typo = s.get("/api/search?q=dgo").json();
    assert_eq!(typo["count"], 0);
    assert_eq!(typo["unknown"][0]["term"], "dgo");
    assert!(
        !typo["unknown"][0]["suggestions"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{typo}"
    );

    let labels = s.get("/api/labels").json();
    let l = labels["labels"].as_array().unwrap();
    let top: u64 = l.iter().map(|x| x["images"].as_u64().unwrap()).sum();
    assert_eq!(
        top, 2,
        "two distinct images, one first-ranked label each: {labels}"
    );
    assert!(l.iter().any(|x| x["label"] == label.as_str()));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn thumbnails_are_small_cached_jpegs() {
    let (lib, s) = shared();
    let hash = orange_hash();
    let a = s.get(&format!("/thumb/{hash}"));
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-type"), Some("image/jpeg"));
    let t = image::load_from_memory_with_format(&a.body, image::ImageFormat::Jpeg).unwrap();
    assert!(
        t.width().max(t.height()) <= 320,
        "{}x{}",
        t.width(),
        t.height()
    );
    let cached = lib
        .cache
        .join("thumbs/320")
        .join(&hash[..2])
        .join(format!("{hash}.jpg"));
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        a.body,
        "cached under the cache dir"
    );
    let again = s.get(&format!("/thumb/{hash}"));
    assert_eq!(again.body, a.body);
    let large = s.get(&format!("/thumb/{hash}?size=large"));
    assert_eq!(large.status, 200);
    let l = image::load_from_memory(&large.body).unwrap();
    assert!(l.width().max(l.height()) <= 1280 && l.width() >= t.width());
    assert_eq!(s.get(&format!("/thumb/{hash}?size=../../x")).status, 400);
}

#[test]
fn originals_come_only_from_the_catalog() {
    let (lib, s) = shared();
    let hash = orange_hash();
    let a = s.get(&format!("/photo/{hash}"));
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("image/jpeg"));
    assert_eq!(a.body, std::fs::read(lib.root.join("orange.jpg")).unwrap());

    let passwd = std::fs::read("/etc/passwd").unwrap_or_default();
    let passwd_hash = blake3::hash(&passwd).to_hex().to_string();
    let attempts = [
        "/photo/../../etc/passwd".to_string(),
        "/photo/..%2F..%2F..%2Fetc%2Fpasswd".into(),
        "/photo/%2e%2e/%2e%2e/etc/passwd".into(),
        "/photo//etc/passwd".into(),
        "/photo/%2Fetc%2Fpasswd".into(),
        "/thumb/..%2f..%2fetc%2fpasswd".into(),
        "/api/photos/..%2F..%2Fetc%2Fpasswd".into(),
        format!("/photo/{hash}/../../../../etc/passwd"),
        format!("/photo/{passwd_hash}"),
        format!("/thumb/{passwd_hash}"),
        format!("/api/photos/{passwd_hash}"),
        format!("/photo/{}", "0".repeat(64)),
        "/../../etc/passwd".into(),
        "/style.css/../../etc/passwd".into(),
    ];
    for path in &attempts {
        let a = s.get(path);
        assert!(a.status == 404 || a.status == 400, "{path}: {}", a.status);
        assert!(!a.text().contains("root:"), "{path} leaked a file");
        assert_ne!(a.header("content-type"), Some("image/jpeg"), "{path}");
    }
}

#[test]
fn a_changed_or_deleted_copy_is_skipped() {
    let lib = Library::new();
    let s = lib.serve("", &[], "127.0.0.1:0");
    let hash = orange_hash();
    let original = std::fs::read(lib.root.join("orange.jpg")).unwrap();
    std::fs::remove_file(lib.root.join("orange.jpg")).unwrap();
    let a = s.get(&format!("/photo/{hash}"));
    assert_eq!(a.status, 200, "served from the remaining copy");
    assert_eq!(a.body, original);
    // The last copy now holds other bytes: nothing is served.
    std::fs::write(lib.root.join("z orange copy.jpg"), b"something else").unwrap();
    for path in [format!("/photo/{hash}"), format!("/thumb/{hash}")] {
        let a = s.get(&path);
        assert_eq!(a.status, 404, "{path}: {}", a.text());
        assert!(a.json()["error"]
            .as_str()
            .unwrap()
            .contains("no file holds"));
    }
}

#[test]
fn listening_beyond_loopback_needs_a_token() {
    let lib = Library::new();
    let out = lib.phototag(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without an access token"), "{err}");

    let s = lib.serve("", &[("PHOTOTAG_SERVE_TOKEN", "open sesame")], "0.0.0.0:0");
    check_token(&s, "open sesame");
}

#[test]
fn a_configured_token_is_required_on_loopback_too() {
    let lib = Library::new();
    let s = lib.serve("[serve]\ntoken = \"t0ken\"\n", &[], "127.0.0.1:0");
    check_token(&s, "t0ken");
}

fn check_token(s: &Server, token: &str) {
    let hash = orange_hash();
    let data = [
        "/api/search?q=fruit".to_string(),
        "/api/labels".into(),
        format!("/api/photos/{hash}"),
        format!("/thumb/{hash}"),
        format!("/photo/{hash}"),
    ];
    let bearer = format!("Bearer {token}");
    for path in &data {
        let a = s.get(path);
        assert_eq!(a.status, 401, "{path} without a token");
        assert!(a.json()["error"].as_str().unwrap().contains("token"));
        let wrong = s.get_with(path, &[("Authorization", "Bearer nope")]);
        assert_eq!(wrong.status, 401, "{path} with a wrong token");
        let ok = s.get_with(path, &[("Authorization", &bearer)]);
        assert_eq!(ok.status, 200, "{path} with the token: {}", ok.text());
    }
    let jpeg = std::fs::read(fixtures().join("orange.jpg")).unwrap();
    assert_eq!(s.upload("orange.jpg", &jpeg, &[]).status, 401);
    // The page itself holds no data and loads without the token, to show the login.
    assert_eq!(s.get("/").status, 200);
    let session = s.get("/api/session").json();
    assert_eq!(
        (
            session["token_required"].as_bool(),
            session["authorized"].as_bool()
        ),
        (Some(true), Some(false))
    );

    let login = |t: &str| {
        let body = serde_json::json!({ "token": t }).to_string();
        s.request(
            "POST",
            "/api/login",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    };
    assert_eq!(login("nope").status, 401);
    let ok = login(token);
    assert_eq!(ok.status, 204, "{}", ok.text());
    let set = ok.header("set-cookie").unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains(token), "the cookie is not the token");
    let cookie = set.split(';').next().unwrap().to_string();
    let a = s.get_with(&format!("/photo/{hash}"), &[("Cookie", &cookie)]);
    assert_eq!(a.status, 200);
    assert_eq!(a.body, jpeg);
    let session = s.get_with("/api/session", &[("Cookie", &cookie)]).json();
    assert_eq!(session["authorized"], true);
}

#[test]
fn photos_indexed_while_it_runs_show_up() {
    let lib = Library::new();
    let s = lib.serve("", &[], "127.0.0.1:0");
    let hopper = fixtures().join("../hopper.jpg");
    let hash = blake3::hash(&std::fs::read(&hopper).unwrap())
        .to_hex()
        .to_string();
    assert_eq!(s.get(&format!("/api/photos/{hash}")).status, 404);
    std::fs::copy(&hopper, lib.root.join("hopper.jpg")).unwrap();
    let out = lib.phototag(&[
        "index",
        "--model",
        "resnet18-random",
        lib.root.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let a = s.get(&format!("/api/photos/{hash}"));
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(s.get(&format!("/thumb/{hash}")).status, 200);
}

#[test]
fn near_copies_are_computed_again_once_the_catalog_changes() {
    let lib = Library::new();
    let server = lib.serve("", &[], "127.0.0.1:0");
    let paths = |v: &serde_json::Value| -> Vec<String> {
        let mut p: Vec<String> = v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["members"].as_array().unwrap().clone())
            .flat_map(|m| m["paths"].as_array().unwrap().clone())
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        p.sort();
        p
    };
    let first = server.get("/api/dupes").json();
    let before = paths(&first);
    // The orange and its copy (with random weights, the squirrel may join them).
    assert!(before.len() >= 2, "{first}");
    assert_eq!(
        server.get("/api/dupes").json(),
        first,
        "the same answer again"
    );

    let another = lib.root.join("another orange.jpg");
    std::fs::copy(fixtures().join("orange.jpg"), &another).unwrap();
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
    let after = paths(&server.get("/api/dupes").json());
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    assert!(
        after.contains(&another.to_str().unwrap().to_string()),
        "{after:?}"
    );
}
