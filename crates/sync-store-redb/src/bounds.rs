//! Byte-string bounds: prefix ranges and namespace ranges of the flat identifier order.

use std::ops::Bound;

/// The smallest byte string greater than every string that starts with `prefix`: `prefix` with
/// its trailing 0xff bytes removed and its last byte incremented. `None` if there is none (the
/// prefix is empty or all 0xff), in which case the range of the prefix is unbounded above.
///
/// `[01 ff]` gives `[02]`: the key `[02]` is outside the range (iroh-docs' bound kept the
/// trailing byte as `00` and deleted `[02]` with the prefix `[01 ff]`, its W9).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let keep = prefix.iter().rposition(|b| *b != 0xff)?;
    let mut out = prefix[..=keep].to_vec();
    out[keep] += 1;
    Some(out)
}

/// The exclusive upper bound of the strings that start with `prefix`.
pub(crate) fn prefix_end(prefix: &[u8]) -> Bound<Vec<u8>> {
    match prefix_successor(prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    }
}

/// The length of the longest common prefix of `a` and `b`.
pub(crate) fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Borrows a bound.
pub(crate) fn as_slice_bound(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// `a` followed by `b`.
pub(crate) fn concat(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successors() {
        assert_eq!(prefix_successor(&[0x01, 0xff]), Some(vec![0x02]));
        assert_eq!(prefix_successor(&[0x01, 0x02]), Some(vec![0x01, 0x03]));
        assert_eq!(prefix_successor(&[0xfe, 0xff, 0xff]), Some(vec![0xff]));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
        assert_eq!(prefix_successor(&[]), None);
        // Every string with the prefix is below the successor, and [02] is not in the range.
        let end = prefix_successor(&[0x01, 0xff]).unwrap();
        for s in [
            &[0x01, 0xff][..],
            &[0x01, 0xff, 0xff, 0xff],
            &[0x01, 0xff, 0x00],
        ] {
            assert!(s < end.as_slice());
        }
        assert!(&[0x02][..] >= end.as_slice());
    }

    #[test]
    fn common_prefixes() {
        assert_eq!(common_prefix_len(b"foo/bar", b"foo/baz"), 6);
        assert_eq!(common_prefix_len(b"foo", b"foo/baz"), 3);
        assert_eq!(common_prefix_len(b"", b"x"), 0);
    }
}
