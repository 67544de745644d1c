//! The fingerprint of a set of entries: an XOR accumulator seeded with `blake3("")`.

use std::fmt;
use std::ops::{BitXor, BitXorAssign};

/// A 32-byte set fingerprint.
///
/// The fingerprint of a range is `EMPTY ^ f(e1) ^ f(e2) ^ ...` where `f` is the per-entry
/// fingerprint of [`RangeEntry::fingerprint`](crate::RangeEntry::fingerprint). Seeding with
/// [`Fingerprint::EMPTY`] (the BLAKE3 hash of the empty input) instead of zero is what iroh-docs
/// does, so the fingerprint of the empty set is `EMPTY`, and peers use that value to say "I have
/// nothing in this range".
///
/// XOR is its own inverse, which lets a store compute the fingerprint of `[x, y)` from two prefix
/// aggregates; the price is that the function is linear (see the security note in the crate docs).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of the empty set: `blake3("")`.
    pub const EMPTY: Fingerprint = Fingerprint([
        0xaf, 0x13, 0x49, 0xb9, 0xf5, 0xf9, 0xa1, 0xa6, 0xa0, 0x40, 0x4d, 0xea, 0x36, 0xdc, 0xc9,
        0x49, 0x9b, 0xcb, 0x25, 0xc9, 0xad, 0xc1, 0x12, 0xb7, 0xcc, 0x9a, 0x93, 0xca, 0xe4, 0x1f,
        0x32, 0x62,
    ]);

    /// The all-zero value: the identity of XOR, used for aggregates that are not yet seeded.
    pub const ZERO: Fingerprint = Fingerprint([0; 32]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl BitXor for Fingerprint {
    type Output = Fingerprint;
    fn bitxor(mut self, rhs: Fingerprint) -> Fingerprint {
        self ^= rhs;
        self
    }
}

impl BitXorAssign for Fingerprint {
    fn bitxor_assign(&mut self, rhs: Fingerprint) {
        for (a, b) in self.0.iter_mut().zip(rhs.0.iter()) {
            *a ^= *b;
        }
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_is_an_involution_and_zero_is_identity() {
        let a = Fingerprint([7; 32]);
        let b = Fingerprint([0x5a; 32]);
        assert_eq!(a ^ b ^ b, a);
        assert_eq!(a ^ Fingerprint::ZERO, a);
        assert_ne!(a ^ b, a);
    }

    #[test]
    fn empty_prints_as_blake3_of_nothing() {
        assert_eq!(
            Fingerprint::EMPTY.to_string(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }
}
