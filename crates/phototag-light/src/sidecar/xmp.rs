//! XMP sidecar text: a new packet, a merge into an existing one, and reading one back.
//!
//! phototag writes its tags as `dc:subject` keywords (what digiKam, darktable, Lightroom
//! and PhotoPrism read) and, in its own namespace ([`NS`], prefix `phototag`), the model
//! and every tag with its class index and probability, plus the list of keywords it added
//! (`phototag:Keywords`). A merge keeps everything else: other namespaces, attributes,
//! elements, comments and processing instructions; in `dc:subject` it replaces only the
//! keywords phototag added before (a keyword the file already had is never claimed).
//!
//! Prefixes are matched as written (`rdf:`, `dc:`, `phototag:`), as every XMP writer
//! spells them.
//!
//! The merge itself is in `merge.rs`.
//!
//! May not: read or write files (`sidecar` does), or accept text that is not well-formed
//! XML with an `rdf:Description` (such a sidecar is left alone and reported).

use std::fmt::Write as _;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::catalog::TagRow;

/// phototag's XMP namespace.
pub const NS: &str = "urn:phototag:xmp:1.0/";
pub(super) const DC_NS: &str = "http://purl.org/dc/elements/1.1/";
const RDF_NS: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";

/// Tags below this probability are not made keywords (the best tag always is).
pub const KEYWORD_MIN_PROBABILITY: f32 = 0.10;

/// A sidecar that cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum XmpError {
    #[error("not well-formed XML: {0}")]
    Xml(String),
    #[error("no rdf:Description element: not an XMP packet")]
    NoDescription,
}

/// What phototag reads back from a sidecar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sidecar {
    /// Every `dc:subject` keyword, in order.
    pub keywords: Vec<String>,
    /// The keywords phototag added.
    pub ours: Vec<String>,
    pub model: Option<String>,
    /// (rank, class index, label, probability in [0, 1]).
    pub tags: Vec<(u32, usize, String, f32)>,
}

/// The keywords of some tags: labels of the tags at or above
/// [`KEYWORD_MIN_PROBABILITY`], and always the best one.
pub fn keywords(tags: &[TagRow]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        if (i == 0 || t.probability >= KEYWORD_MIN_PROBABILITY) && !out.contains(&t.label) {
            out.push(t.label.clone());
        }
    }
    out
}

fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// `<rdf:Bag>` (or Seq) of plain items, indented by `ind`.
fn bag(out: &mut String, kind: &str, items: &[String], ind: &str) {
    let _ = writeln!(out, "{ind}<rdf:{kind}>");
    for k in items {
        let _ = writeln!(out, "{ind} <rdf:li>{}</rdf:li>", esc(k));
    }
    let _ = write!(out, "{ind}</rdf:{kind}>");
}

pub(super) fn subject_block(keywords: &[String], ind: &str) -> String {
    let mut s = format!("{ind}<dc:subject>\n");
    bag(&mut s, "Bag", keywords, &format!("{ind} "));
    let _ = write!(s, "\n{ind}</dc:subject>");
    s
}

pub(super) fn phototag_block(model: &str, tags: &[TagRow], ours: &[String], ind: &str) -> String {
    let mut s = format!("{ind}<phototag:Model>{}</phototag:Model>\n", esc(model));
    let _ = writeln!(s, "{ind}<phototag:Keywords>");
    bag(&mut s, "Bag", ours, &format!("{ind} "));
    let _ = writeln!(s, "\n{ind}</phototag:Keywords>");
    let _ = writeln!(s, "{ind}<phototag:Tags>\n{ind} <rdf:Seq>");
    for t in tags {
        let _ = writeln!(s, "{ind}  <rdf:li rdf:parseType=\"Resource\">");
        let _ = writeln!(s, "{ind}   <phototag:Rank>{}</phototag:Rank>", t.rank);
        let _ = writeln!(
            s,
            "{ind}   <phototag:Class>{}</phototag:Class>",
            t.class_index
        );
        let _ = writeln!(
            s,
            "{ind}   <phototag:Label>{}</phototag:Label>",
            esc(&t.label)
        );
        let _ = writeln!(
            s,
            "{ind}   <phototag:Probability>{:.4}</phototag:Probability>",
            t.probability
        );
        let _ = writeln!(s, "{ind}  </rdf:li>");
    }
    let _ = write!(s, "{ind} </rdf:Seq>\n{ind}</phototag:Tags>");
    s
}

/// A new sidecar holding only phototag's tags.
pub fn render(model: &str, tags: &[TagRow]) -> String {
    let ours = keywords(tags);
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
<x:xmpmeta xmlns:x=\"adobe:ns:meta/\" x:xmptk=\"phototag {version}\">\n \
<rdf:RDF xmlns:rdf=\"{RDF_NS}\">\n  \
<rdf:Description rdf:about=\"\"\n    xmlns:dc=\"{DC_NS}\"\n    xmlns:phototag=\"{NS}\">\n\
{subject}\n{block}\n  \
</rdf:Description>\n \
</rdf:RDF>\n\
</x:xmpmeta>\n\
<?xpacket end=\"w\"?>\n",
        version = env!("CARGO_PKG_VERSION"),
        subject = subject_block(&ours, "   "),
        block = phototag_block(model, tags, &ours, "   "),
    )
}

pub(super) fn is(e: &BytesStart<'_>, name: &str) -> bool {
    e.name().as_ref() == name
}

pub(super) fn ours_name(name: &str) -> bool {
    name.starts_with("phototag:")
}

/// Reads every event (owned); the text must be well-formed.
pub(super) fn events(text: &str) -> Result<Vec<Event<'static>>, XmpError> {
    let mut r = Reader::from_str(text);
    r.config_mut().check_end_names = true;
    let mut out = Vec::new();
    let mut depth = 0i64;
    loop {
        match r.read_event() {
            Ok(Event::Eof) => break,
            Ok(e) => {
                match &e {
                    Event::Start(_) => depth += 1,
                    Event::End(_) => depth -= 1,
                    _ => {}
                }
                out.push(e.into_owned());
            }
            Err(e) => {
                return Err(XmpError::Xml(format!(
                    "{e} (at byte {})",
                    r.error_position()
                )))
            }
        }
    }
    if depth != 0 {
        return Err(XmpError::Xml("unclosed elements at the end".into()));
    }
    Ok(out)
}

/// The text of a run of Text and GeneralRef events.
fn push_text(buf: &mut String, e: &Event<'_>) {
    match e {
        Event::Text(t) => buf.push_str(&t.xml10_content()),
        Event::CData(t) => buf.push_str(&t.xml10_content()),
        Event::GeneralRef(r) => match r.resolve_char_ref() {
            Ok(Some(c)) => buf.push(c),
            _ => buf.push_str(match r.as_ref() {
                "lt" => "<",
                "gt" => ">",
                "amp" => "&",
                "apos" => "'",
                "quot" => "\"",
                _ => "",
            }),
        },
        _ => {}
    }
}

/// Index of the event closing the element opened at `start` (itself for an Empty).
pub(super) fn end_of(ev: &[Event<'_>], start: usize) -> usize {
    if matches!(ev[start], Event::Empty(_)) {
        return start;
    }
    let mut depth = 0;
    for (i, e) in ev.iter().enumerate().skip(start) {
        match e {
            Event::Start(_) => depth += 1,
            Event::End(_) => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    ev.len() - 1
}

/// The `rdf:li` texts directly in the bag of the element spanning `ev[a..=b]`.
fn items(ev: &[Event<'_>], a: usize, b: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for e in &ev[a..=b] {
        match e {
            Event::Start(s) if is(s, "rdf:li") => cur = Some(String::new()),
            Event::End(x) if x.name().as_ref() == "rdf:li" => {
                if let Some(t) = cur.take() {
                    out.push(t.trim().to_string());
                }
            }
            other => {
                if let Some(t) = cur.as_mut() {
                    push_text(t, other);
                }
            }
        }
    }
    out
}

/// Reads keywords, phototag's own keywords, model and tags.
pub fn read(text: &str) -> Result<Sidecar, XmpError> {
    let ev = events(text.trim_start_matches('\u{feff}'))?;
    let mut out = Sidecar::default();
    let mut found = false;
    let mut i = 0;
    while i < ev.len() {
        match &ev[i] {
            Event::Start(s) | Event::Empty(s) if is(s, "rdf:Description") => found = true,
            Event::Start(s) if is(s, "dc:subject") => {
                let end = end_of(&ev, i);
                out.keywords.extend(items(&ev, i, end));
                i = end;
            }
            Event::Start(s) if is(s, "phototag:Keywords") => {
                let end = end_of(&ev, i);
                out.ours = items(&ev, i, end);
                i = end;
            }
            Event::Start(s) if is(s, "phototag:Model") => {
                let end = end_of(&ev, i);
                let mut t = String::new();
                ev[i + 1..end].iter().for_each(|e| push_text(&mut t, e));
                out.model = Some(t.trim().to_string());
                i = end;
            }
            Event::Start(s) if is(s, "phototag:Tags") => {
                let end = end_of(&ev, i);
                let mut tag = (0u32, 0usize, String::new(), 0f32);
                let mut field: Option<String> = None;
                let mut text = String::new();
                for e in &ev[i..=end] {
                    match e {
                        Event::Start(s) if ours_name(s.name().as_ref()) => {
                            field = Some(s.name().as_ref().to_string());
                            text.clear();
                        }
                        Event::End(x) if x.name().as_ref() == "rdf:li" => {
                            out.tags.push(std::mem::take(&mut tag));
                        }
                        Event::End(x) if Some(x.name().as_ref()) == field.as_deref() => {
                            let t = text.trim();
                            match x.name().as_ref() {
                                "phototag:Rank" => tag.0 = t.parse().unwrap_or(0),
                                "phototag:Class" => tag.1 = t.parse().unwrap_or(0),
                                "phototag:Label" => tag.2 = t.to_string(),
                                "phototag:Probability" => tag.3 = t.parse().unwrap_or(0.0),
                                _ => {}
                            }
                            field = None;
                        }
                        other if field.is_some() => push_text(&mut text, other),
                        _ => {}
                    }
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    if !found {
        return Err(XmpError::NoDescription);
    }
    Ok(out)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Three tags, one with characters XML must escape; shared with `merge`'s tests.
    pub(in crate::sidecar) fn tags() -> Vec<TagRow> {
        vec![
            TagRow {
                rank: 1,
                class_index: 207,
                label: "golden retriever".into(),
                probability: 0.81,
            },
            TagRow {
                rank: 2,
                class_index: 208,
                label: "Labrador retriever".into(),
                probability: 0.12,
            },
            TagRow {
                rank: 3,
                class_index: 281,
                label: "tabby & co".into(),
                probability: 0.01,
            },
        ]
    }

    #[test]
    fn a_new_sidecar_reads_back() {
        let text = render("resnet18", &tags());
        let s = read(&text).unwrap();
        assert_eq!(s.keywords, ["golden retriever", "Labrador retriever"]);
        assert_eq!(s.ours, s.keywords);
        assert_eq!(s.model.as_deref(), Some("resnet18"));
        assert_eq!(s.tags.len(), 3);
        assert_eq!(s.tags[2], (3, 281, "tabby & co".to_string(), 0.01));
    }
}
