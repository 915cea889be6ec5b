//! `dupes --near`: groups of exact and near copies from the stored embeddings. Each
//! model's embeddings (those under a folder, when asked) are read into memory (~1.3 KB an
//! image), near pairs are found by `vectors::near` (hashing, then exact checks), groups form
//! around the photo with the most pixels, and contents with several paths (exact copies)
//! that have no near copy form a group of their own.
//!
//! May not: write to the catalog, or compare embeddings of two models.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::catalog::{hex, Catalog, CatalogError, EmbeddingCounts, EmbeddingScan, Hash};
use crate::vectors::near::{group, similar_pairs, Plan, Vectors};

/// One photo of a group: its content, its files, its similarity to the group's first.
#[derive(Debug, Clone, PartialEq)]
pub struct NearMember {
    pub hash: Hash,
    pub paths: Vec<PathBuf>,
    pub similarity: f32,
    pub width: u32,
    pub height: u32,
}

/// Photos that look the same, the one with the most pixels first.
#[derive(Debug, Clone, PartialEq)]
pub struct NearGroup {
    pub members: Vec<NearMember>,
}

impl NearGroup {
    /// `{"members": [{"hash", "paths", "similarity"}, ...]}`, the best-quality first.
    pub fn to_json(&self) -> Value {
        let members: Vec<Value> = self
            .members
            .iter()
            .map(|m| {
                json!({
                    "hash": hex(&m.hash),
                    "paths": m.paths.iter().map(|p| p.to_string_lossy()).collect::<Vec<_>>(),
                    "similarity": round4(m.similarity),
                    "width": m.width,
                    "height": m.height,
                })
            })
            .collect();
        json!({ "members": members })
    }

    /// Files beyond one per group: what could go.
    pub fn extra_files(&self) -> usize {
        self.members.iter().map(|m| m.paths.len()).sum::<usize>() - 1
    }
}

/// A similarity with four decimals, as JSON shows it.
pub fn round4(s: f32) -> f64 {
    (f64::from(s) * 10_000.0).round() / 10_000.0
}

/// What `dupes --near` found and what it compared.
#[derive(Debug, Clone, Default)]
pub struct NearReport {
    pub groups: Vec<NearGroup>,
    /// Images with an embedding that were compared.
    pub compared: u64,
    /// The hashing set-up and its counts, per model.
    pub plans: Vec<(String, Plan)>,
    pub counts: EmbeddingCounts,
}

/// Groups of exact and near copies (similarity at least `threshold`) among the images with
/// a file under `under` (all when None), ordered by their first path.
pub fn near_duplicates(
    catalog: &Catalog,
    threshold: f32,
    under: Option<&Path>,
) -> Result<NearReport, CatalogError> {
    let counts = catalog.embedding_counts()?;
    let under_list: Vec<PathBuf> = under.map(Path::to_path_buf).into_iter().collect();
    let mut report = NearReport {
        counts: counts.clone(),
        ..Default::default()
    };
    let mut grouped: HashSet<Hash> = HashSet::new();
    for (model_id, name, _) in &counts.by_model {
        let mut vectors: Option<Vectors> = None;
        let mut hashes: Vec<Hash> = Vec::new();
        let scan = EmbeddingScan {
            model_id: Some(*model_id),
            under: under_list.clone(),
            ids: None,
        };
        catalog.scan_embeddings(&scan, |hash, _, e| {
            let v = vectors.get_or_insert_with(|| Vectors::new(e.values.len()));
            if let Ok(h) = Hash::try_from(hash) {
                if v.push(e) {
                    hashes.push(h);
                }
            }
        })?;
        let Some(vectors) = vectors else { continue };
        report.compared += vectors.len() as u64;
        let (pairs, plan) = similar_pairs(&vectors, threshold);
        report.plans.push((name.clone(), plan));
        let mut sizes: HashMap<usize, (u32, u32)> = HashMap::new();
        for &(a, b, _) in &pairs {
            for i in [a as usize, b as usize] {
                if let std::collections::hash_map::Entry::Vacant(slot) = sizes.entry(i) {
                    let size = catalog
                        .image(&hashes[i])?
                        .map_or((0, 0), |img| (img.width, img.height));
                    slot.insert(size);
                }
            }
        }
        let pixels = |i: usize| {
            sizes
                .get(&i)
                .map_or(0, |&(w, h)| u64::from(w) * u64::from(h))
        };
        for g in group(vectors.len(), &pairs, pixels) {
            let mut members = Vec::with_capacity(g.members.len());
            for (i, similarity) in g.members {
                let (width, height) = sizes.get(&i).copied().unwrap_or((0, 0));
                grouped.insert(hashes[i]);
                members.push(NearMember {
                    hash: hashes[i],
                    paths: paths_under(catalog, &hashes[i], under)?,
                    similarity,
                    width,
                    height,
                });
            }
            report.groups.push(NearGroup { members });
        }
    }
    // Exact copies with no near copy: a group of one content and its paths.
    for d in catalog.duplicates(under)? {
        if grouped.contains(&d.hash) {
            continue;
        }
        let (width, height) = catalog
            .image(&d.hash)?
            .map_or((0, 0), |img| (img.width, img.height));
        report.groups.push(NearGroup {
            members: vec![NearMember {
                hash: d.hash,
                paths: d.paths,
                similarity: 1.0,
                width,
                height,
            }],
        });
    }
    report
        .groups
        .retain(|g| g.members.iter().all(|m| !m.paths.is_empty()));
    report.groups.sort_by(|a, b| {
        let first = |g: &NearGroup| g.members[0].paths[0].clone();
        first(a).cmp(&first(b))
    });
    Ok(report)
}

/// The paths of a content, only those under `under` when given.
fn paths_under(
    catalog: &Catalog,
    hash: &Hash,
    under: Option<&Path>,
) -> Result<Vec<PathBuf>, CatalogError> {
    Ok(catalog
        .files_with(hash)?
        .into_iter()
        .map(|f| f.path)
        .filter(|p| under.is_none_or(|u| p.starts_with(u) && p != u))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fixtures::{file, image};
    use crate::catalog::NewImage;
    use crate::vectors::Embedding;

    fn img(h: u8, m: i64, v: [f32; 3], pixels: u32) -> NewImage {
        NewImage {
            width: pixels,
            height: 1,
            embedding: Embedding::quantize(&v),
            ..image([h; 32], m, &[(1, 0.5)])
        }
    }

    #[test]
    fn groups_of_near_and_exact_copies_best_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = Catalog::open(dir.path().join("c.db")).unwrap();
        let m = cat
            .register_model("m", &"1".repeat(64), "resnet18")
            .unwrap();
        let mut w = cat.begin().unwrap();
        let root = w.root_id(Path::new("/p")).unwrap();
        let rows = [
            (1, [1.0, 0.0, 0.0], 10, &["/p/a/1.jpg"][..]),
            (2, [1.0, 0.05, 0.0], 40, &["/p/a/2.jpg", "/p/b/2.jpg"]),
            (3, [0.0, 1.0, 0.0], 10, &["/p/a/3.jpg"]),
            (4, [0.0, 0.0, 1.0], 10, &["/p/b/4.jpg", "/p/b/4copy.jpg"]),
        ];
        for (h, v, px, paths) in rows {
            w.put_image(&img(h, m, v, px)).unwrap();
            for p in paths {
                w.put_file(&file(p, root, [h; 32], 1, 1)).unwrap();
            }
        }
        w.commit().unwrap();
        let r = near_duplicates(&cat, 0.95, None).unwrap();
        assert_eq!(r.compared, 4);
        assert_eq!(r.groups.len(), 2, "{:?}", r.groups);
        let near = &r.groups[0];
        assert_eq!(near.members[0].hash, [2; 32], "the most pixels first");
        assert_eq!(near.members[0].similarity, 1.0);
        assert_eq!(near.members[1].hash, [1; 32]);
        assert!(near.members[1].similarity > 0.99 && near.members[1].similarity < 1.0);
        assert_eq!(near.extra_files(), 2);
        let exact = &r.groups[1];
        assert_eq!(exact.members.len(), 1);
        assert_eq!(exact.members[0].paths.len(), 2);
        let j = near.to_json();
        assert_eq!(j["members"][0]["paths"].as_array().unwrap().len(), 2);
        assert_eq!(j["members"][0]["similarity"], 1.0);

        let under = near_duplicates(&cat, 0.95, Some(Path::new("/p/a"))).unwrap();
        assert_eq!(under.groups.len(), 1);
        assert_eq!(
            under.groups[0].members[0].paths,
            [PathBuf::from("/p/a/2.jpg")]
        );
        assert!(near_duplicates(&cat, 0.95, Some(Path::new("/p/c")))
            .unwrap()
            .groups
            .is_empty());
    }
}
