//! Merging phototag's tags into an existing XMP sidecar (see `xmp` for what is kept and
//! what is replaced): the Description holding `dc:subject` (else the first) gets the
//! merged keywords and phototag's elements; everything else is written back as read.
//!
//! May not: read or write files, or drop anything that is not phototag's.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Writer;

use super::xmp::{
    end_of, events, is, keywords, ours_name, phototag_block, read, subject_block, XmpError, DC_NS,
    NS,
};
use crate::catalog::TagRow;

/// Merges phototag's tags into an existing sidecar (see the module notes).
pub fn merge(existing: &str, model: &str, tags: &[TagRow]) -> Result<String, XmpError> {
    let bom = existing.starts_with('\u{feff}');
    let text = existing.trim_start_matches('\u{feff}');
    let before = read(text)?;
    let ev = events(text)?;
    let descriptions: Vec<usize> = ev
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Event::Start(s) | Event::Empty(s) if is(s, "rdf:Description")))
        .map(|(i, _)| i)
        .collect();
    // The Description holding dc:subject, else the first.
    let target = descriptions
        .iter()
        .copied()
        .find(|&d| {
            let end = end_of(&ev, d);
            ev[d..=end]
                .iter()
                .any(|e| matches!(e, Event::Start(s) | Event::Empty(s) if is(s, "dc:subject")))
        })
        .or(descriptions.first().copied())
        .ok_or(XmpError::NoDescription)?;
    let target_end = end_of(&ev, target);

    // The file's own keywords are those phototag did not add.
    let theirs: Vec<String> = before
        .keywords
        .iter()
        .filter(|k| !before.ours.contains(k))
        .cloned()
        .collect();
    let added: Vec<String> = keywords(tags)
        .into_iter()
        .filter(|k| !theirs.contains(k))
        .collect();
    let mut all = theirs.clone();
    all.extend(added.iter().cloned());

    // Is `dc` declared on the target or an element around it?
    let mut dc_declared = false;
    {
        let mut stack: Vec<bool> = Vec::new();
        for e in &ev[..=target] {
            match e {
                Event::Start(s) | Event::Empty(s) => {
                    let has = s
                        .attributes()
                        .flatten()
                        .any(|a| a.key.as_ref() == "xmlns:dc");
                    if matches!(e, Event::Start(_)) {
                        stack.push(has);
                    } else if has {
                        dc_declared = true;
                    }
                }
                Event::End(_) => {
                    stack.pop();
                }
                _ => {}
            }
        }
        dc_declared |= stack.iter().any(|h| *h);
    }

    let mut w = Writer::new(Vec::new());
    let io = |e: std::io::Error| XmpError::Xml(e.to_string());
    let ind = "   ";
    let ours_text = |w: &mut Writer<Vec<u8>>, subject: bool| {
        let inner = w.get_mut();
        if subject {
            inner.extend_from_slice(b"\n");
            inner.extend_from_slice(subject_block(&all, ind).as_bytes());
        }
        inner.extend_from_slice(b"\n");
        inner.extend_from_slice(phototag_block(model, tags, &added, ind).as_bytes());
        inner.extend_from_slice(b"\n  ");
    };
    let mut subject_done = false;
    // Whitespace between elements is held until the next event: dropped before an
    // element that is skipped (so merging again changes nothing), written otherwise.
    let mut pending = String::new();
    let mut i = 0;
    while i < ev.len() {
        let e = &ev[i];
        if let Event::Text(t) = e {
            let t = t.xml10_content();
            if t.trim().is_empty() {
                pending.push_str(&t);
                i += 1;
                continue;
            }
        }
        let skipped = match e {
            Event::Start(s) | Event::Empty(s) => {
                ours_name(s.name().as_ref())
                    || (i > target && i < target_end && is(s, "dc:subject") && !subject_done)
            }
            Event::End(_) => i == target_end,
            _ => false,
        };
        if skipped {
            let indent = pending.rsplit('\n').next().unwrap_or("").to_string();
            let keep_subject =
                matches!(e, Event::Start(s) | Event::Empty(s) if is(s, "dc:subject"));
            if keep_subject {
                // Replaced where it was, at its indentation.
                let inner = w.get_mut();
                inner.extend_from_slice(pending.as_bytes());
                let block = subject_block(&all, &indent);
                inner.extend_from_slice(&block.as_bytes()[indent.len()..]);
                subject_done = true;
            }
            pending.clear();
            if let Event::End(_) = e {
                ours_text(&mut w, !subject_done);
                w.write_event(e.borrow()).map_err(io)?;
                i += 1;
            } else {
                i = end_of(&ev, i) + 1;
            }
            continue;
        }
        w.get_mut().extend_from_slice(pending.as_bytes());
        pending.clear();
        match e {
            Event::Start(s) | Event::Empty(s) if is(s, "rdf:Description") => {
                let mut el = BytesStart::new(s.name().as_ref().to_string());
                for a in s.attributes().flatten() {
                    let k = a.key.as_ref();
                    if ours_name(k) || (i == target && k == "xmlns:phototag") {
                        continue;
                    }
                    el.push_attribute(a);
                }
                if i == target {
                    if !dc_declared {
                        el.push_attribute(("xmlns:dc", DC_NS));
                    }
                    el.push_attribute(("xmlns:phototag", NS));
                    w.write_event(Event::Start(el)).map_err(io)?;
                    if matches!(e, Event::Empty(_)) {
                        ours_text(&mut w, true);
                        w.write_event(Event::End(s.to_end())).map_err(io)?;
                    }
                } else if matches!(e, Event::Empty(_)) {
                    w.write_event(Event::Empty(el)).map_err(io)?;
                } else {
                    w.write_event(Event::Start(el)).map_err(io)?;
                }
            }
            other => w.write_event(other.borrow()).map_err(io)?,
        }
        i += 1;
    }
    w.get_mut().extend_from_slice(pending.as_bytes());
    let mut out = String::new();
    if bom {
        out.push('\u{feff}');
    }
    out.push_str(&String::from_utf8(w.into_inner()).map_err(|e| XmpError::Xml(e.to_string()))?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::xmp::read;
    use crate::sidecar::xmp::tests::tags;

    const DIGIKAM: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:digiKam="http://www.digikam.org/ns/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmp:Rating="4"
    digiKam:ColorLabel="2">
   <!-- a comment -->
   <dc:subject>
    <rdf:Bag>
     <rdf:li>holiday</rdf:li>
     <rdf:li>golden retriever</rdf:li>
     <rdf:li>Rock &amp; Roll</rdf:li>
    </rdf:Bag>
   </dc:subject>
   <digiKam:TagsList>
    <rdf:Seq>
     <rdf:li>places/beach</rdf:li>
    </rdf:Seq>
   </digiKam:TagsList>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"#;

    #[test]
    fn merge_keeps_everything_else_and_never_claims_their_keywords() {
        let merged = merge(DIGIKAM, "resnet18", &tags()).unwrap();
        let s = read(&merged).unwrap();
        assert_eq!(
            s.keywords,
            [
                "holiday",
                "golden retriever",
                "Rock & Roll",
                "Labrador retriever"
            ]
        );
        assert_eq!(
            s.ours,
            ["Labrador retriever"],
            "golden retriever was theirs"
        );
        for kept in [
            "xmp:Rating=\"4\"",
            "digiKam:ColorLabel=\"2\"",
            "<!-- a comment -->",
            "<rdf:li>places/beach</rdf:li>",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        ] {
            assert!(merged.contains(kept), "{kept} lost:\n{merged}");
        }
        assert_eq!(merged.matches("xmlns:dc=").count(), 1);

        // Retagged: phototag's old keyword goes, theirs stay; merging again is stable.
        let mut other = tags();
        other[1].label = "kuvasz".into();
        let again = merge(&merged, "resnet18", &other).unwrap();
        let s = read(&again).unwrap();
        assert_eq!(
            s.keywords,
            ["holiday", "golden retriever", "Rock & Roll", "kuvasz"]
        );
        assert_eq!(merge(&again, "resnet18", &other).unwrap(), again);
        assert_eq!(again.matches("<phototag:Model>").count(), 1);
    }

    #[test]
    fn broken_or_foreign_text_is_refused() {
        assert!(matches!(
            merge("<a><b></a>", "m", &tags()),
            Err(XmpError::Xml(_))
        ));
        assert!(matches!(
            merge("<a/>", "m", &tags()),
            Err(XmpError::NoDescription)
        ));
    }

    #[test]
    fn an_empty_description_gets_content() {
        let text = "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description rdf:about=\"\" xmlns:tiff=\"http://ns.adobe.com/tiff/1.0/\" tiff:Make=\"Canon\"/></rdf:RDF></x:xmpmeta>";
        let merged = merge(text, "m", &tags()).unwrap();
        assert!(merged.contains("tiff:Make=\"Canon\""), "{merged}");
        assert_eq!(read(&merged).unwrap().keywords.len(), 2);
    }
}
