//! Test catalogs and record builders: the places a test catalog lives in (a SQLite file,
//! and a database on the PostgreSQL test server: [`places`]), the catalogs the unit tests
//! of `query` and `lists` share, and the `NewImage`/`NewTag`/`NewFile` builders the
//! integration tests use too (`tests/it`, through the `test-fixtures` feature).

use std::path::{Path, PathBuf};

use super::test_server;
use super::{Catalog, Hash, Location, NewFile, NewImage, NewTag};
use crate::search::{ClassSet, Compiled, Condition, Node};

/// Where a test catalog lives, removed when dropped: a SQLite file in a temporary folder,
/// or a fresh database on the PostgreSQL test server.
pub struct Place {
    pub location: Location,
    /// The temporary folder (SQLite) or the database (PostgreSQL).
    keep: Keep,
}

enum Keep {
    Dir(tempfile::TempDir),
    Db(test_server::Db<'static>),
}

impl Place {
    /// A SQLite catalog file `catalog.db` in a new temporary folder.
    pub fn sqlite() -> Place {
        let dir = tempfile::tempdir().unwrap();
        Place {
            location: Location::Sqlite(dir.path().join("catalog.db")),
            keep: Keep::Dir(dir),
        }
    }

    /// A fresh database on the PostgreSQL test server, or `None` after printing
    /// `SKIPPED <test> (PostgreSQL): <why>`.
    pub fn postgres(test: &str) -> Option<Place> {
        let db = test_server::database(&format!("{test} (PostgreSQL)"))?;
        Some(Place {
            location: Location::Postgres(super::PgTarget::new(&db.url)),
            keep: Keep::Db(db),
        })
    }

    /// The backend, for messages.
    pub fn name(&self) -> &'static str {
        match self.location {
            Location::Sqlite(_) => "SQLite",
            Location::Postgres(_) => "PostgreSQL",
        }
    }

    /// The temporary folder of a SQLite place (for files beside the catalog).
    pub fn dir(&self) -> Option<&Path> {
        match &self.keep {
            Keep::Dir(d) => Some(d.path()),
            Keep::Db(_) => None,
        }
    }

    /// The database of a PostgreSQL place.
    pub fn db(&self) -> Option<&test_server::Db<'static>> {
        match &self.keep {
            Keep::Db(db) => Some(db),
            Keep::Dir(_) => None,
        }
    }
}

/// Both backends for a test, SQLite first: the behaviour tests run on each and must give
/// the same results. The PostgreSQL one is left out (and the test says so) when no test
/// server can be had.
pub fn places(test: &str) -> Vec<Place> {
    let mut out = vec![Place::sqlite()];
    out.extend(Place::postgres(test));
    out
}

/// A test image: its name (hashed), tags (class, probability) and paths.
type Image<'a> = (&'a str, &'a [(usize, f32)], &'a [&'a str]);

/// Three images: a (class 1 at 0.9, class 2 at 0.1), b (class 2 at 0.6, class 3 at 0.3)
/// and c (class 3 at 0.8); a has two paths. Files' mtimes are 1, 2, 3, 4 s.
pub fn three_images(at: impl Into<Location>) -> Catalog {
    let mut cat = Catalog::open(at).unwrap();
    let model = cat.register_model("m", "00", "resnet18").unwrap();
    let mut w = cat.begin().unwrap();
    let root = w.root_id(Path::new("/p")).unwrap();
    let images: [Image; 3] = [
        ("a", &[(1, 0.9), (2, 0.1)], &["/p/x/a1.jpg", "/p/y/a2.jpg"]),
        ("b", &[(2, 0.6), (3, 0.3)], &["/p/x/b.jpg"]),
        ("c", &[(3, 0.8)], &["/p/y/c.jpg"]),
    ];
    let mut t = 0;
    for (name, tags, paths) in images {
        let hash = crate::catalog::hash_bytes(name.as_bytes());
        w.put_image(&image(hash, model, tags)).unwrap();
        for p in paths {
            t += 1;
            w.put_file(&file(p, root, hash, 10, t * 1_000_000_000))
                .unwrap();
        }
    }
    w.commit().unwrap();
    cat
}

/// An image of `model` (a 1×1 PNG) with these tags, (class, probability) by rank, each
/// labelled `class{c}`.
pub fn image(hash: Hash, model: i64, tags: &[(usize, f32)]) -> NewImage {
    let labelled: Vec<(usize, String, f32)> = tags
        .iter()
        .map(|&(c, p)| (c, format!("class{c}"), p))
        .collect();
    image_tagged(hash, model, ranked(&labelled))
}

/// An image of `model` (a 1×1 PNG, classified at a fixed time) with these tags.
pub fn image_tagged(hash: Hash, model: i64, tags: Vec<NewTag>) -> NewImage {
    NewImage {
        hash,
        width: 1,
        height: 1,
        format: "png".into(),
        model_id: model,
        classified_at: 1_700_000_000,
        tags,
        embedding: None,
    }
}

/// Tags by rank (first = rank 1) from (class, label, probability).
pub fn ranked<L: AsRef<str>>(tags: &[(usize, L, f32)]) -> Vec<NewTag> {
    tags.iter()
        .enumerate()
        .map(|(i, (c, label, p))| NewTag {
            rank: i as u32 + 1,
            class_index: *c,
            label: label.as_ref().to_string(),
            probability: *p,
        })
        .collect()
}

/// Tags by rank from (class, probability), labelled with their ImageNet names.
pub fn named(tags: &[(usize, f32)]) -> Vec<NewTag> {
    let labelled: Vec<(usize, &str, f32)> = tags
        .iter()
        .map(|&(c, p)| (c, crate::labels::class(c).map_or("?", |l| l.name), p))
        .collect();
    ranked(&labelled)
}

/// A file row of a content, never seen by a scan.
pub fn file(path: &str, root_id: i64, hash: Hash, size: u64, mtime_ns: i64) -> NewFile {
    NewFile {
        path: path.into(),
        root_id,
        hash,
        size,
        mtime_ns,
        seen: 0,
    }
}

/// A small deterministic generator.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// 300 images with 3 of 12 classes each, probabilities in steps of 0.05 (many ties),
/// one file each under /r/{a,b,c} and a second for every seventh; mtimes 0..4 ns.
pub fn random(at: impl Into<Location>) -> Catalog {
    let mut cat = Catalog::open(at).unwrap();
    let model = cat.register_model("m", "00", "resnet18").unwrap();
    let mut rng = Lcg(7);
    let mut w = cat.begin().unwrap();
    let root = w.root_id(Path::new("/r")).unwrap();
    for i in 0..300u32 {
        let hash = crate::catalog::hash_bytes(&i.to_le_bytes());
        let mut classes: Vec<usize> = Vec::new();
        while classes.len() < 3 {
            let c = rng.below(12) as usize;
            if !classes.contains(&c) {
                classes.push(c);
            }
        }
        let tags: Vec<(usize, f32)> = classes
            .iter()
            .map(|&c| (c, rng.below(20) as f32 * 0.05))
            .collect();
        w.put_image(&image(hash, model, &tags)).unwrap();
        let copies = if i % 7 == 0 { 2 } else { 1 };
        for k in 0..copies {
            let path = format!("/r/{}/{i}-{k}.jpg", ["a", "b", "c"][rng.below(3) as usize]);
            w.put_file(&file(&path, root, hash, 1, rng.below(4) as i64))
                .unwrap();
        }
    }
    w.commit().unwrap();
    cat
}

/// Queries over [`random`]'s classes: a union, OR, AND NOT, nesting, a lone NOT.
pub fn queries() -> Vec<Compiled> {
    let cond = |classes: &[usize], min: f32| Condition {
        classes: ClassSet::from_indexes(classes.iter().copied()),
        min_prob: min,
    };
    let (c0, c1, c2) = (|| Node::Cond(0), || Node::Cond(1), || Node::Cond(2));
    vec![
        Compiled::new(c0(), vec![cond(&[1, 2], 0.0)]),
        Compiled::new(
            Node::Or(vec![c0(), c1()]),
            vec![cond(&[3], 0.3), cond(&[4, 5], 0.0)],
        ),
        Compiled::new(
            Node::And(vec![c0(), Node::Not(Box::new(c1()))]),
            vec![cond(&[1, 2, 3, 4, 5, 6], 0.1), cond(&[7, 8], 0.0)],
        ),
        Compiled::new(
            Node::Or(vec![Node::And(vec![c0(), c1()]), c2()]),
            vec![cond(&[0, 1, 2], 0.0), cond(&[3, 4], 0.0), cond(&[11], 0.6)],
        ),
        Compiled::new(Node::Not(Box::new(c0())), vec![cond(&[0, 1, 2, 3], 0.0)]),
    ]
}

/// The path and date filters the strategy tests combine with each query.
pub fn filters() -> Vec<(Vec<PathBuf>, Option<std::ops::Range<i64>>)> {
    vec![(vec![], None), (vec![PathBuf::from("/r/a")], Some(1..3))]
}
