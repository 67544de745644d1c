//! Verifying the signatures of many entries at once, with exactly the verdicts of
//! [`SignedEntry::verify`].
//!
//! One-by-one strict verification ([`ed25519_dalek::VerifyingKey::verify_strict`]) accepts a
//! signature `(R, S)` on message `M` under key `A` iff `S` is a canonical scalar, neither `R`
//! nor `A` has small order, and the encoding of `[S]B - [k]A` is exactly the bytes of `R`, where
//! `k = SHA-512(R ‖ A ‖ M) mod ℓ`. That equation is *cofactorless*: a signature whose `R` carries
//! a torsion component fails it, whereas a cofactored check would let it through.
//!
//! A batch replaces m double-scalar multiplications by one multi-scalar multiplication of
//! `Σ zᵢ([Sᵢ]B − Rᵢ − [kᵢ]Aᵢ)` with random 128-bit `zᵢ`. Alone that is *not* as strict: a
//! torsion component of some `Rᵢ` survives in the sum only if `zᵢ` does not annihilate it, which
//! fails with probability up to 1/2 (and ed25519-dalek's own `verify_batch` derives its `zᵢ`
//! deterministically from the inputs, so a signer can grind for a batch that lets a non-strict
//! signature through). This module closes the gap:
//!
//! * Cheap checks first, per signature, exactly as `verify_strict` orders them: canonical `S`,
//!   `R` that decompresses, is canonically encoded and has no small order, `A` without small
//!   order. Keys are checked once per distinct key per batch, including that they are
//!   torsion-free (an honest key always is); an entry with any anomaly leaves the fast path.
//! * With every `A` torsion-free, the cofactorless equation of signature i holds iff its
//!   prime-order part holds and `Rᵢ` is torsion-free. The batch sum checks the first (a false
//!   accept needs the random `zᵢ` to cancel a nonzero prime-order combination: probability about
//!   2⁻¹²⁸). [`TORSION_ROUNDS`] random subset sums of the `Rᵢ`, each multiplied by ℓ, check the
//!   second: for a nonzero vector of torsion components a random subset sums to zero with
//!   probability at most 1/2, so all rounds pass with probability at most 2⁻⁶⁴.
//! * The randomness is fresh from the operating system for every batch, so a signer cannot
//!   aim at it. Only the holder of both secret keys can make a signature that passes a
//!   cofactored check but not a strict one, and that holder can already write anything.
//! * Any failure (a cheap check, the batch equation, a torsion round) sends the entries
//!   concerned to one-by-one [`SignedEntry::verify`], whose verdict is the result. A batch of
//!   bad input therefore costs what one-by-one verification costs, never more than twice.
//!
//! Small batches, where the fixed cost of the torsion rounds outweighs the saving, are
//! verified one by one.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, IsIdentity, VartimeMultiscalarMul};
use ranger::Verdicts;
use sha2::{Digest, Sha512};

use crate::{NamespaceId, SignatureCheck};
use crate::{SignedEntry, ValidationConfig, ValidationError, VerifyError};

/// Subset-sum rounds that check the `R` points are torsion-free (a false accept of a signature
/// that strict verification refuses has probability at most 2^-ROUNDS per batch).
pub(crate) const TORSION_ROUNDS: usize = 64;

/// Below this many entries a batch is verified one by one: the torsion rounds cost about as
/// much as 30 single verifications whatever the batch size.
pub(crate) const MIN_BATCH: usize = 48;

/// Bits of a subset label handled per bucket pass (16 buckets).
const DIGIT_BITS: usize = 4;

/// Verifies the signatures of every entry, on up to `threads` threads. Result `i` is exactly
/// what `entries[i].verify()` returns (see the module documentation for the probability
/// bound of the batch equation).
///
/// The entries form one batch whatever the number of threads: the threads share its work
/// (decoding and hashing, the multi-scalar multiplication, the torsion rounds), so its fixed
/// cost is paid once.
pub(crate) fn verify_all(
    entries: &[&SignedEntry],
    threads: NonZeroUsize,
) -> Vec<Result<(), VerifyError>> {
    let threads = threads
        .get()
        .min(entries.len().div_ceil(MIN_BATCH / 2))
        .max(1);
    if entries.len() < MIN_BATCH {
        return entries.iter().map(|e| e.verify()).collect();
    }
    let keys = Keys::collect(entries, threads);
    let prepared: Vec<Option<[Sig; 2]>> = par_chunks(entries, threads, |chunk| {
        chunk.iter().map(|e| prepare(e, &keys)).collect()
    });
    let sigs: Vec<&Sig> = prepared.iter().flatten().flatten().collect();
    let holds = batch_holds(&keys, &sigs, threads);
    let slow: Vec<bool> = prepared.iter().map(|p| !holds || p.is_none()).collect();
    if !slow.contains(&true) {
        return vec![Ok(()); entries.len()];
    }
    let indexed: Vec<(&SignedEntry, bool)> = entries.iter().copied().zip(slow).collect();
    par_chunks(&indexed, threads, |chunk| {
        chunk
            .iter()
            .map(|(e, slow)| if *slow { e.verify() } else { Ok(()) })
            .collect()
    })
}

/// `f` over consecutive chunks of `items` on up to `threads` scoped threads, results in order.
fn par_chunks<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() < 2 {
        return f(items);
    }
    let per = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|chunk| scope.spawn(move || f(chunk)))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| match handle.join() {
                Ok(results) => results,
                // Verification does not panic on any input; should it, the worker's own
                // panic is re-raised here rather than turned into a verdict.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// Entries per chunk of [`validate_streamed`]: one batch each.
pub(crate) const STREAM_CHUNK: usize = 256;

/// [`validate_all`] on `threads` background threads, a chunk of [`STREAM_CHUNK`] entries at a
/// time, the verdicts handed out in order as their chunks complete. Fewer than two chunks are
/// checked at once, on the calling thread; only the threads get copies of the entries.
pub(crate) fn validate_streamed(
    entries: &[&SignedEntry],
    expected: NamespaceId,
    now_micros: u64,
    config: ValidationConfig,
    threads: NonZeroUsize,
) -> Verdicts<ValidationError> {
    let chunks = entries.len().div_ceil(STREAM_CHUNK);
    let inline = || {
        Verdicts::ready(validate_all(
            entries, expected, now_micros, &config, threads,
        ))
    };
    if chunks < 2 {
        return inline();
    }
    let owned: Arc<Vec<SignedEntry>> = Arc::new(entries.iter().map(|&e| e.clone()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<(usize, Vec<Result<(), ValidationError>>)>();
    let mut workers = 0;
    for _ in 0..threads.get().min(chunks) {
        let (entries, next, tx) = (Arc::clone(&owned), Arc::clone(&next), tx.clone());
        let worker = move || {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let start = i.saturating_mul(STREAM_CHUNK);
                if start >= entries.len() {
                    break;
                }
                let end = (start + STREAM_CHUNK).min(entries.len());
                let refs: Vec<&SignedEntry> = entries[start..end].iter().collect();
                let verdicts =
                    validate_all(&refs, expected, now_micros, &config, NonZeroUsize::MIN);
                // The receiver is gone when the session ended early: stop.
                if tx.send((i, verdicts)).is_err() {
                    break;
                }
            }
        };
        if std::thread::Builder::new()
            .name("docsync-verify".into())
            .spawn(worker)
            .is_ok()
        {
            workers += 1;
        }
    }
    drop(tx);
    if workers == 0 {
        return inline();
    }
    // Chunks arrive in any order; they are handed out in order.
    let mut arrived: BTreeMap<usize, Vec<Result<(), ValidationError>>> = BTreeMap::new();
    let mut want = 0;
    Verdicts::streamed(move || {
        if want >= chunks {
            return None;
        }
        loop {
            if let Some(verdicts) = arrived.remove(&want) {
                want += 1;
                return Some(verdicts);
            }
            // Every worker is gone without this chunk (one panicked): no more verdicts, which
            // the session reports as too few.
            let (i, verdicts) = rx.recv().ok()?;
            arrived.insert(i, verdicts);
        }
    })
}

/// [`SignedEntry::validate`] for every entry: the cheap checks per entry, then the signatures
/// of the entries that passed them in a batch.
pub(crate) fn validate_all(
    entries: &[&SignedEntry],
    expected: NamespaceId,
    now_micros: u64,
    config: &ValidationConfig,
    threads: NonZeroUsize,
) -> Vec<Result<(), ValidationError>> {
    let mut results: Vec<Result<(), ValidationError>> = entries
        .iter()
        .map(|e| e.validate(expected, now_micros, config, SignatureCheck::Skip))
        .collect();
    let (passed, index): (Vec<&SignedEntry>, Vec<usize>) = entries
        .iter()
        .zip(&results)
        .enumerate()
        .filter(|(_, (_, r))| r.is_ok())
        .map(|(i, (e, _))| (*e, i))
        .unzip();
    for (verdict, i) in verify_all(&passed, threads).into_iter().zip(index) {
        if let Err(error) = verdict {
            results[i] = Err(ValidationError::BadSignature(error));
        }
    }
    results
}

/// The distinct keys of a batch. A key is usable on the fast path if it decompresses, has no
/// small order and is torsion-free (an honest key always is).
struct Keys {
    index: HashMap<[u8; 32], usize>,
    points: Vec<Option<EdwardsPoint>>,
}

impl Keys {
    fn collect(entries: &[&SignedEntry], threads: usize) -> Self {
        let mut index = HashMap::new();
        let mut distinct = Vec::new();
        for e in entries {
            for key in [*e.namespace().as_bytes(), *e.author().as_bytes()] {
                index.entry(key).or_insert_with(|| {
                    distinct.push(key);
                    distinct.len() - 1
                });
            }
        }
        let points = par_chunks(&distinct, threads, |chunk| {
            chunk
                .iter()
                .map(|bytes| {
                    CompressedEdwardsY(*bytes)
                        .decompress()
                        .filter(|p| !p.is_small_order() && p.is_torsion_free())
                })
                .collect()
        });
        Self { index, points }
    }

    /// The key's index if it is usable on the fast path.
    fn usable(&self, bytes: &[u8; 32]) -> Option<usize> {
        let i = *self.index.get(bytes)?;
        self.points.get(i)?.as_ref().map(|_| i)
    }
}

/// One signature on the fast path.
struct Sig {
    key: usize,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// Both signatures of an entry on the fast path, or `None` if the entry must be verified one
/// by one.
fn prepare(entry: &SignedEntry, keys: &Keys) -> Option<[Sig; 2]> {
    let msg = entry.entry().signed_bytes();
    let signature = entry.signature();
    let namespace = fast_sig(
        keys,
        entry.namespace().as_bytes(),
        signature.namespace(),
        &msg,
    )?;
    let author = fast_sig(keys, entry.author().as_bytes(), signature.author(), &msg)?;
    Some([namespace, author])
}

/// The signature on the fast path, or `None` if it must be verified one by one.
fn fast_sig(keys: &Keys, key_bytes: &[u8; 32], sig_bytes: &[u8; 64], msg: &[u8]) -> Option<Sig> {
    let key = keys.usable(key_bytes)?;
    let (r_bytes, s_bytes) = sig_bytes.split_at(32);
    let r_bytes: [u8; 32] = r_bytes.try_into().ok()?;
    let s_bytes: [u8; 32] = s_bytes.try_into().ok()?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    if !canonical_y(&r_bytes) {
        return None;
    }
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    if r.is_small_order() {
        return None;
    }
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(key_bytes);
    h.update(msg);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    Some(Sig { key, r, s, k })
}

/// Whether the 255-bit y coordinate of an encoded point is below p = 2^255 - 19 (strict
/// verification compares encodings, so a non-canonical `R` never verifies).
fn canonical_y(bytes: &[u8; 32]) -> bool {
    let top = bytes[31] & 0x7f == 0x7f;
    let middle = bytes[1..31].iter().all(|&b| b == 0xff);
    !(top && middle && bytes[0] >= 0xed)
}

/// The batch equation and the torsion rounds over the fast-path signatures.
fn batch_holds(keys: &Keys, sigs: &[&Sig], threads: usize) -> bool {
    if sigs.is_empty() {
        return true;
    }
    let mut random = vec![0u8; sigs.len() * 24];
    if getrandom::fill(&mut random).is_err() {
        // Without fresh randomness the batch proves nothing: verify one by one.
        return false;
    }
    let (weights, labels) = random.split_at(sigs.len() * 16);
    let weights: Vec<Scalar> = weights
        .chunks_exact(16)
        .map(|c| Scalar::from(u128::from_le_bytes(c.try_into().unwrap_or_default())))
        .collect();
    let labels: Vec<u64> = labels
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect();

    // Σ zᵢ([Sᵢ]B − Rᵢ − [kᵢ]Aᵢ) with the B and A terms gathered: [Σ zᵢSᵢ]B − Σ zᵢRᵢ − Σ_A [Σ zᵢkᵢ]A.
    let mut b_coefficient = Scalar::ZERO;
    let mut key_coefficients = vec![Scalar::ZERO; keys.points.len()];
    for (sig, z) in sigs.iter().zip(&weights) {
        b_coefficient += z * sig.s;
        key_coefficients[sig.key] -= z * sig.k;
    }
    let fixed = EdwardsPoint::vartime_multiscalar_mul(
        std::iter::once(b_coefficient).chain(key_coefficients),
        std::iter::once(ED25519_BASEPOINT_POINT)
            .chain(keys.points.iter().map(|p| p.unwrap_or_default())),
    );
    let terms: Vec<(&&Sig, &Scalar)> = sigs.iter().zip(&weights).collect();
    let partial: EdwardsPoint = par_chunks(&terms, threads, |chunk| {
        vec![EdwardsPoint::vartime_multiscalar_mul(
            chunk.iter().map(|(_, z)| -**z),
            chunk.iter().map(|(sig, _)| sig.r),
        )]
    })
    .into_iter()
    .sum();
    if !(fixed + partial).is_identity() {
        return false;
    }
    let digits: Vec<usize> = (0..TORSION_ROUNDS / DIGIT_BITS).collect();
    par_chunks(&digits, threads, |chunk| {
        vec![
            chunk
                .iter()
                .all(|&digit| torsion_rounds_pass(sigs, &labels, digit)),
        ]
    })
    .into_iter()
    .all(|pass| pass)
}

/// The [`DIGIT_BITS`] torsion rounds of one digit of the labels: round j checks that
/// `ℓ · Σ_{i in subset j} Rᵢ` is the identity, subset j being the signatures whose label has bit
/// j set. The points are added into 16 buckets by that digit of their label, and each round
/// sums the buckets whose digit has the round's bit set.
fn torsion_rounds_pass(sigs: &[&Sig], labels: &[u64], digit: usize) -> bool {
    const BUCKETS: usize = 1 << DIGIT_BITS;
    let shift = digit * DIGIT_BITS;
    let mut buckets = [EdwardsPoint::identity(); BUCKETS];
    for (sig, label) in sigs.iter().zip(labels) {
        let b = ((label >> shift) as usize) & (BUCKETS - 1);
        buckets[b] += sig.r;
    }
    (0..DIGIT_BITS).all(|bit| {
        let sum: EdwardsPoint = buckets
            .iter()
            .enumerate()
            .filter(|(b, _)| b & (1 << bit) != 0)
            .map(|(_, p)| p)
            .sum();
        torsion_free(sum)
    })
}

/// Whether `[ℓ]P` is the identity, in variable time (`P` is public): `ℓ = 2²⁵² + δ` as two
/// scalars below ℓ sharing one chain of doublings.
fn torsion_free(p: EdwardsPoint) -> bool {
    /// 2²⁵², little-endian.
    const TWO_252: [u8; 32] = {
        let mut b = [0u8; 32];
        b[31] = 0x10;
        b
    };
    /// δ = ℓ − 2²⁵² = 27742317777372353535851937790883648493, little-endian.
    const DELTA: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let scalars = [
        Scalar::from_bytes_mod_order(TWO_252),
        Scalar::from_bytes_mod_order(DELTA),
    ];
    EdwardsPoint::vartime_multiscalar_mul(scalars, [p, p]).is_identity()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_y_matches_the_field_bound() {
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(!canonical_y(&p), "p itself is not canonical");
        let mut below = p;
        below[0] = 0xec;
        assert!(canonical_y(&below), "p - 1 is canonical");
        let mut signed = p;
        signed[31] = 0xff;
        assert!(!canonical_y(&signed), "the sign bit does not matter");
        below[31] = 0xff;
        assert!(canonical_y(&below));
        assert!(canonical_y(&[0; 32]));
    }

    #[test]
    fn torsion_free_agrees_with_the_constant_time_check() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let p = EdwardsPoint::mul_base(&Scalar::from(987_654_321u64));
        assert!(torsion_free(p) && p.is_torsion_free());
        assert!(torsion_free(EdwardsPoint::identity()));
        for t in &EIGHT_TORSION[1..] {
            assert!(!torsion_free(p + t));
            assert_eq!(torsion_free(p + t), (p + t).is_torsion_free());
            assert!(!torsion_free(*t));
        }
    }
}
