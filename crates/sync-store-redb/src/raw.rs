//! Test support: a store on storage the caller supplies, for fault injection and corrupted images.
//!
//! [`RawStorage`] is redb's storage-backend interface restated with std types, so that no redb
//! type appears in this crate's API; [`RedbStore::on_raw_storage`] adapts it. A test crate
//! implements it over a byte vector that fails after a number of operations, refuses writes past
//! a size (disk full), or starts from a damaged image, and then reopens the same bytes on a
//! healthy storage to check what survived. Not meant for production use.

use std::fmt;
use std::io;

use redb::{Database, StorageBackend};
use sync_core::StoreError;

use crate::store::RedbStore;
use crate::tables::{DEFAULT_FIRST_BITS, DEFAULT_LEVEL_BITS};

/// The page cache of a store on raw storage: small, since such stores are small test images.
const RAW_CACHE_BYTES: usize = 4 << 20;

/// Byte storage under a [`RedbStore`]: a growable array of bytes with an explicit durability
/// point. The contract is redb's (`redb::StorageBackend`): reads past the end fail, `set_len`
/// zero-fills new bytes, `sync_data` makes every earlier write durable.
#[doc(hidden)]
#[allow(
    clippy::len_without_is_empty,
    reason = "restates redb's backend interface, which has no is_empty"
)]
pub trait RawStorage: fmt::Debug + Send + Sync + 'static {
    /// The current length.
    fn len(&self) -> io::Result<u64>;
    /// Fills `out` from `offset`; fails if that reaches past the end.
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()>;
    /// Truncates or zero-extends to `len`.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes every earlier write durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Writes `data` at `offset` (within the current length).
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()>;
}

/// The adapter from [`RawStorage`] to redb.
#[derive(Debug)]
struct Backend<S>(S);

impl<S: RawStorage> StorageBackend for Backend<S> {
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.0.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write(offset, data)
    }
}

impl RedbStore {
    /// Test support: opens the store held by `storage`, creating it if the storage is empty,
    /// exactly as [`RedbStore::persistent`] opens a file. Fails with a [`StoreError`] if the
    /// bytes are not a store or the storage fails ([`StoreError::Corrupt`] if redb panics on
    /// them; the storage is dropped again).
    #[doc(hidden)]
    pub fn on_raw_storage(storage: impl RawStorage) -> Result<Self, StoreError> {
        Self::open(
            || {
                Database::builder()
                    .set_cache_size(RAW_CACHE_BYTES)
                    .create_with_backend(Backend(storage))
            },
            DEFAULT_FIRST_BITS,
            DEFAULT_LEVEL_BITS,
        )
    }
}
