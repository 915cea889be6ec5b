//! Format coverage: HEIF/HEIC and AVIF (libheif), arithmetic, 12-bit and CMYK JPEG
//! (libjpeg-turbo), MPO, camera raw previews, files whose extension lies; and every file under
//! ../shared/corpus/formats and ../shared/corpus/exif is decoded or refused with a specific
//! reason. Fixture tests always run; corpus tests skip, saying why, without ../shared.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use phototag_engine::imaging::{decode_file, DecodeError, Decoded, Format, RawKind};
use phototag_light::limits::Limits;

const TEST: &str = "formats";

fn decode(path: &Path) -> Decoded {
    decode_file(path, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn heif_and_avif_fixtures_decode_to_the_same_photo() {
    let png = decode(&common::fixture("hopper.png"));
    for (name, format) in [("hopper.heif", Format::Heif), ("hopper.avif", Format::Avif)] {
        let d = decode(&common::fixture(name));
        assert_eq!(d.format, format, "{name}");
        assert_eq!(d.image.dimensions(), (128, 128), "{name}");
        let diff = common::mean_abs_diff_64(&d.image, &png.image);
        println!("{name} vs hopper.png: {diff:.2}");
        // A different photo (or swapped channels) is > 20 away.
        assert!(diff < 6.0, "{name}: {diff:.2}");
    }
    // A HEIF brand with nothing behind it is a clean error naming the format.
    let e = phototag_engine::imaging::decode_bytes(
        b"\0\0\0\x18ftypheic\0\0\0\0mif1heic",
        &Limits::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("HEIF/HEIC"), "{e}");
}

/// `../shared/corpus/formats/<rel>`.
fn formats(rel: &str) -> Option<PathBuf> {
    common::shared("corpus/formats", TEST).map(|d| d.join(rel))
}

#[test]
fn jpeg_variants_decode_like_their_plain_twins() {
    let Some(dir) = formats("libjpeg-turbo/testimages") else {
        return;
    };
    let orig = decode(&dir.join("testorig.jpg"));
    let ari = decode(&dir.join("testimgari.jpg"));
    let d = common::mean_abs_diff_64(&orig.image, &ari.image);
    println!("arithmetic vs Huffman: {d:.2}");
    assert!(d < 3.0, "arithmetic-coded JPEG differs by {d:.2}");
    // 12-bit JPEG against the 16-bit PNG of the same picture.
    let twelve = decode(&dir.join("monkey12.jpg"));
    let png = decode(&dir.join("monkey16.png"));
    let d = common::mean_abs_diff_64(&twelve.image, &png.image);
    println!("12-bit JPEG vs 16-bit PNG: {d:.2}");
    assert!(d < 4.0, "12-bit JPEG differs by {d:.2}");
    let pillow = formats("pillow").unwrap();
    let rgb = decode(&pillow.join("pil_sample_rgb.jpg"));
    let cmyk = decode(&pillow.join("pil_sample_cmyk.jpg"));
    let d = common::mean_abs_diff_64(&rgb.image, &cmyk.image);
    println!("CMYK vs RGB: {d:.2}");
    assert!(d < 15.0, "CMYK JPEG differs by {d:.2}");
    // MPO: the first (left) image.
    let mpo = decode(&pillow.join("frozenpond.mpo"));
    assert_eq!(
        (mpo.format, mpo.image.dimensions()),
        (Format::Jpeg, (640, 480))
    );
}

#[test]
fn avif_rotation_and_mirroring_are_applied() {
    let Some(dir) = formats("pillow/avif") else {
        return;
    };
    let upright = decode(&dir.join("rot0mir0.avif"));
    for r in 0..4 {
        for m in 0..2 {
            let d = decode(&dir.join(format!("rot{r}mir{m}.avif")));
            let diff = common::mean_abs_diff_64(&d.image, &upright.image);
            println!(
                "rot{r}mir{m}: {:?}, {diff:.2} from rot0mir0",
                d.image.dimensions()
            );
            assert_eq!(
                d.image.dimensions(),
                upright.image.dimensions(),
                "rot{r}mir{m}"
            );
            assert!(diff < 6.0, "rot{r}mir{m} is not upright: {diff:.2}");
        }
    }
}

#[test]
fn raw_files_give_their_embedded_preview() {
    let Some(raw) = formats("raw") else { return };
    let cases = [
        ("photoprism/canon_eos_6d.dng", RawKind::Dng, (1024, 683)),
        (
            "exiv2/test/data/Canon-R6-pruned.CR3",
            RawKind::Cr3,
            (1620, 1080),
        ),
    ];
    for (file, kind, size) in cases {
        let d = decode(&raw.join(file));
        assert_eq!(
            (d.format, d.image.dimensions()),
            (Format::Raw(kind), size),
            "{file}"
        );
    }
    // A raw stub with no JPEG inside: a specific "unsupported", naming the container.
    let e = decode_file(
        &raw.join("exif-py/sony_alpha_a7iii_raw_image.ARW"),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, DecodeError::Unsupported { format, .. } if format == "Sony ARW raw"),
        "{e}"
    );
    assert!(e.to_string().contains("no embedded JPEG preview"), "{e}");
    // Extensions that lie: JPEGs named .nef and .heic are read as the JPEGs they are.
    let nef = formats("metadata-extractor-images/nef/Issue 247-1.nef").unwrap();
    assert_eq!(decode(&nef).format, Format::Jpeg);
    let heic = formats("photoprism/internal/photoprism/testdata/wrong.heic").unwrap();
    assert_eq!(decode(&heic).format, Format::Jpeg);
}

/// A decode outcome as a short key for the summary, or a panic if the error is generic.
fn outcome(path: &Path, r: &Result<Decoded, DecodeError>) -> String {
    match r {
        Ok(d) => format!("ok {}", d.format.id()),
        Err(DecodeError::NotAnImage {
            detected: Some(what),
        }) => format!("not an image: {what}"),
        Err(DecodeError::NotAnImage { detected: None }) => {
            panic!(
                "{}: generic failure: {}",
                path.display(),
                r.as_ref().unwrap_err()
            )
        }
        Err(DecodeError::Unsupported { format, .. }) => format!("unsupported {format}"),
        Err(DecodeError::Corrupt { format, .. }) => format!("corrupt {}", format.id()),
        Err(DecodeError::TooLarge { limit, .. }) => format!("too large ({})", limit.field()),
        Err(e @ DecodeError::Io { .. }) => panic!("{e}"),
    }
}

#[test]
fn every_formats_and_exif_file_is_decoded_or_has_a_specific_reason() {
    let Some(corpus) = common::shared("corpus", TEST) else {
        return;
    };
    let mut files = Vec::new();
    for dir in ["formats", "exif"] {
        let mut stack = vec![corpus.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                match e.path() {
                    p if p.is_dir() => stack.push(p),
                    p => files.push(p),
                }
            }
        }
    }
    files.sort();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let (mut photos, mut photo_ok) = (0, 0);
    for f in &files {
        let r = decode_file(f, &Limits::default());
        let ext = f.extension().map(|e| e.to_string_lossy().to_lowercase());
        // Files named as a format phototag reads, for the coverage figure.
        let named_supported = matches!(
            ext.as_deref(),
            Some("jpg" | "jpeg" | "png" | "heic" | "heif" | "avif" | "webp" | "gif" | "mpo")
        );
        if named_supported {
            photos += 1;
            photo_ok += r.is_ok() as usize;
        }
        *counts.entry(outcome(f, &r)).or_default() += 1;
    }
    for (k, n) in &counts {
        println!("{n:>5}  {k}");
    }
    println!(
        "{photo_ok} of {photos} files named .jpg/.png/.heic/.heif/.avif/.webp/.gif/.mpo decode"
    );
    let heif_ok = counts.get("ok heif").copied().unwrap_or(0);
    let avif_ok = counts.get("ok avif").copied().unwrap_or(0);
    assert!(
        heif_ok >= 15 && avif_ok >= 25,
        "HEIF {heif_ok}, AVIF {avif_ok}"
    );
    // Measured: all 621 of them. Allow 2% for test files added later that are broken on
    // purpose; the outcome counts above say which.
    assert!(photo_ok * 100 >= photos * 98, "{photo_ok} of {photos}");
}
