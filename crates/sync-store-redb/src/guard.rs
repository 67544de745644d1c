//! Containing panics of the storage engine.
//!
//! redb trusts the bytes of its file: on a damaged file it can panic (an `unreachable!`, an
//! `unwrap` on a length, an index out of bounds) instead of returning an error, while opening
//! or in any later read or write. [`contain`] runs a call into redb and turns such a panic into
//! [`StoreError::Corrupt`], so that a node opening a damaged store gets a typed error instead of
//! a crash. The panic hook still runs first (by default it prints the panic message).
//!
//! After a panic redb's state is not trusted any more: the store drops its transaction and its
//! database (with [`discard`], which contains a panic of their destructors too) and answers
//! every later call with the same error (see `RedbStore`'s poisoned state).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use sync_core::StoreError;

/// Runs `f`; a panic in it becomes [`StoreError::Corrupt`] naming `what` was being done.
pub(crate) fn contain<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = panic_message(what, &*payload);
        discard(payload);
        Err(StoreError::Corrupt(message))
    })
}

/// Drops `value`, ignoring a panic of its destructor (after a panic redb's destructors may
/// panic too).
pub(crate) fn discard<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}

/// The message of [`StoreError::Corrupt`] for a panic with `payload` while doing `what`.
pub(crate) fn panic_message(what: &str, payload: &(dyn Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    format!("the storage engine panicked while {what} (the file is probably damaged): {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_corrupt_with_its_message() {
        let err = contain::<()>("testing", || panic!("bad page {}", 7)).unwrap_err();
        let StoreError::Corrupt(message) = err else {
            panic!("not Corrupt: {err:?}");
        };
        assert!(message.contains("while testing"), "{message}");
        assert!(message.contains("bad page 7"), "{message}");
        let err = contain::<()>("testing", || std::panic::panic_any(5u8)).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(m) if m.contains("no message")));
    }

    #[test]
    fn results_pass_through() {
        assert_eq!(contain("testing", || Ok(3)).unwrap(), 3);
        let err = contain::<()>("testing", || Err(StoreError::Corrupt("x".into()))).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(m) if m == "x"));
    }

    #[test]
    fn discard_contains_a_panicking_destructor() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("boom");
            }
        }
        discard(Bomb);
    }
}
