//! Order statistics shared by reports, benchmarks and the viewer's scripted benchmark: one
//! definition of the median and of a percentile for the whole crate.
//!
//! Imports nothing of the crate.

#![warn(missing_docs)]

/// The median of values sorted ascending: the middle value, or the mean of the two middle values
/// for an even count; `None` for no values.
pub fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The nearest-rank percentile of values sorted ascending: the ⌈p/100·n⌉-th smallest (at least the
/// first), always a value that occurs, no interpolation; `None` for no values. `percent` is
/// clamped to 0–100.
pub fn percentile_nearest_rank<T: Copy>(sorted: &[T], percent: f64) -> Option<T> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let percent = if percent.is_nan() { 100.0 } else { percent.clamp(0.0, 100.0) };
    // The small tolerance keeps 0.9·10 = 9.000000000000002 at rank 9, not 10.
    let rank = (percent / 100.0 * n as f64 - 1e-9).ceil().max(1.0) as usize;
    Some(sorted[rank.min(n) - 1])
}

/// `part` of `whole` as a percentage with one decimal, halves rounded up; None for an empty whole.
/// Integer arithmetic, so 1 of 8 is exactly 12.5 and 1 of 3 is 33.3.
pub fn percent_one_decimal(part: usize, whole: usize) -> Option<f64> {
    if whole == 0 {
        return None;
    }
    let (part, whole) = (part as u128, whole as u128);
    let tenths = (part * 2000 + whole) / (2 * whole);
    Some(tenths as f64 / 10.0)
}

/// `values` sorted ascending (total order: NaN last), for [`median`] and
/// [`percentile_nearest_rank`].
pub fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// A hash map for counting in one batch (site codes, slide hashes of the reports being
/// consolidated), with a multiply-rotate hash (Firefox's "FxHash") instead of the default SipHash:
/// several times faster on a million keys. Keys come from report files or registry rows, which
/// sites write: a site crafting colliding slide hashes can slow a consolidation down, never change
/// its figures.
pub type FastMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

/// The hasher of [`FastMap`].
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle_or_the_mean_of_the_two_middles() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[4.0]), Some(4.0));
        assert_eq!(median(&[1.0, 2.0, 9.0]), Some(2.0));
        assert_eq!(median(&[1.0, 2.0, 3.0, 9.0]), Some(2.5));
        assert_eq!(median(&[0.0, 0.0, 30.0, 30.0]), Some(15.0));
    }

    #[test]
    fn percentiles_are_nearest_rank_values() {
        assert_eq!(percentile_nearest_rank::<i64>(&[], 90.0), None);
        assert_eq!(percentile_nearest_rank(&[5], 90.0), Some(5));
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile_nearest_rank(&ten, 90.0), Some(9), "⌈0.9·10⌉ = 9 despite 0.9·10 > 9 in floating point");
        let eleven: Vec<i64> = (1..=11).collect();
        assert_eq!(percentile_nearest_rank(&eleven, 90.0), Some(10));
        assert_eq!(percentile_nearest_rank(&[1, 2, 3, 4, 5, 6, 7, 8, 100], 90.0), Some(100), "never interpolated");
        assert_eq!(percentile_nearest_rank(&ten, 0.0), Some(1));
        assert_eq!(percentile_nearest_rank(&ten, 100.0), Some(10));
        assert_eq!(percentile_nearest_rank(&ten, 250.0), Some(10));
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile_nearest_rank(&hundred, 99.0), Some(99.0));
        assert_eq!(percentile_nearest_rank(&hundred, 50.0), Some(50.0));
    }

    #[test]
    fn percentages_have_one_decimal_with_halves_rounded_up() {
        assert_eq!(percent_one_decimal(0, 0), None);
        assert_eq!(percent_one_decimal(1, 3), Some(33.3));
        assert_eq!(percent_one_decimal(2, 3), Some(66.7));
        assert_eq!(percent_one_decimal(1, 8), Some(12.5));
        assert_eq!(percent_one_decimal(4, 7), Some(57.1));
        assert_eq!(percent_one_decimal(5, 7), Some(71.4));
        // 0.15 % exactly: a half, rounded up (0.15 in floating point is just below 0.15).
        assert_eq!(percent_one_decimal(3, 2000), Some(0.2));
        // 0.125 %: below the half.
        assert_eq!(percent_one_decimal(1, 800), Some(0.1));
        assert_eq!(percent_one_decimal(9999, 10000), Some(100.0));
        assert_eq!(percent_one_decimal(7, 7), Some(100.0));
        assert_eq!(percent_one_decimal(0, 7), Some(0.0));
    }
}
