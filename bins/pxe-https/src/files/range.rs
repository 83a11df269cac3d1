//! HTTP `Range` requests (RFC 9110 §14). Pure.

use std::ops::Range;

/// Most ranges served in one multipart answer; more is answered with the whole file.
///
/// Each range is a seek and at least one read on the blocking pool, so a header with
/// thousands of tiny ranges costs far more than the bytes it asks for. RFC 9110 §14.2 lets a
/// server ignore a `Range` header ("a server MAY ignore the Range header field"), and
/// ignoring it is what a client always handles: it gets the whole representation with
/// `200`. A `416` would claim the ranges cannot be satisfied, which is not true, and clients
/// (iPXE, curl) treat it as a failed download. Boot clients ask for one range, PeerDist for
/// a few.
pub const MAX_RANGES: usize = 16;

/// What to send for a `Range` header on a file of a given length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeAnswer {
    /// Ignore the header and send the whole file (`200`): malformed header, a unit other
    /// than bytes, or too many ranges.
    Full,
    /// Send these ranges (`206`), in request order, overlapping ones merged.
    Partial(Vec<Range<u64>>),
    /// No range overlaps the file (`416` with `Content-Range: bytes */len`).
    Unsatisfiable,
}

/// Interprets `header` for a file of `len` bytes.
///
/// ```
/// # use pxe_https::files::range::{plan, RangeAnswer};
/// assert_eq!(plan("bytes=0-99", 1000), RangeAnswer::Partial([0..100].to_vec()));
/// assert_eq!(plan("bytes=-100", 1000), RangeAnswer::Partial([900..1000].to_vec()));
/// assert_eq!(plan("bytes=1000-", 1000), RangeAnswer::Unsatisfiable);
/// assert_eq!(plan("bytes=5-1", 1000), RangeAnswer::Full);
/// ```
pub fn plan(header: &str, len: u64) -> RangeAnswer {
    let Some((unit, specs)) = header.split_once('=') else {
        return RangeAnswer::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeAnswer::Full;
    }
    let mut ranges = Vec::new();
    let mut count = 0;
    for spec in specs.split(',').map(str::trim) {
        if spec.is_empty() {
            continue;
        }
        count += 1;
        if count > MAX_RANGES {
            return RangeAnswer::Full;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return RangeAnswer::Full;
        };
        let parse = |s: &str| {
            if s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse::<u64>().ok()
            } else {
                None
            }
        };
        match (first.trim(), last.trim()) {
            ("", suffix) => {
                let Some(suffix) = parse(suffix) else {
                    return RangeAnswer::Full;
                };
                if suffix > 0 && len > 0 {
                    ranges.push(len.saturating_sub(suffix)..len);
                }
            }
            (first, "") => {
                let Some(first) = parse(first) else {
                    return RangeAnswer::Full;
                };
                if first < len {
                    ranges.push(first..len);
                }
            }
            (first, last) => {
                let (Some(first), Some(last)) = (parse(first), parse(last)) else {
                    return RangeAnswer::Full;
                };
                if last < first {
                    return RangeAnswer::Full;
                }
                if first < len {
                    ranges.push(first..last.min(len - 1) + 1);
                }
            }
        }
    }
    if count == 0 {
        return RangeAnswer::Full;
    }
    if ranges.is_empty() {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Partial(merge_overlapping(ranges))
}

/// Merges ranges that overlap, so no byte is sent twice (RFC 9110 §14.2 allows
/// this). Keeps request order when nothing overlaps.
fn merge_overlapping(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    let mut sorted = ranges.clone();
    sorted.sort_by_key(|r| r.start);
    let overlaps = sorted.windows(2).any(|w| w[1].start < w[0].end);
    if !overlaps {
        return ranges;
    }
    ranges.clear();
    for range in sorted {
        match ranges.last_mut() {
            Some(last) if range.start < last.end => last.end = last.end.max(range.end),
            _ => ranges.push(range),
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one range in the answer list is the point
    fn edge_cases() {
        assert_eq!(plan("bytes=0-0", 10), RangeAnswer::Partial(vec![0..1]));
        assert_eq!(plan("bytes=9-", 10), RangeAnswer::Partial(vec![9..10]));
        assert_eq!(plan("bytes=5-500", 10), RangeAnswer::Partial(vec![5..10]));
        assert_eq!(plan("bytes=-500", 10), RangeAnswer::Partial(vec![0..10]));
        assert_eq!(plan("bytes=-0", 10), RangeAnswer::Unsatisfiable);
        assert_eq!(plan("bytes=10-20", 10), RangeAnswer::Unsatisfiable);
        assert_eq!(plan("bytes=0-", 0), RangeAnswer::Unsatisfiable);
        assert_eq!(plan("bytes=0-1,4-5", 10), RangeAnswer::Partial(vec![0..2, 4..6]));
        assert_eq!(plan("bytes=4-5,0-1", 10), RangeAnswer::Partial(vec![4..6, 0..2]));
        assert_eq!(plan("bytes=0-5,3-8,20-30", 10), RangeAnswer::Partial(vec![0..9]));
        assert_eq!(plan("bytes=0-1,2-3", 10), RangeAnswer::Partial(vec![0..2, 2..4]));
        assert_eq!(plan("bytes=0-1,1-3", 10), RangeAnswer::Partial(vec![0..4]));
        assert_eq!(plan("items=0-1", 10), RangeAnswer::Full);
        assert_eq!(plan("bytes=a-b", 10), RangeAnswer::Full);
        assert_eq!(plan("bytes=", 10), RangeAnswer::Full);
        assert_eq!(plan("bytes=+1-2", 10), RangeAnswer::Full);
        assert_eq!(
            plan(&format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(",")), 10),
            RangeAnswer::Full
        );
        let most: Vec<String> = (0..MAX_RANGES).map(|i| format!("{}-{}", 2 * i, 2 * i)).collect();
        assert!(matches!(
            plan(&format!("bytes={}", most.join(",")), 100),
            RangeAnswer::Partial(ranges) if ranges.len() == MAX_RANGES
        ));
    }

    proptest! {
        #[test]
        fn partial_ranges_lie_inside_the_file(header in "bytes=[-0-9, ]{0,40}", len in 0u64..100) {
            if let RangeAnswer::Partial(ranges) = plan(&header, len) {
                for range in &ranges {
                    prop_assert!(range.start < range.end && range.end <= len, "{:?} for {}", range, len);
                }
            }
        }

        #[test]
        fn arbitrary_headers_never_panic(header in any::<String>(), len in any::<u64>()) {
            let _ = plan(&header, len);
        }
    }
}
