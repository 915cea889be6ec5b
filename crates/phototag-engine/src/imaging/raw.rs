//! Camera raw files (DNG, CR2, CR3, NEF, ARW, RAF, RW2, ORF, PEF, ...), read through the JPEG
//! preview the camera embeds in them: phototag does not develop raw sensor data. What it finds
//! is a rendered, white-balanced picture, usually full size or ~1600 pixels wide, which is what
//! a classifier wants.
//!
//! How the preview is found, by container:
//! * TIFF-structured raws (DNG, CR2, NEF, ARW, PEF, ORF, RW2, ...): the IFD tree (IFD chain,
//!   SubIFDs, EXIF IFD) is walked, bounded to 64 IFDs of at most 1,000 entries each, and every
//!   JPEG it points at is a candidate: `JPEGInterchangeFormat`/`Length`, single-strip IFDs with
//!   JPEG compression (6 or 7), and Panasonic's `JpgFromRaw` (0x002E). IFD0's `Orientation`
//!   applies to the preview.
//! * CR3 (ISO base media): the `PRVW` box (a ~1620×1080 JPEG), orientation from the `CMT1` box
//!   (a TIFF IFD0).
//! * RAF: the JPEG offset and length at bytes 84 and 88 of the header.
//! * Anything else, or when the above finds nothing (makernote previews, CRW, X3F): a bounded
//!   scan of the file for JPEG start markers (`FF D8 FF`), at most 64 of them.
//!
//! Each candidate's header is read (no pixels); lossless JPEGs (raw sensor data in CR2/DNG) are
//! skipped, and the largest remaining one is decoded. No candidate means an "unsupported"
//! error that says the file has no usable preview.
//!
//! May not: decode sensor data, read outside the file's bytes, or loop on a malformed IFD.

use image::metadata::Orientation;

use super::error::DecodeError;
use super::format::{Format, RawKind};
use super::jpeg;

const MAX_IFDS: usize = 64;
const MAX_ENTRIES: usize = 1000;
const MAX_SCAN_CANDIDATES: usize = 64;

/// Which raw container `bytes` is, if any. Plain TIFFs are not raws: a TIFF counts as a raw
/// only with the CR2 signature, a `DNGVersion` tag, `SubIFDs`, or a vendor compression in IFD0.
pub(super) fn detect(bytes: &[u8]) -> Option<RawKind> {
    let at = |o: usize, m: &[u8]| bytes.get(o..o + m.len()) == Some(m);
    if at(4, b"ftypcrx ") {
        return Some(RawKind::Cr3);
    }
    if at(0, b"FUJIFILMCCD-RAW") {
        return Some(RawKind::Raf);
    }
    if at(6, b"HEAPCCDR") {
        return Some(RawKind::Crw);
    }
    if at(0, b"IIRO") || at(0, b"IIRS") || at(0, b"MMOR") {
        return Some(RawKind::Orf);
    }
    if at(0, b"IIU\0") {
        return Some(RawKind::Rw2);
    }
    if at(0, b"\0MRM") || at(0, b"FOVb") {
        return Some(RawKind::Other);
    }
    let tiff = Tiff::new(bytes)?;
    if at(8, b"CR") {
        return Some(RawKind::Cr2);
    }
    let ifd0 = tiff.entries(tiff.first_ifd()?);
    let has = |tag: u16| ifd0.iter().any(|e| e.tag == tag);
    if has(0xC612) {
        return Some(RawKind::Dng);
    }
    // Raw sensor compressions: Sony 32767, Samsung 32769/32770/32772, Panasonic 34316,
    // Nikon 34713, Kodak 65000, Pentax 65535 (not PackBits 32773 or Deflate 32946).
    let vendor_compression = ifd0.iter().find(|e| e.tag == 0x0103).is_some_and(|e| {
        matches!(
            tiff.value(e),
            32767 | 32769 | 32770 | 32772 | 34316 | 34713 | 65000 | 65535
        )
    });
    if !(has(0x014A) || vendor_compression) {
        return None;
    }
    let make = ifd0
        .iter()
        .find(|e| e.tag == 0x010F)
        .and_then(|e| tiff.bytes(e))
        .map(|b| String::from_utf8_lossy(b).to_uppercase())
        .unwrap_or_default();
    Some(match make {
        m if m.starts_with("NIKON") => RawKind::Nef,
        m if m.starts_with("SONY") => RawKind::Arw,
        m if m.starts_with("PENTAX") || m.starts_with("RICOH") => RawKind::Pef,
        m if m.starts_with("CANON") => RawKind::Cr2,
        _ => RawKind::Other,
    })
}

/// The embedded preview to decode: its bytes and the orientation the raw file gives it
/// (`None`: use the preview's own EXIF).
pub(super) struct Preview<'a> {
    pub jpeg: &'a [u8],
    pub orientation: Option<Orientation>,
}

/// Finds the largest lossy JPEG preview in a raw file.
pub(super) fn preview(bytes: &[u8], kind: RawKind) -> Result<Preview<'_>, DecodeError> {
    let (mut candidates, orientation) = match kind {
        RawKind::Cr3 => cr3(bytes),
        RawKind::Raf => (raf(bytes), None),
        _ => tiff_candidates(bytes),
    };
    if candidates.is_empty() {
        candidates = scan(bytes);
    }
    let best = candidates
        .into_iter()
        .filter_map(|(start, len)| {
            let end = start.checked_add(len)?.min(bytes.len());
            let jpeg = bytes.get(start..end)?;
            let h = jpeg::header(jpeg).ok()?;
            (!h.lossless && h.precision == 8)
                .then_some((u64::from(h.width) * u64::from(h.height), jpeg))
        })
        .max_by_key(|(pixels, _)| *pixels);
    match best {
        Some((_, jpeg)) => Ok(Preview { jpeg, orientation }),
        None => Err(DecodeError::Unsupported {
            format: Format::Raw(kind).name().into(),
            detail: Some(
                "no embedded JPEG preview (phototag reads raw files through their preview and \
                 does not develop sensor data)"
                    .into(),
            ),
        }),
    }
}

/// Candidates from a TIFF-structured raw, and IFD0's orientation.
fn tiff_candidates(bytes: &[u8]) -> (Vec<(usize, usize)>, Option<Orientation>) {
    let Some(tiff) = Tiff::new(bytes) else {
        return (Vec::new(), None);
    };
    let mut out = Vec::new();
    let mut orientation = None;
    let mut queue: Vec<usize> = tiff.first_ifd().into_iter().collect();
    let mut seen = Vec::new();
    while let Some(ifd) = queue.pop() {
        if seen.contains(&ifd) || seen.len() >= MAX_IFDS {
            continue;
        }
        seen.push(ifd);
        let entries = tiff.entries(ifd);
        let find = |tag: u16| entries.iter().find(|e| e.tag == tag);
        if seen.len() == 1 {
            orientation = find(0x0112)
                .and_then(|e| Orientation::from_exif(tiff.value(e) as u8))
                .filter(|o| *o != Orientation::NoTransforms);
        }
        if let (Some(o), Some(l)) = (find(0x0201), find(0x0202)) {
            out.push((tiff.value(o) as usize, tiff.value(l) as usize));
        }
        let compression = find(0x0103).map(|e| tiff.value(e));
        if let (Some(6 | 7), Some(o), Some(l)) = (compression, find(0x0111), find(0x0117)) {
            if o.count == 1 && l.count == 1 {
                out.push((tiff.value(o) as usize, tiff.value(l) as usize));
            }
        }
        if let Some(e) = find(0x002E) {
            // Panasonic JpgFromRaw: UNDEFINED bytes, the JPEG itself.
            if let Some(start) = tiff.data_offset(e) {
                out.push((start, e.count as usize));
            }
        }
        for e in entries
            .iter()
            .filter(|e| e.tag == 0x014A || e.tag == 0x8769)
        {
            queue.extend(tiff.values(e).into_iter().map(|v| v as usize));
        }
        if let Some(next) = tiff.next_ifd(ifd) {
            queue.push(next);
        }
    }
    (out, orientation)
}

/// CR3: the JPEG in the `PRVW` box; the orientation from `CMT1` (a TIFF IFD0).
fn cr3(bytes: &[u8]) -> (Vec<(usize, usize)>, Option<Orientation>) {
    let find = |tag: &[u8]| bytes.windows(4).position(|w| w == tag);
    let mut out = Vec::new();
    if let Some(pos) = find(b"PRVW") {
        let size = read_u32_be(bytes, pos.wrapping_sub(4)).unwrap_or(0) as usize;
        let end = (pos - 4).saturating_add(size).min(bytes.len());
        let window = bytes.get(pos..(pos + 64).min(end)).unwrap_or_default();
        if let Some(soi) = window.windows(3).position(|w| w == [0xFF, 0xD8, 0xFF]) {
            out.push((pos + soi, end - (pos + soi)));
        }
    }
    let orientation = find(b"CMT1")
        .and_then(|pos| bytes.get(pos + 4..))
        .and_then(|tiff| {
            let (entries, t) = Tiff::new(tiff).map(|t| (t.first_ifd().map(|i| t.entries(i)), t))?;
            let e = entries?.into_iter().find(|e| e.tag == 0x0112)?;
            Orientation::from_exif(t.value(&e) as u8)
        })
        .filter(|o| *o != Orientation::NoTransforms);
    (out, orientation)
}

/// RAF: the big-endian JPEG offset and length at bytes 84 and 88.
fn raf(bytes: &[u8]) -> Vec<(usize, usize)> {
    match (read_u32_be(bytes, 84), read_u32_be(bytes, 88)) {
        (Some(o), Some(l)) if o > 0 && l > 0 => vec![(o as usize, l as usize)],
        _ => Vec::new(),
    }
}

/// The bounded fallback: every `FF D8 FF` start marker (at most 64), each to the file's end.
fn scan(bytes: &[u8]) -> Vec<(usize, usize)> {
    bytes
        .windows(3)
        .enumerate()
        .filter(|(_, w)| *w == [0xFF, 0xD8, 0xFF])
        .map(|(i, _)| (i, bytes.len() - i))
        .take(MAX_SCAN_CANDIDATES)
        .collect()
}

fn read_u32_be(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A minimal, bounds-checked TIFF reader: enough to walk IFDs and read small values.
struct Tiff<'a> {
    bytes: &'a [u8],
    little: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    /// The 4-byte value/offset field, as stored.
    field: [u8; 4],
}

impl<'a> Tiff<'a> {
    /// `II`/`MM` byte order; the magic number (42, or ORF/RW2's own) is not checked.
    fn new(bytes: &'a [u8]) -> Option<Tiff<'a>> {
        let little = match bytes.get(0..2)? {
            b"II" => true,
            b"MM" => false,
            _ => return None,
        };
        let t = Tiff { bytes, little };
        let magic = t.u16(2)?;
        // 42: TIFF (DNG, CR2, NEF, ...); 0x4F52/0x5352: ORF; 0x55: RW2.
        matches!(magic, 42 | 0x4F52 | 0x5352 | 0x55).then_some(t)
    }

    fn u16(&self, at: usize) -> Option<u16> {
        let b = self.bytes.get(at..at.checked_add(2)?)?;
        Some(match self.little {
            true => u16::from_le_bytes([b[0], b[1]]),
            false => u16::from_be_bytes([b[0], b[1]]),
        })
    }

    fn u32(&self, at: usize) -> Option<u32> {
        let b = self.bytes.get(at..at.checked_add(4)?)?;
        Some(self.u32_of([b[0], b[1], b[2], b[3]]))
    }

    fn u32_of(&self, b: [u8; 4]) -> u32 {
        match self.little {
            true => u32::from_le_bytes(b),
            false => u32::from_be_bytes(b),
        }
    }

    fn first_ifd(&self) -> Option<usize> {
        self.u32(4).map(|o| o as usize).filter(|&o| o >= 8)
    }

    fn entries(&self, ifd: usize) -> Vec<Entry> {
        let n = usize::from(self.u16(ifd).unwrap_or(0)).min(MAX_ENTRIES);
        (0..n)
            .map_while(|i| {
                let at = ifd + 2 + i * 12;
                let field = self.bytes.get(at + 8..at + 12)?;
                Some(Entry {
                    tag: self.u16(at)?,
                    kind: self.u16(at + 2)?,
                    count: self.u32(at + 4)?,
                    field: [field[0], field[1], field[2], field[3]],
                })
            })
            .collect()
    }

    fn next_ifd(&self, ifd: usize) -> Option<usize> {
        let n = usize::from(self.u16(ifd)?);
        let next = self.u32(ifd + 2 + n * 12)? as usize;
        (next >= 8 && next < self.bytes.len()).then_some(next)
    }

    /// The first value of a SHORT or LONG entry (0 for other types).
    fn value(&self, e: &Entry) -> u32 {
        match e.kind {
            3 => match self.little {
                true => u32::from(u16::from_le_bytes([e.field[0], e.field[1]])),
                false => u32::from(u16::from_be_bytes([e.field[0], e.field[1]])),
            },
            4 | 13 => self.u32_of(e.field),
            _ => 0,
        }
    }

    /// Where an entry's data starts: inline in the field when it fits in 4 bytes (returned as
    /// `None` then: no offset to speak of), else at the offset the field holds.
    fn data_offset(&self, e: &Entry) -> Option<usize> {
        let size = match e.kind {
            1 | 2 | 6 | 7 => 1,
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            _ => 8,
        };
        let total = u64::from(e.count) * size;
        (total > 4).then(|| self.u32_of(e.field) as usize)
    }

    /// All values of a LONG/IFD array (SubIFDs), at most 64.
    fn values(&self, e: &Entry) -> Vec<u32> {
        match self.data_offset(e) {
            None => vec![self.value(e)],
            Some(at) => (0..e.count.min(MAX_IFDS as u32) as usize)
                .map_while(|i| self.u32(at + 4 * i))
                .collect(),
        }
    }

    /// The bytes of an ASCII/BYTE entry (up to its NUL).
    fn bytes(&self, e: &Entry) -> Option<&'a [u8]> {
        let len = e.count as usize;
        let data = match self.data_offset(e) {
            None => return None, // a 4-byte Make is no maker name worth reading
            Some(at) => self.bytes.get(at..at.checked_add(len)?)?,
        };
        Some(data.split(|&b| b == 0).next().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian TIFF with one IFD holding `entries` (tag, type, count, value).
    fn tiff(entries: &[(u16, u16, u32, u32)], tail: &[u8]) -> Vec<u8> {
        let mut b = b"II*\0\x08\0\0\0".to_vec();
        b.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for &(tag, kind, count, value) in entries {
            b.extend_from_slice(&tag.to_le_bytes());
            b.extend_from_slice(&kind.to_le_bytes());
            b.extend_from_slice(&count.to_le_bytes());
            b.extend_from_slice(&value.to_le_bytes());
        }
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(tail);
        b
    }

    #[test]
    fn plain_tiffs_are_not_raws() {
        let plain = tiff(&[(0x0100, 3, 1, 10), (0x0103, 3, 1, 1)], &[]);
        assert_eq!(detect(&plain), None);
        let dng = tiff(&[(0xC612, 1, 4, 0x0104_0000)], &[]);
        assert_eq!(detect(&dng), Some(RawKind::Dng));
        let sub = tiff(&[(0x014A, 4, 1, 100)], &[]);
        assert_eq!(detect(&sub), Some(RawKind::Other));
        assert_eq!(detect(b"II*\0\x08\0\0\0\0\0CR"), None);
    }

    #[test]
    fn ifd_loops_and_wild_offsets_end() {
        // IFD0 whose SubIFD and next IFD point back at itself, and a JPEG pointer past the end.
        let mut b = tiff(
            &[
                (0x014A, 4, 1, 8),
                (0x0201, 4, 1, 1 << 30),
                (0x0202, 4, 1, 99),
            ],
            &[],
        );
        let next = b.len() - 4;
        b[next..].copy_from_slice(&8u32.to_le_bytes());
        let (candidates, _) = tiff_candidates(&b);
        assert_eq!(candidates, vec![(1 << 30, 99)]);
        assert!(matches!(
            preview(&b, RawKind::Other),
            Err(DecodeError::Unsupported { .. })
        ));
    }
}
