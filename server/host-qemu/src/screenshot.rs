//! host-qemu: turns QEMU's `screendump` (binary PPM) into the PNG `vm screenshot` returns, scaled to fit.

use thiserror::Error;

/// Errors decoding a PPM or encoding the PNG.
#[derive(Debug, Error)]
pub enum ScreenshotError {
    /// Not a binary PPM (`P6`), or a malformed header.
    #[error("invalid ppm: {0}")]
    InvalidPpm(&'static str),
    /// A maxval other than 255 (QEMU always writes 8-bit samples).
    #[error("unsupported ppm maxval {0}")]
    UnsupportedMaxval(u32),
    /// Fewer pixel bytes than the header announces.
    #[error("truncated ppm: need {need} pixel bytes, have {have}")]
    Truncated {
        /// Bytes the header announces.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// The PNG encoder failed.
    #[error("png encoding: {0}")]
    Png(#[from] png::EncodingError),
}

/// An 8-bit RGB image, rows top to bottom.
struct Rgb {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

/// Decodes a binary PPM (`P6`, maxval 255, `#` comments allowed in the header),
/// scales it with nearest neighbour to fit a `max × max` square keeping its
/// aspect ratio (never enlarging; `None` or `Some(0)` = no scaling, as minimega's
/// `resize.Thumbnail`), and encodes it as PNG.
pub fn ppm_to_png(ppm: &[u8], max_dimension: Option<u32>) -> Result<Vec<u8>, ScreenshotError> {
    let mut img = parse_ppm(ppm)?;
    if let Some(max) = max_dimension.filter(|&m| m > 0) {
        let (w, h) = thumbnail_size(img.width, img.height, max);
        if (w, h) != (img.width, img.height) {
            img = scale_nearest(&img, w, h);
        }
    }
    encode_png(&img)
}

/// Parses the header and takes the raster that follows it.
fn parse_ppm(data: &[u8]) -> Result<Rgb, ScreenshotError> {
    let mut pos = 0;
    let magic = next_token(data, &mut pos).ok_or(ScreenshotError::InvalidPpm("empty"))?;
    if magic != b"P6" {
        return Err(ScreenshotError::InvalidPpm("not a binary ppm (P6)"));
    }
    let width = header_number(data, &mut pos, "bad width")?;
    let height = header_number(data, &mut pos, "bad height")?;
    let maxval = header_number(data, &mut pos, "bad maxval")?;
    if width == 0 || height == 0 {
        return Err(ScreenshotError::InvalidPpm("zero dimension"));
    }
    if maxval != 255 {
        return Err(ScreenshotError::UnsupportedMaxval(maxval));
    }
    // Exactly one whitespace byte separates the maxval from the raster.
    match data.get(pos) {
        Some(b) if b.is_ascii_whitespace() => pos += 1,
        _ => return Err(ScreenshotError::InvalidPpm("no raster")),
    }
    let need = (width as usize)
        .checked_mul(height as usize)
        .and_then(|n| n.checked_mul(3))
        .ok_or(ScreenshotError::InvalidPpm("dimensions too large"))?;
    let raster = &data[pos..];
    if raster.len() < need {
        return Err(ScreenshotError::Truncated {
            need,
            have: raster.len(),
        });
    }
    Ok(Rgb {
        width,
        height,
        pixels: raster[..need].to_vec(),
    })
}

/// The next header token, skipping whitespace and `#` comments (to end of line).
fn next_token<'a>(data: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    loop {
        match data.get(*pos)? {
            b if b.is_ascii_whitespace() => *pos += 1,
            b'#' => {
                while !matches!(data.get(*pos), None | Some(b'\n' | b'\r')) {
                    *pos += 1;
                }
            }
            _ => break,
        }
    }
    let start = *pos;
    while matches!(data.get(*pos), Some(b) if !b.is_ascii_whitespace() && *b != b'#') {
        *pos += 1;
    }
    Some(&data[start..*pos])
}

fn header_number(data: &[u8], pos: &mut usize, what: &'static str) -> Result<u32, ScreenshotError> {
    let token = next_token(data, pos).ok_or(ScreenshotError::InvalidPpm(what))?;
    std::str::from_utf8(token)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(ScreenshotError::InvalidPpm(what))
}

/// The size `resize.Thumbnail(max, max, …)` picks: unchanged when it fits,
/// else width then height brought down to `max` with integer arithmetic.
fn thumbnail_size(width: u32, height: u32, max: u32) -> (u32, u32) {
    if width <= max && height <= max {
        return (width, height);
    }
    let (mut w, mut h) = (u64::from(width), u64::from(height));
    let max = u64::from(max);
    if w > max {
        h = (h * max / w).max(1);
        w = max;
    }
    if h > max {
        w = (w * max / h).max(1);
        h = max;
    }
    // Both are at most `max`, itself a u32.
    (w as u32, h as u32)
}

/// Nearest-neighbour scaling, sampling each output pixel's centre.
fn scale_nearest(src: &Rgb, width: u32, height: u32) -> Rgb {
    let source_index = |out: u32, out_len: u32, in_len: u32| -> usize {
        let i = (2 * u64::from(out) + 1) * u64::from(in_len) / (2 * u64::from(out_len));
        i.min(u64::from(in_len) - 1) as usize
    };
    let cols: Vec<usize> = (0..width)
        .map(|x| source_index(x, width, src.width))
        .collect();
    let row_len = src.width as usize * 3;
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        let row = &src.pixels[source_index(y, height, src.height) * row_len..][..row_len];
        for &x in &cols {
            pixels.extend_from_slice(&row[x * 3..x * 3 + 3]);
        }
    }
    Rgb {
        width,
        height,
        pixels,
    }
}

fn encode_png(img: &Rgb) -> Result<Vec<u8>, ScreenshotError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, img.width, img.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&img.pixels)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `w × h` P6 whose pixel (x, y) is (x, y, 7), with a comment in the header.
    fn gradient(w: u32, h: u32) -> Vec<u8> {
        let mut ppm = format!("P6\n# made by a test\n{w} {h}\n255\n").into_bytes();
        for y in 0..h {
            for x in 0..w {
                ppm.extend_from_slice(&[x as u8, y as u8, 7]);
            }
        }
        ppm
    }

    fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(png_bytes);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn pixel(buf: &[u8], width: u32, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * width + x) * 3) as usize;
        [buf[i], buf[i + 1], buf[i + 2]]
    }

    #[test]
    fn unscaled_png_keeps_every_pixel() {
        for max in [None, Some(0), Some(100)] {
            let (w, h, buf) = decode(&ppm_to_png(&gradient(8, 4), max).unwrap());
            assert_eq!((w, h), (8, 4));
            assert_eq!(pixel(&buf, w, 5, 3), [5, 3, 7]);
        }
    }

    #[test]
    fn scaling_fits_the_square_and_keeps_aspect_ratio() {
        let (w, h, buf) = decode(&ppm_to_png(&gradient(200, 100), Some(50)).unwrap());
        assert_eq!((w, h), (50, 25));
        // Output (0,0) samples the centre of the first 4×4 block, (49,24) the last.
        assert_eq!(pixel(&buf, w, 0, 0), [2, 2, 7]);
        assert_eq!(pixel(&buf, w, 49, 24), [198, 98, 7]);

        let (w, h, _) = decode(&ppm_to_png(&gradient(30, 120), Some(60)).unwrap());
        assert_eq!((w, h), (15, 60));
    }

    #[test]
    fn extreme_aspect_ratio_keeps_one_pixel() {
        let (w, h, _) = decode(&ppm_to_png(&gradient(200, 1), Some(10)).unwrap());
        assert_eq!((w, h), (10, 1));
    }

    #[test]
    fn comments_may_appear_between_any_header_tokens() {
        let mut ppm = b"P6 #c1\n2 #c2\n1\n#c3\n255\n".to_vec();
        ppm.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        let (w, h, buf) = decode(&ppm_to_png(&ppm, None).unwrap());
        assert_eq!((w, h), (2, 1));
        assert_eq!(buf, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn bad_input_is_rejected() {
        let err = |data: &[u8]| ppm_to_png(data, None).unwrap_err();
        assert!(matches!(err(b""), ScreenshotError::InvalidPpm(_)));
        assert!(matches!(
            err(b"P3\n1 1\n255\n1 2 3"),
            ScreenshotError::InvalidPpm(_)
        ));
        assert!(matches!(
            err(b"P6\nx 1\n255\n"),
            ScreenshotError::InvalidPpm(_)
        ));
        assert!(matches!(
            err(b"P6\n0 1\n255\n"),
            ScreenshotError::InvalidPpm(_)
        ));
        assert!(matches!(
            err(b"P6\n1 1\n65535\n\0\0\0\0\0\0"),
            ScreenshotError::UnsupportedMaxval(65535)
        ));
        assert!(matches!(
            err(b"P6\n2 2\n255\n\0\0\0"),
            ScreenshotError::Truncated { need: 12, have: 3 }
        ));
        assert!(matches!(
            err(b"P6\n1 1\n255"),
            ScreenshotError::InvalidPpm(_)
        ));
    }
}
