//! A small deterministic mutator for the stable fuzz pass: what libFuzzer does in spirit (bit
//! flips, interesting bytes, insertions, deletions, duplication, splicing), without coverage
//! feedback. It turns the seeds of a target into many nearby inputs, reproducibly.

use crate::input::Rng;

/// Bytes that tend to sit on boundaries of the formats under test: varint continuation bits,
/// enum tags, lengths around 64 (the identifier prefix) and the extremes.
const INTERESTING: &[u8] = &[
    0, 1, 2, 3, 0x20, 0x3f, 0x40, 0x41, 0x7f, 0x80, 0x81, 0xfe, 0xff,
];

/// Returns a mutation of `input`: one to four edits, drawn from `rng`, with `other` available
/// for splicing. The result is at most `max_len` bytes long.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8], max_len: usize) -> Vec<u8> {
    let mut out = input.to_vec();
    let edits = 1 + rng.below(4);
    for _ in 0..edits {
        edit(rng, &mut out, other);
    }
    out.truncate(max_len);
    out
}

fn edit(rng: &mut Rng, out: &mut Vec<u8>, other: &[u8]) {
    let len = out.len();
    match rng.below(9) {
        // Flip one bit.
        0 if len > 0 => {
            let at = rng.below(len);
            out[at] ^= 1 << rng.below(8);
        }
        // Overwrite a byte with an interesting value.
        1 if len > 0 => {
            let at = rng.below(len);
            out[at] = INTERESTING[rng.below(INTERESTING.len())];
        }
        // Overwrite a byte with a random value.
        2 if len > 0 => {
            let at = rng.below(len);
            out[at] = rng.next_u64() as u8;
        }
        // Insert a few random or interesting bytes.
        3 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n)
                .map(|_| {
                    if rng.one_in(2) {
                        INTERESTING[rng.below(INTERESTING.len())]
                    } else {
                        rng.next_u64() as u8
                    }
                })
                .collect();
            out.splice(at..at, bytes);
        }
        // Delete a run.
        4 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(16));
            out.drain(at..at + n);
        }
        // Duplicate a run (repeats parts, entries, lengths).
        5 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            let run = out[at..at + n].to_vec();
            let to = rng.below(len + 1);
            out.splice(to..to, run);
        }
        // Splice: our head, the other input's tail.
        6 if !other.is_empty() => {
            let cut = rng.below(len + 1);
            let from = rng.below(other.len());
            out.truncate(cut);
            out.extend_from_slice(&other[from..]);
        }
        // Truncate.
        7 if len > 0 => {
            out.truncate(rng.below(len));
        }
        // Add or subtract a small amount from a byte (off-by-one lengths and counts).
        _ if len > 0 => {
            let at = rng.below(len);
            let delta = 1 + rng.below(4) as u8;
            out[at] = if rng.one_in(2) {
                out[at].wrapping_add(delta)
            } else {
                out[at].wrapping_sub(delta)
            };
        }
        _ => out.push(rng.next_u64() as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_deterministic_and_bounded() {
        let seed = b"0123456789abcdef".to_vec();
        let run = |s| {
            let mut rng = Rng::new(s);
            (0..200)
                .map(|_| mutate(&mut rng, &seed, b"xyz", 24))
                .collect::<Vec<_>>()
        };
        let a = run(1);
        assert_eq!(a, run(1));
        assert!(a.iter().all(|m| m.len() <= 24));
        assert!(a.iter().any(|m| m != &seed), "mutations change the input");
        assert!(
            a.iter().any(|m| m.len() != seed.len()),
            "lengths change too"
        );
    }
}
