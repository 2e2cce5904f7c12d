//! Metadata out of image files stored as they are: a photo attached without
//! preparation (`Store::attach` of a JPEG or PNG, the CLI's `--as-is`)
//! still loses EXIF — GPS position, device serial, times — and every other
//! metadata block, losslessly: the pixels are not touched. Formats whose
//! metadata cannot be removed here (HEIC, TIFF, WebP) are refused rather
//! than stored with it.
//!
//! ```
//! use sambung_core::metadata::{sniff, ImageKind};
//! assert_eq!(sniff(b"\xFF\xD8\xFF\xE0"), Some(ImageKind::Jpeg));
//! assert_eq!(sniff(b"%PDF-1.7"), None);
//! ```

use crate::error::Error;

/// Image formats recognised by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG.
    Png,
    /// HEIC/HEIF, TIFF or WebP: metadata this crate cannot remove.
    Unstrippable,
}

/// The image format of `head` (the first 12 bytes or more), if any.
pub fn sniff(head: &[u8]) -> Option<ImageKind> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageKind::Jpeg)
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageKind::Png)
    } else if head.starts_with(b"II*\0")
        || head.starts_with(b"MM\0*")
        || (head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP")
        || (head.len() >= 12
            && &head[4..8] == b"ftyp"
            && matches!(
                &head[8..12],
                b"heic" | b"heix" | b"hevc" | b"heim" | b"heis" | b"mif1" | b"msf1" | b"avif"
            ))
    {
        Some(ImageKind::Unstrippable)
    } else {
        None
    }
}

fn damaged(what: &str) -> Error {
    Error::Photo(format!("the {what} is damaged"))
}

/// `bytes` without metadata: for JPEG every APPn segment but JFIF's (APP0)
/// and Adobe's colour transform (APP14), and comments; for PNG every
/// ancillary chunk but the ones that change how pixels look (transparency,
/// gamma, chromaticity, sRGB, ICC, significant bits, background, pixel
/// size). Other bytes are returned as they are.
pub fn strip(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    match sniff(bytes) {
        Some(ImageKind::Jpeg) => strip_jpeg(bytes),
        Some(ImageKind::Png) => strip_png(bytes),
        Some(ImageKind::Unstrippable) => Err(Error::Photo(
            "HEIC, TIFF and WebP images carry metadata that cannot be removed here; convert them to JPEG on the phone first".into(),
        )),
        None => Ok(bytes.to_vec()),
    }
}

fn strip_jpeg(b: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..2]);
    let mut i = 2;
    loop {
        if i + 2 > b.len() || b[i] != 0xFF {
            return Err(damaged("JPEG"));
        }
        let marker = b[i + 1];
        match marker {
            // Fill bytes before a marker.
            0xFF => i += 1,
            // Start of scan: its header, then entropy-coded data up to the
            // next marker (progressive files have several scans, with
            // segments between them).
            0xDA => {
                if i + 4 > b.len() {
                    return Err(damaged("JPEG"));
                }
                let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
                let mut j = i + 2 + len;
                if len < 2 || j > b.len() {
                    return Err(damaged("JPEG"));
                }
                while j + 1 < b.len()
                    && !(b[j] == 0xFF && b[j + 1] != 0x00 && !(0xD0..=0xD7).contains(&b[j + 1]))
                {
                    j += 1;
                }
                if j + 1 >= b.len() {
                    // No end-of-image marker: a truncated file, kept as is.
                    out.extend_from_slice(&b[i..]);
                    return Ok(out);
                }
                out.extend_from_slice(&b[i..j]);
                i = j;
            }
            // End of image: whatever a camera appended after it (a second
            // JPEG with its own EXIF, a gain map, a motion-photo video with
            // a location) stays behind.
            0xD9 => {
                out.extend_from_slice(&b[i..i + 2]);
                return Ok(out);
            }
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&b[i..i + 2]);
                i += 2;
            }
            _ => {
                if i + 4 > b.len() {
                    return Err(damaged("JPEG"));
                }
                let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
                let end = i + 2 + len;
                if len < 2 || end > b.len() {
                    return Err(damaged("JPEG"));
                }
                let metadata = (0xE1..=0xED).contains(&marker) || marker == 0xEF || marker == 0xFE;
                if !metadata {
                    out.extend_from_slice(&b[i..end]);
                }
                i = end;
            }
        }
    }
}

fn strip_png(b: &[u8]) -> Result<Vec<u8>, Error> {
    const KEEP: [&[u8; 4]; 8] = [
        b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"bKGD", b"pHYs",
    ];
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..8]);
    let mut i = 8;
    while i < b.len() {
        if i + 12 > b.len() {
            return Err(damaged("PNG"));
        }
        let len = u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
        let end = i
            .checked_add(12)
            .and_then(|n| n.checked_add(len))
            .filter(|&e| e <= b.len())
            .ok_or_else(|| damaged("PNG"))?;
        let kind = &b[i + 4..i + 8];
        // Critical chunks (upper-case first letter) always stay.
        let critical = kind[0].is_ascii_uppercase();
        if critical || KEEP.iter().any(|k| k.as_slice() == kind) {
            out.extend_from_slice(&b[i..end]);
        }
        i = end;
        if kind == b"IEND" {
            break;
        }
    }
    Ok(out)
}

#[cfg(all(test, feature = "photos"))]
mod tests {
    use super::*;

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn jpeg_metadata_goes_and_the_pixels_stay() {
        let input = crate::photo::fixtures::jpeg_with_gps(64, 48, 1, "GPS-LOSSLESS-90");
        assert!(contains(&input, b"GPS-LOSSLESS-90"));
        let out = strip(&input).unwrap();
        assert!(!contains(&out, b"GPS-LOSSLESS-90") && !contains(&out, b"Exif"));
        let a = image::load_from_memory(&input).unwrap().to_rgb8();
        let b = image::load_from_memory(&out).unwrap().to_rgb8();
        assert_eq!(a, b, "not re-encoded: the same pixels");
        // A comment segment goes too.
        let mut commented = out[..2].to_vec();
        commented.extend_from_slice(&[0xFF, 0xFE, 0, 10]);
        commented.extend_from_slice(b"GPS-COMM");
        commented.extend_from_slice(&out[2..]);
        let again = strip(&commented).unwrap();
        assert_eq!(again, out);
        // What a camera appends after the end of the image (here a second
        // JPEG with its own EXIF) stays behind.
        let mut appended = input.clone();
        appended.extend_from_slice(&crate::photo::fixtures::jpeg_with_gps(
            8,
            8,
            1,
            "GPS-TRAILER-3",
        ));
        let stripped = strip(&appended).unwrap();
        assert!(!contains(&stripped, b"GPS-TRAILER-3"));
        assert_eq!(stripped, out);
    }

    #[test]
    fn progressive_jpegs_lose_metadata_between_scans() {
        // Two scans with an APP1 segment between them (as some writers do).
        let scan = |data: &[u8]| {
            let mut v = vec![0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0];
            v.extend_from_slice(data);
            v
        };
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, b'J', b'F'];
        jpeg.extend(scan(&[1, 2, 0xFF, 0x00, 3, 0xFF, 0xD0, 4]));
        let mut app1 = vec![0xFF, 0xE1, 0, 15];
        app1.extend_from_slice(b"Exif\0\0GPS-MID");
        jpeg.extend_from_slice(&app1);
        jpeg.extend(scan(&[5, 6]));
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        let out = strip(&jpeg).unwrap();
        assert!(!contains(&out, b"GPS-MID"));
        let mut expected = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, b'J', b'F'];
        expected.extend(scan(&[1, 2, 0xFF, 0x00, 3, 0xFF, 0xD0, 4]));
        expected.extend(scan(&[5, 6]));
        expected.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(out, expected);
    }

    #[test]
    fn png_text_goes_and_the_pixels_stay() {
        let img =
            image::RgbImage::from_fn(8, 4, |x, y| image::Rgb([x as u8 * 30, y as u8 * 60, 7]));
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        // A tEXt chunk with a location, after IHDR.
        let text = b"Location\0-6.17,106.82 PNG-MARK";
        let mut chunk = (text.len() as u32).to_be_bytes().to_vec();
        chunk.extend_from_slice(b"tEXt");
        chunk.extend_from_slice(text);
        chunk.extend_from_slice(&[0, 0, 0, 0]);
        let ihdr_end = 8 + 12 + 13;
        let mut input = png[..ihdr_end].to_vec();
        input.extend_from_slice(&chunk);
        input.extend_from_slice(&png[ihdr_end..]);
        let out = strip(&input).unwrap();
        assert!(!contains(&out, b"PNG-MARK"));
        assert_eq!(out, png);
    }

    #[test]
    fn damaged_and_unstrippable_images_are_refused_and_others_pass() {
        for bad in [
            &b"\xFF\xD8\xFF\xE1\xFF\xFF"[..],
            b"\xFF\xD8\xFF\xE0\x00",
            b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHD",
            b"\x89PNG\r\n\x1a\n\xFF\xFF\xFF\xFFIHDR",
            b"\0\0\0\x18ftypheic\0\0\0\0",
            b"II*\0\x08\0\0\0",
            b"RIFF\0\0\0\0WEBPVP8 ",
        ] {
            assert!(matches!(strip(bad), Err(Error::Photo(_))), "{bad:?}");
        }
        assert_eq!(strip(b"%PDF-1.7 ...").unwrap(), b"%PDF-1.7 ...");
        assert_eq!(strip(b"").unwrap(), b"");
    }
}
