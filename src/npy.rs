//! Minimal NumPy `.npy` (format 1.0, little-endian `float32`, C order) writing and reading, so
//! embeddings can be dumped for Python tools and reference fixtures read back in tests.

use std::path::Path;

use crate::{Error, Result};

/// Serialises a 2-D `float32` array of `rows × cols` values as `.npy` bytes.
pub fn to_bytes(data: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    assert_eq!(data.len(), rows * cols, "npy data does not match its shape");
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + header length (2) + header + '\n' is padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes a 2-D `float32` array to `path` atomically.
pub fn write(path: &Path, data: &[f32], rows: usize, cols: usize) -> Result<()> {
    crate::atomic::write_bytes(path, &to_bytes(data, rows, cols))
}

/// Reads a little-endian `float32` `.npy` file of any shape; returns the shape and the values.
pub fn read(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes).map_err(|problem| Error::Output {
        path: path.to_path_buf(),
        problem,
    })
}

fn parse(bytes: &[u8]) -> std::result::Result<(Vec<usize>, Vec<f32>), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file".into());
    }
    let (len_bytes, start) = match bytes[6] {
        1 => (2, 10),
        2 | 3 => (4, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header_len = if len_bytes == 2 {
        usize::from(u16::from_le_bytes([bytes[8], bytes[9]]))
    } else {
        bytes
            .get(8..12)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or("truncated header")?
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        return Err(format!(
            "only little-endian float32 C-order arrays are supported, got {header}"
        ));
    }
    let shape_text = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or("header has no shape")?;
    let shape: Vec<usize> = shape_text
        .trim_start_matches([' ', '('])
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape {shape_text}"))
        })
        .collect::<std::result::Result<_, _>>()?;
    let body = &bytes[start + header_len..];
    let count: usize = shape.iter().product();
    if body.len() != count * 4 {
        return Err(format!(
            "shape {shape:?} needs {} bytes of data, found {}",
            count * 4,
            body.len()
        ));
    }
    let values = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((shape, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
        let bytes = to_bytes(&data, 3, 4);
        assert_eq!((bytes.len() - data.len() * 4) % 64, 0);
        let (shape, back) = parse(&bytes).unwrap();
        assert_eq!(shape, vec![3, 4]);
        assert_eq!(back, data);
    }
}
