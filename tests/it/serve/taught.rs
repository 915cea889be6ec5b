//! Tags taught by example through the web API: teach from content hashes, the tag's page
//! (the same best and borderline matches as `phototag teach --show`), a one-click
//! correction that changes the matches, the refusals as 4xx JSON with a reason (nothing
//! written), and writes refused without the token or from another site's page.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::common;
use crate::web::{fixtures, Library, Server};

/// Changes for the variants (scale num/den, crop %, light, JPEG quality), as in `teach`.
const CHANGES: [(u32, u32, u32, i32, u8); 3] =
    [(1, 2, 100, 0, 80), (2, 3, 95, 5, 85), (3, 4, 100, -8, 90)];

/// The web library (orange, its copy, squirrel) with three variants each of the orange,
/// the squirrel and hopper.
fn library() -> Library {
    let mut extra = Vec::new();
    for (name, src) in [
        ("orange", fixtures().join("orange.jpg")),
        ("squirrel", fixtures().join("squirrel_cls.jpg")),
        ("hopper", common::fixture("hopper.jpg")),
    ] {
        for (i, &(n, d, c, l, q)) in CHANGES.iter().enumerate() {
            extra.push((
                format!("{name} v{i}.jpg"),
                common::variant(&src, n, d, c, l, q),
            ));
        }
    }
    let extra: Vec<(&str, Vec<u8>)> = extra.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    Library::with(&extra)
}

fn hash_of(lib: &Library, name: &str) -> String {
    blake3::hash(&std::fs::read(lib.root.join(name)).unwrap())
        .to_hex()
        .to_string()
}

fn post(s: &Server, path: &str, body: &Value, headers: &[(&str, &str)]) -> crate::web::Answer {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    s.request("POST", path, &h, body.to_string().as_bytes())
}

fn hashes(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| r["hash"].as_str().unwrap().to_string())
        .collect()
}

/// The contents `/api/search?q=QUERY` finds.
fn search(s: &Server, q: &str) -> HashSet<String> {
    let a = s.get(&format!("/api/search?q={q}&limit=1000"));
    assert_eq!(a.status, 200, "{}", a.text());
    hashes(&a.json()["results"]).into_iter().collect()
}

/// Taught from two orange photos against two squirrels; the page shows what `teach --show`
/// shows; a ✓ or ✗ on a borderline photo makes it an example, refits, and changes what
/// has the tag; a ✗ on a yes example turns it around.
#[test]
fn teach_show_and_correct_through_the_api() {
    let lib = library();
    let s = lib.serve("", &[], "127.0.0.1:0");
    assert_eq!(s.get("/api/taught").json()["tags"], json!([]));

    let (orange, orange1) = (hash_of(&lib, "orange.jpg"), hash_of(&lib, "orange v1.jpg"));
    let (squirrel, squirrel1) = (
        hash_of(&lib, "squirrel_cls.jpg"),
        hash_of(&lib, "squirrel v1.jpg"),
    );
    let a = post(
        &s,
        "/api/taught",
        &json!({"name": "tangerine", "yes": [orange, orange1], "no": [squirrel, squirrel1]}),
        &[],
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let taught = a.json();
    assert_eq!(taught["name"], "tangerine");
    assert_eq!(
        (taught["yes"].as_u64(), taught["no"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(taught["created"], true);
    assert!(
        taught["folds"].as_u64() >= Some(2),
        "cross-validated: {taught}"
    );
    let matches = taught["matches"].as_u64().unwrap();
    assert!(matches >= 2, "the yes examples have it: {taught}");
    assert!(taught["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("only 2 yes")));

    let list = s.get("/api/taught").json();
    assert_eq!(list["tags"].as_array().unwrap().len(), 1);
    assert_eq!(list["tags"][0]["name"], "tangerine");
    assert_eq!(list["tags"][0]["matches"].as_u64(), Some(matches));

    // The page: the CLI's best and borderline, examples, figures, links.
    let page = s.get("/api/taught/Tangerine?limit=5").json();
    let cli = lib.json_lines(&["teach", "--show", "tangerine", "--json", "--limit", "5"]);
    let cli = &cli[0];
    for key in ["best", "borderline", "examples"] {
        assert_eq!(hashes(&page[key]), hashes(&cli[key]), "{key}: {page}");
    }
    for key in [
        "matches",
        "scored",
        "threshold",
        "yes",
        "no",
        "precision",
        "recall",
    ] {
        assert_eq!(page[key], cli[key], "{key}");
    }
    assert_eq!(page["matches"].as_u64(), Some(matches));
    assert!(hashes(&page["best"]).contains(&orange));
    assert!(page["best"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["tagged"] == true && m["thumb"].as_str().unwrap().starts_with("/thumb/")));
    let examples: HashSet<String> = hashes(&page["examples"]).into_iter().collect();
    assert_eq!(examples.len(), 4);
    let border = page["borderline"].as_array().unwrap().clone();
    assert!(!border.is_empty());
    assert!(border
        .iter()
        .all(|m| m["example"].is_null() && !examples.contains(m["hash"].as_str().unwrap())));
    // The search finds what the page counts.
    let found = search(&s, "tangerine");
    assert_eq!(found.len() as u64, matches, "{found:?}");

    // One click: the first borderline photo judged the other way round from its tag.
    let b = &border[0];
    let h = b["hash"].as_str().unwrap().to_string();
    let was = b["tagged"].as_bool().unwrap();
    let a = post(
        &s,
        "/api/taught/tangerine/examples",
        &json!({"hash": h, "yes": !was}),
        &[],
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let fixed = a.json();
    assert_eq!(fixed["created"], false);
    assert_eq!(fixed["corrected"], 0, "a new example, not a turned one");
    assert_eq!(
        fixed["yes"].as_u64().unwrap() + fixed["no"].as_u64().unwrap(),
        5
    );
    let after = search(&s, "tangerine");
    assert_eq!(after.contains(&h), !was, "the correction holds: {after:?}");
    assert_ne!(after, found, "the matches changed");
    let page = s.get("/api/taught/tangerine").json();
    let e = page["examples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["hash"] == h.as_str())
        .expect("now an example");
    assert_eq!(e["yes"], !was);
    assert!(!hashes(&page["borderline"]).contains(&h));

    // A ✗ on a yes example turns it around.
    let a = post(
        &s,
        "/api/taught/tangerine/examples",
        &json!({"hash": orange1, "yes": false}),
        &[],
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["corrected"], 1);
    assert!(!search(&s, "tangerine").contains(&orange1));

    // Refined with more examples in one request; then replaced.
    let a = post(
        &s,
        "/api/taught",
        &json!({"name": "tangerine", "yes": [hash_of(&lib, "orange v2.jpg")], "no": [hash_of(&lib, "hopper v0.jpg")]}),
        &[],
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["created"], false);
    assert_eq!(
        a.json()["yes"].as_u64().unwrap() + a.json()["no"].as_u64().unwrap(),
        7
    );
    let a = post(
        &s,
        "/api/taught",
        &json!({"name": "tangerine", "yes": [orange], "no": [squirrel], "replace": true}),
        &[],
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        (a.json()["yes"].as_u64(), a.json()["no"].as_u64()),
        (Some(1), Some(1))
    );
}

/// Every refusal of `teach` is a 4xx JSON answer that says why (`error`) and names it
/// (`reason`); none writes anything.
#[test]
fn refusals_are_4xx_with_the_reason() {
    let lib = Library::new();
    let s = lib.serve("", &[], "127.0.0.1:0");
    let orange = hash_of(&lib, "orange.jpg");
    let squirrel = hash_of(&lib, "squirrel_cls.jpg");
    let cases = [
        (
            json!({"name": "cat", "yes": [orange], "no": [squirrel]}),
            400,
            "name",
            "ImageNet",
        ),
        (
            json!({"name": "a/b", "yes": [orange], "no": [squirrel]}),
            400,
            "name",
            "not a tag name",
        ),
        (
            json!({"name": "rex", "no": [squirrel]}),
            422,
            "no-yes",
            "mark them yes",
        ),
        (
            json!({"name": "rex", "yes": [orange]}),
            422,
            "no-no",
            "not `rex`",
        ),
        (
            json!({"name": "rex", "yes": [orange], "no": [orange]}),
            400,
            "both",
            "both as yes and as no",
        ),
        (
            json!({"name": "rex", "yes": ["nothex"], "no": [squirrel]}),
            400,
            "hash",
            "not a content hash",
        ),
        (
            json!({"name": "rex", "yes": ["ab".repeat(32)], "no": [squirrel]}),
            422,
            "unknown-photo",
            "no photo with this content hash",
        ),
    ];
    for (body, status, reason, words) in cases {
        let a = post(&s, "/api/taught", &body, &[]);
        assert_eq!(a.status, status, "{body}: {}", a.text());
        let v = a.json();
        assert_eq!(v["reason"], reason, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(words), "{body}: {v}");
    }
    let a = post(
        &s,
        "/api/taught/rex/examples",
        &json!({"hash": orange, "yes": true}),
        &[],
    );
    assert_eq!(a.status, 404, "{}", a.text());
    assert_eq!(a.json()["reason"], "no-tag");
    assert_eq!(s.get("/api/taught/rex").status, 404);
    // Not JSON, or fields it does not know: a JSON error too.
    let a = s.request("POST", "/api/taught", &[], b"name=rex");
    assert_eq!(a.status, 415, "{}", a.text());
    assert!(a.json()["error"].is_string());
    let a = post(
        &s,
        "/api/taught",
        &json!({"name": "rex", "yes": [orange], "nope": 1}),
        &[],
    );
    assert_eq!(a.status, 422, "{}", a.text());
    assert!(a.json()["error"].as_str().unwrap().contains("nope"));
    assert_eq!(
        s.get("/api/taught").json()["tags"],
        json!([]),
        "nothing written"
    );
    assert!(taught_list(&lib).is_empty());
}

fn taught_list(lib: &Library) -> Vec<Value> {
    lib.json_lines(&["teach", "--list", "--json"])
}

/// With a token, teaching and corrections need it as every other data route does, and a
/// write from another site's page is refused even with it; nothing refused is written.
#[test]
fn writes_need_the_token_and_this_site() {
    let lib = Library::new();
    let s = lib.serve("[serve]\ntoken = \"t0ken\"\n", &[], "127.0.0.1:0");
    let port = s.addr.rsplit(':').next().unwrap().to_string();
    let body = json!({"name": "tangerine", "yes": [hash_of(&lib, "orange.jpg")], "no": [hash_of(&lib, "squirrel_cls.jpg")]});
    let bearer = [("Authorization", "Bearer t0ken")];
    assert_eq!(s.get("/api/taught").status, 401);
    assert_eq!(post(&s, "/api/taught", &body, &[]).status, 401);
    assert_eq!(
        post(
            &s,
            "/api/taught",
            &body,
            &[("Authorization", "Bearer nope")]
        )
        .status,
        401
    );
    for origin in ["http://evil.example", "null"] {
        let a = post(&s, "/api/taught", &body, &[bearer[0], ("Origin", origin)]);
        assert_eq!(a.status, 403, "{origin}: {}", a.text());
    }
    assert!(taught_list(&lib).is_empty(), "nothing refused was written");
    let own = format!("http://127.0.0.1:{port}");
    let a = post(&s, "/api/taught", &body, &[bearer[0], ("Origin", &own)]);
    assert_eq!(a.status, 200, "{}", a.text());
    let fix = json!({"hash": hash_of(&lib, "squirrel_cls.jpg"), "yes": true});
    assert_eq!(
        post(&s, "/api/taught/tangerine/examples", &fix, &[]).status,
        401
    );
    let a = post(
        &s,
        "/api/taught/tangerine/examples",
        &fix,
        &[bearer[0], ("Origin", "http://evil.example")],
    );
    assert_eq!(a.status, 403);
    assert_eq!(s.get("/api/taught/tangerine").status, 401);
    let page = s.get_with("/api/taught/tangerine", &bearer).json();
    assert_eq!(
        (page["yes"].as_u64(), page["no"].as_u64()),
        (Some(1), Some(1)),
        "{page}"
    );
}
