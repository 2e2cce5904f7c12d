//! Photos before they leave the phone: turned upright, downscaled to a
//! size that crosses a 2G link in seconds, and re-encoded — which drops
//! EXIF and every other metadata block, since phone photos carry the GPS
//! position of the home they were taken in. Decoding is bounded, so a
//! hostile file cannot exhaust memory.
//!
//! ```
//! use sambung_core::photo::{prepare, PhotoSettings};
//! let settings = PhotoSettings { max_long_edge: 1280, ..Default::default() };
//! // Anything but a decodable JPEG or PNG is refused with a reason.
//! assert!(prepare(b"not a photo", &settings).is_err());
//! ```

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::error::Error;

/// How photos are prepared for upload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct PhotoSettings {
    /// The longest edge after downscaling, in pixels (never upscaled).
    pub max_long_edge: u32,
    /// JPEG quality of the re-encoded photo, 1–100.
    pub jpeg_quality: u8,
}

impl Default for PhotoSettings {
    fn default() -> Self {
        PhotoSettings {
            max_long_edge: 1600,
            jpeg_quality: 75,
        }
    }
}

/// A photo ready to attach.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The re-encoded bytes (JPEG, no metadata).
    pub bytes: Vec<u8>,
    /// Always `image/jpeg`.
    pub mime: &'static str,
    /// Width after orientation and downscaling.
    pub width: u32,
    /// Height after orientation and downscaling.
    pub height: u32,
}

/// The MIME types [`prepare`] takes (with the other attachment limits).
pub use crate::attachment_limits::PHOTO_MIMES;
use crate::attachment_limits::{MAX_PHOTO_DECODE_BYTES, MAX_PHOTO_SIDE};

fn unusable(reason: &str) -> Error {
    Error::Photo(reason.to_owned())
}

/// Decodes `bytes` (JPEG or PNG), applies the EXIF orientation, downscales
/// so the long edge is at most `settings.max_long_edge`, and re-encodes as
/// JPEG without any metadata.
pub fn prepare(bytes: &[u8], settings: &PhotoSettings) -> Result<Prepared, Error> {
    if settings.max_long_edge == 0 || !(1..=100).contains(&settings.jpeg_quality) {
        return Err(unusable(
            "photo settings need a long edge above 0 and a quality of 1 to 100",
        ));
    }
    if crate::metadata::sniff(bytes) == Some(crate::metadata::ImageKind::Unstrippable) {
        return Err(unusable(
            "HEIC, TIFF and WebP photos cannot be decoded here; convert them to JPEG on the phone first",
        ));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| unusable("the photo could not be read"))?;
    if !matches!(reader.format(), Some(ImageFormat::Jpeg | ImageFormat::Png)) {
        return Err(unusable("only JPEG and PNG photos are taken"));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_PHOTO_SIDE);
    limits.max_image_height = Some(MAX_PHOTO_SIDE);
    limits.max_alloc = Some(MAX_PHOTO_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|_| unusable("the photo is damaged or too large to decode"))?;
    // A photo the camera stored sideways says so in EXIF; EXIF is about to
    // go, so the pixels must turn now.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|_| unusable("the photo is damaged or too large to decode"))?;
    img.apply_orientation(orientation);
    let long = img.width().max(img.height());
    if long > settings.max_long_edge {
        img = img.resize(
            settings.max_long_edge,
            settings.max_long_edge,
            image::imageops::FilterType::Triangle,
        );
    }
    // JPEG has no alpha: flatten onto white (a scanned form stays legible).
    let rgb = if img.color().has_alpha() {
        let rgba = img.to_rgba8();
        let mut rgb = image::RgbImage::new(rgba.width(), rgba.height());
        for (o, p) in rgb.pixels_mut().zip(rgba.pixels()) {
            let a = u16::from(p[3]);
            for c in 0..3 {
                o[c] = ((u16::from(p[c]) * a + 255 * (255 - a)) / 255) as u8;
            }
        }
        rgb
    } else {
        img.to_rgb8()
    };
    let mut out = Vec::new();
    let encoder =
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, settings.jpeg_quality);
    rgb.write_with_encoder(encoder)
        .map_err(|_| unusable("the photo could not be re-encoded"))?;
    Ok(Prepared {
        width: rgb.width(),
        height: rgb.height(),
        bytes: out,
        mime: "image/jpeg",
    })
}

/// Test images carrying what phones put in them, for this crate's tests and
/// the end-to-end suite (feature `test-support`).
#[cfg(any(test, feature = "test-support"))]
pub mod fixtures {
    /// A `width`×`height` JPEG whose EXIF block holds an orientation
    /// (1–8), a GPS position (6°10′S 106°49′E) and `marker` as the GPS map
    /// datum, so a test can look for it in whatever leaves the phone.
    pub fn jpeg_with_gps(width: u32, height: u32, orientation: u16, marker: &str) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        });
        let mut jpeg = Vec::new();
        img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut jpeg, 90,
        ))
        .expect("encode a test image");
        let exif = exif(orientation, marker);
        // APP1 right after SOI (FF D8), where cameras put it.
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&exif);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    /// "Exif\0\0" and a little-endian TIFF: IFD0 {Orientation, GPS IFD
    /// pointer}, GPS IFD {LatitudeRef, Latitude, LongitudeRef, Longitude,
    /// MapDatum}.
    fn exif(orientation: u16, marker: &str) -> Vec<u8> {
        let mut t: Vec<u8> = b"II*\0".to_vec();
        t.extend_from_slice(&8u32.to_le_bytes());
        let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
            t.extend_from_slice(&tag.to_le_bytes());
            t.extend_from_slice(&kind.to_le_bytes());
            t.extend_from_slice(&count.to_le_bytes());
            t.extend_from_slice(&value);
        };
        // IFD0 at 8: 2 entries (2 + 24 + 4 bytes) → GPS IFD at 38.
        let gps_at: u32 = 8 + 2 + 2 * 12 + 4;
        t.extend_from_slice(&2u16.to_le_bytes());
        let mut o = [0u8; 4];
        o[..2].copy_from_slice(&orientation.to_le_bytes());
        entry(&mut t, 0x0112, 3, 1, o);
        entry(&mut t, 0x8825, 4, 1, gps_at.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        // GPS IFD: 5 entries, then its data area.
        let data_at = gps_at + 2 + 5 * 12 + 4;
        let lat_at = data_at;
        let lon_at = lat_at + 24;
        let datum_at = lon_at + 24;
        let datum = format!("{marker}\0");
        t.extend_from_slice(&5u16.to_le_bytes());
        entry(&mut t, 0x0001, 2, 2, *b"S\0\0\0");
        entry(&mut t, 0x0002, 5, 3, lat_at.to_le_bytes());
        entry(&mut t, 0x0003, 2, 2, *b"E\0\0\0");
        entry(&mut t, 0x0004, 5, 3, lon_at.to_le_bytes());
        entry(
            &mut t,
            0x0012,
            2,
            datum.len() as u32,
            datum_at.to_le_bytes(),
        );
        t.extend_from_slice(&0u32.to_le_bytes());
        for (d, m) in [(6u32, 10u32), (106, 49)] {
            for (num, den) in [(d, 1u32), (m, 1), (0, 1)] {
                t.extend_from_slice(&num.to_le_bytes());
                t.extend_from_slice(&den.to_le_bytes());
            }
        }
        t.extend_from_slice(datum.as_bytes());
        let mut out = b"Exif\0\0".to_vec();
        out.extend_from_slice(&t);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn gps_and_every_metadata_block_are_gone() {
        let input = fixtures::jpeg_with_gps(400, 300, 1, "GPS-MARKER-7731");
        // Control: the fixture really carries what a phone's photo does.
        assert!(contains(&input, b"GPS-MARKER-7731") && contains(&input, b"Exif\0\0"));
        let mut d = ImageReader::new(Cursor::new(&input))
            .with_guessed_format()
            .unwrap()
            .into_decoder()
            .unwrap();
        assert!(d.exif_metadata().unwrap().is_some());

        let out = prepare(&input, &PhotoSettings::default()).unwrap();
        assert!(!contains(&out.bytes, b"GPS-MARKER-7731"));
        assert!(!contains(&out.bytes, b"Exif"));
        // No APPn segment but JFIF's APP0, and no comment.
        let mut d = ImageReader::new(Cursor::new(&out.bytes))
            .with_guessed_format()
            .unwrap()
            .into_decoder()
            .unwrap();
        assert_eq!(d.exif_metadata().unwrap(), None);
        assert_eq!(d.icc_profile().unwrap(), None);
        let mut i = 2;
        while i + 4 <= out.bytes.len() && out.bytes[i] == 0xFF {
            let marker = out.bytes[i + 1];
            if marker == 0xDA {
                break; // start of scan: no metadata after it
            }
            assert!(
                marker == 0xE0 || !(0xE1..=0xEF).contains(&marker) && marker != 0xFE,
                "metadata segment {marker:#x} left in the photo"
            );
            let len = u16::from_be_bytes([out.bytes[i + 2], out.bytes[i + 3]]) as usize;
            i += 2 + len;
        }
        assert_eq!((out.width, out.height), (400, 300), "never upscaled");
    }

    #[test]
    fn large_photos_shrink_to_the_long_edge_keeping_their_shape() {
        let input = fixtures::jpeg_with_gps(3000, 2000, 1, "m");
        let out = prepare(&input, &PhotoSettings::default()).unwrap();
        assert_eq!((out.width, out.height), (1600, 1067));
        assert!(out.bytes.len() < input.len() / 2, "{}", out.bytes.len());
        let small = PhotoSettings {
            max_long_edge: 300,
            jpeg_quality: 40,
        };
        let out = prepare(&input, &small).unwrap();
        assert_eq!((out.width, out.height), (300, 200));
    }

    #[test]
    fn a_sideways_photo_is_turned_upright_before_exif_goes() {
        // Orientation 6: the camera was turned; viewers rotate 90° clockwise.
        let input = fixtures::jpeg_with_gps(80, 40, 6, "m");
        let out = prepare(&input, &PhotoSettings::default()).unwrap();
        assert_eq!((out.width, out.height), (40, 80));
    }

    #[test]
    fn png_with_alpha_is_flattened_to_jpeg() {
        let img = image::RgbaImage::from_fn(20, 10, |x, _| image::Rgba([0, 0, 0, (x * 12) as u8]));
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let out = prepare(&png, &PhotoSettings::default()).unwrap();
        assert_eq!(out.mime, "image/jpeg");
        let back = image::load_from_memory(&out.bytes).unwrap().to_rgb8();
        // Transparent → white, opaque black → black (JPEG is lossy: roughly).
        assert!(back.get_pixel(0, 5)[0] > 200);
        assert!(back.get_pixel(19, 5)[0] < 60);
    }

    #[test]
    fn bad_input_gets_a_clear_error() {
        let settings = PhotoSettings::default();
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
        for (bytes, says) in [
            (&b""[..], "only JPEG and PNG"),
            (b"not an image at all", "only JPEG and PNG"),
            (b"GIF89a\x01\0\x01\0", "only JPEG and PNG"),
            (heic, "HEIC"),
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF\0", "damaged"),
        ] {
            match prepare(bytes, &settings) {
                Err(Error::Photo(reason)) => assert!(reason.contains(says), "{reason}"),
                other => panic!("expected a photo error, got {other:?}"),
            }
        }
        let zero = PhotoSettings {
            max_long_edge: 0,
            jpeg_quality: 75,
        };
        assert!(matches!(
            prepare(&fixtures::jpeg_with_gps(8, 8, 1, "m"), &zero),
            Err(Error::Photo(_))
        ));
    }

    #[test]
    fn a_huge_declared_size_is_refused_before_decoding() {
        // A PNG header claiming 60,000 × 60,000 pixels (a decompression bomb).
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&60_000u32.to_be_bytes());
        png.extend_from_slice(&60_000u32.to_be_bytes());
        png.extend_from_slice(&[8, 2, 0, 0, 0]);
        let crc = crc32(&png[12..]);
        png.extend_from_slice(&crc.to_be_bytes());
        match prepare(&png, &PhotoSettings::default()) {
            Err(Error::Photo(reason)) => assert!(reason.contains("too large"), "{reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
}
