//! Panics raised inside redb on damaged files, which `RedbStore` must contain.
//!
//! redb 4.6 trusts the bytes of its file: a single flipped bit in a page header or a table
//! value can reach an `unreachable!()`, an `unwrap()` on a slice length, or an index out of
//! bounds inside redb. `RedbStore` catches such a panic and turns it into
//! `StoreError::Corrupt` (opening fails; a later call poisons the store). The `redb_file`
//! target checks that: [`containing_redb_panics`] runs the target's use of the store and fails
//! if any panic comes out of it.
//!
//! Under cargo-fuzz every panic aborts the process, even one that is caught later: libFuzzer's
//! panic hook aborts before unwinding starts. So a hook installed once here skips the previous
//! hook (libFuzzer's aborting one, or the printing one in tests) for a panic located in redb's
//! source on a thread inside [`containing_redb_panics`], and counts it; the panic then unwinds
//! to `RedbStore`'s guard. Every other panic goes to the previous hook as before.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Once, OnceLock};

thread_local! {
    static CONTAINING: Cell<bool> = const { Cell::new(false) };
    static LAST_IN_REDB: Cell<bool> = const { Cell::new(false) };
    static SEEN_HERE: Cell<u64> = const { Cell::new(0) };
}

static SEEN: AtomicU64 = AtomicU64::new(0);

/// Whether `file` (a panic location) is in redb's source, as cargo lays out a registry crate.
fn in_redb(file: &str) -> bool {
    file.replace('\\', "/").contains("/redb-")
}

/// Whether to print the contained panics with a backtrace (`RELIABILITY_SHOW_REDB_PANICS`
/// set), to debug the store's guard.
fn show() -> bool {
    static SHOW: OnceLock<bool> = OnceLock::new();
    *SHOW.get_or_init(|| std::env::var_os("RELIABILITY_SHOW_REDB_PANICS").is_some())
}

fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_redb = info.location().is_some_and(|l| in_redb(l.file()));
            if CONTAINING.with(Cell::get) {
                LAST_IN_REDB.with(|c| c.set(in_redb));
                if in_redb {
                    SEEN.fetch_add(1, Ordering::SeqCst);
                    SEEN_HERE.with(|n| n.set(n.get() + 1));
                    if show() {
                        eprintln!("contained panic inside redb: {info}");
                        eprintln!("{}", std::backtrace::Backtrace::force_capture());
                    }
                    return;
                }
            }
            previous(info);
        }));
    });
}

/// Runs `f`, which uses a `RedbStore` on damaged bytes. Panics inside redb are let through to
/// the store's guard (counted, not printed, not fatal under cargo-fuzz); if any panic comes out
/// of `f`, this fails: a panic of our own code propagates as it is, a panic of redb that the
/// store let escape becomes a failure raised here.
pub fn containing_redb_panics<T>(f: impl FnOnce() -> T) -> T {
    install_hook();
    let outer = CONTAINING.with(|c| c.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CONTAINING.with(|c| c.set(outer));
    match result {
        Ok(value) => value,
        Err(payload) if LAST_IN_REDB.with(|c| c.replace(false)) => {
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("no message");
            panic!("a panic inside redb escaped RedbStore: {message}")
        }
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Panics inside redb seen so far in this process (each one contained by `RedbStore`, or the
/// target failed).
pub fn redb_panics() -> u64 {
    SEEN.load(Ordering::SeqCst)
}

/// Panics inside redb seen so far on the calling thread.
pub fn redb_panics_on_this_thread() -> u64 {
    SEEN_HERE.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_in_redb_are_recognised() {
        assert!(in_redb(
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/redb-4.6.0/src/types.rs"
        ));
        assert!(!in_redb("crates/sync-store-redb/src/store.rs"));
        assert!(!in_redb("crates/reliability/src/targets/redb_file.rs"));
    }

    #[test]
    fn escaping_panics_fail() {
        let result = catch_unwind(|| containing_redb_panics(|| panic!("ours")));
        assert!(result.is_err(), "a panic of our code fails");
        assert_eq!(containing_redb_panics(|| 5), 5);
    }
}
