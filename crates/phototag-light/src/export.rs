//! `phototag export` formats: JSON lines and CSV, written and read back (the round trip
//! is tested). XMP export writes sidecars (see `sidecar`).
//!
//! JSON: one object per file and line: `path`, `hash`, `model`, `tags` (`rank`, `class`,
//! `index`, `probability` in percent with two decimals, as every JSON of phototag).
//! CSV (RFC 4180, with a header): one row per file and tag: `path,hash,model,rank,class,
//! index,probability` (probability in [0, 1], four decimals).
//!
//! Paths that are not UTF-8 are written lossily (U+FFFD), as in other JSON output.
//!
//! May not: read the catalog or write files (callers pass records and a writer).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use crate::catalog::{hex, FileTags, TagRow};

/// One exported file.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub path: PathBuf,
    /// Lowercase hex.
    pub hash: String,
    pub model: String,
    pub tags: Vec<TagRow>,
}

impl From<FileTags> for Record {
    fn from(f: FileTags) -> Record {
        Record {
            path: f.path,
            hash: hex(&f.hash),
            model: f.model,
            tags: f.tags,
        }
    }
}

/// A line or row that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("line {line}: {message}")]
    Parse { line: usize, message: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Csv(#[from] csv::Error),
}

/// The JSON line of a record (without the newline).
pub fn json_line(r: &Record) -> String {
    serde_json::json!({
        "path": r.path.to_string_lossy(),
        "hash": r.hash,
        "model": r.model,
        "tags": crate::output::tags_json(&r.tags),
    })
    .to_string()
}

/// Reads JSON lines back (probabilities come back from percent).
pub fn read_json(input: impl BufRead) -> Result<Vec<Record>, ExportError> {
    #[derive(serde::Deserialize)]
    struct Tag {
        rank: u32,
        class: String,
        index: usize,
        probability: f64,
    }
    #[derive(serde::Deserialize)]
    struct Line {
        path: String,
        hash: String,
        model: String,
        tags: Vec<Tag>,
    }
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(&line).map_err(|e| ExportError::Parse {
            line: i + 1,
            message: e.to_string(),
        })?;
        out.push(Record {
            path: PathBuf::from(l.path),
            hash: l.hash,
            model: l.model,
            tags: l
                .tags
                .into_iter()
                .map(|t| TagRow {
                    rank: t.rank,
                    class_index: t.index,
                    label: t.class,
                    probability: (t.probability / 100.0) as f32,
                })
                .collect(),
        });
    }
    Ok(out)
}

/// The CSV header.
pub const CSV_HEADER: [&str; 7] = [
    "path",
    "hash",
    "model",
    "rank",
    "class",
    "index",
    "probability",
];

/// A CSV writer with the header written.
pub fn csv_writer<W: Write>(w: W) -> Result<csv::Writer<W>, ExportError> {
    let mut c = csv::Writer::from_writer(w);
    c.write_record(CSV_HEADER)?;
    Ok(c)
}

/// Writes one record's rows (one per tag; one with empty tag fields when it has none).
pub fn write_csv<W: Write>(c: &mut csv::Writer<W>, r: &Record) -> Result<(), ExportError> {
    let path = r.path.to_string_lossy();
    if r.tags.is_empty() {
        c.write_record([&*path, &r.hash, &r.model, "", "", "", ""])?;
    }
    for t in &r.tags {
        c.write_record([
            &*path,
            &r.hash,
            &r.model,
            &t.rank.to_string(),
            &t.label,
            &t.class_index.to_string(),
            &format!("{:.4}", t.probability),
        ])?;
    }
    Ok(())
}

/// Reads CSV back: consecutive rows of one path make one record.
pub fn read_csv(input: impl std::io::Read) -> Result<Vec<Record>, ExportError> {
    let mut rdr = csv::Reader::from_reader(input);
    let header = rdr.headers()?.clone();
    if header.iter().collect::<Vec<_>>() != CSV_HEADER {
        return Err(ExportError::Parse {
            line: 1,
            message: format!("header is not {}", CSV_HEADER.join(",")),
        });
    }
    let mut out: Vec<Record> = Vec::new();
    for (i, row) in rdr.records().enumerate() {
        let row = row?;
        let bad = |m: &str| ExportError::Parse {
            line: i + 2,
            message: m.to_string(),
        };
        let path = PathBuf::from(&row[0]);
        if out.last().map(|r| &r.path) != Some(&path) {
            out.push(Record {
                path,
                hash: row[1].to_string(),
                model: row[2].to_string(),
                tags: Vec::new(),
            });
        }
        if row[3].is_empty() {
            continue;
        }
        let tag = TagRow {
            rank: row[3].parse().map_err(|_| bad("rank is not a number"))?,
            label: row[4].to_string(),
            class_index: row[5].parse().map_err(|_| bad("index is not a number"))?,
            probability: row[6]
                .parse()
                .map_err(|_| bad("probability is not a number"))?,
        };
        out.last_mut().expect("pushed above").tags.push(tag);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Record> {
        vec![
            Record {
                path: PathBuf::from("/p/a, \"quoted\"\nname.jpg"),
                hash: "ab".repeat(32),
                model: "resnet18".into(),
                tags: vec![
                    TagRow {
                        rank: 1,
                        class_index: 207,
                        label: "golden retriever".into(),
                        probability: 0.8123,
                    },
                    TagRow {
                        rank: 2,
                        class_index: 999,
                        label: "toilet tissue, toilet paper".into(),
                        probability: 0.05,
                    },
                ],
            },
            Record {
                path: PathBuf::from("/p/b.png"),
                hash: "cd".repeat(32),
                model: "efficientnet-lite0".into(),
                tags: vec![],
            },
        ]
    }

    #[test]
    fn csv_round_trips_with_quoting() {
        let mut buf = Vec::new();
        {
            let mut c = csv_writer(&mut buf).unwrap();
            for r in records() {
                write_csv(&mut c, &r).unwrap();
            }
            c.flush().unwrap();
        }
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(text.starts_with("path,hash,model,rank,class,index,probability\n"));
        assert!(
            text.contains("\"/p/a, \"\"quoted\"\"\nname.jpg\""),
            "{text}"
        );
        assert_eq!(read_csv(&buf[..]).unwrap(), records());
    }

    #[test]
    fn json_round_trips() {
        let text: String = records().iter().map(|r| json_line(r) + "\n").collect();
        let back = read_json(text.as_bytes()).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].path, records()[0].path);
        assert_eq!(back[0].tags[0].label, "golden retriever");
        assert!((back[0].tags[0].probability - 0.8123).abs() < 1e-4);
        assert_eq!(back[1], records()[1]);
        let e = read_json("{\"path\": 1}\n".as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("line 1:"), "{e}");
    }
}
