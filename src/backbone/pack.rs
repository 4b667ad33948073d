//! Packing a product's operand into the panels tract's matrix kernels read.

/// Packs the product's operand: row `k` holds the `positions` values of `src` from
/// `starts[k]`, and tract's `PackedFormat` stores positions in panels of `r`, each panel
/// `panel_len` values long with row `k` at `k·r` (a last, partial panel keeps its unused lanes
/// as they were: zero). Panel by panel, so the writes run straight through the buffer; copies
/// go `r` values at a time, as fixed-size moves for the panel widths tract's kernels use.
pub(crate) fn pack(
    dst: &mut [f32],
    panel_len: usize,
    r: usize,
    starts: &[usize],
    src: &[f32],
    positions: usize,
) {
    macro_rules! widths {
        ($($w:literal)*) => {
            match r {
                $($w => pack_fixed::<$w>(dst, panel_len, starts, src, positions),)*
                _ => pack_any(dst, panel_len, r, starts, src, positions),
            }
        };
    }
    widths!(1 2 3 4 5 6 8 12 16 24 32 40 48 64 80 128)
}

fn pack_fixed<const R: usize>(
    dst: &mut [f32],
    panel_len: usize,
    starts: &[usize],
    src: &[f32],
    positions: usize,
) {
    let full = positions / R;
    for p in 0..full {
        let panel = &mut dst[p * panel_len..p * panel_len + starts.len() * R];
        for (to, &start) in panel.chunks_exact_mut(R).zip(starts) {
            let from = start + p * R;
            let to: &mut [f32; R] = to.try_into().expect("R values");
            *to = src[from..from + R].try_into().expect("R values");
        }
    }
    // The last, partial panel: the general copy, from where the full panels end.
    let rest = positions - full * R;
    if rest > 0 {
        let dst = &mut dst[full * panel_len..];
        pack_any(dst, panel_len, R, starts, &src[full * R..], rest);
    }
}

fn pack_any(
    dst: &mut [f32],
    panel_len: usize,
    r: usize,
    starts: &[usize],
    src: &[f32],
    positions: usize,
) {
    for p in 0..positions.div_ceil(r) {
        let n = r.min(positions - p * r);
        for (k, &start) in starts.iter().enumerate() {
            let at = p * panel_len + k * r;
            let from = start + p * r;
            dst[at..at + n].copy_from_slice(&src[from..from + n]);
        }
    }
}
