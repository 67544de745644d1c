//! Byte images under a `RedbStore`, healthy or faulty.
//!
//! An [`Image`] is the content of a database "file" in memory, kept twice: every write lands in
//! the *volatile* bytes (what the operating system holds after the process dies), and
//! `sync_data` copies them to the *durable* bytes (what is on the platter after a power cut).
//! [`Image::storage`] opens a storage on it for `RedbStore::on_raw_storage`, optionally with a
//! [`FaultPlan`]: fail every operation from the k-th on (or only the k-th), or refuse to grow
//! past a size (disk full). [`Image::survivor`] gives a fresh image from what survives a crash,
//! to reopen on a healthy storage and check that every flushed entry is there.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use sync_store_redb::RawStorage;

#[derive(Debug, Default)]
struct Bytes {
    volatile: Vec<u8>,
    durable: Vec<u8>,
}

/// The bytes of one database, shared by every storage opened on it.
#[derive(Debug, Clone, Default)]
pub struct Image {
    bytes: Arc<Mutex<Bytes>>,
}

/// Which bytes survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// The process died: every write reached the operating system.
    Process,
    /// The machine lost power: only what was synced is there.
    Power,
}

/// When a storage fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Fail the operation with this index (0-based, counting `read`, `write`, `set_len`,
    /// `sync_data`) with an I/O error.
    pub fail_at: Option<u64>,
    /// Keep failing every operation after the first failure (a dead disk); otherwise only that
    /// one operation fails (a transient error).
    pub persistent: bool,
    /// Refuse writes and growth past this many bytes with `StorageFull` (a full disk).
    pub max_len: Option<u64>,
}

impl FaultPlan {
    /// No faults.
    pub fn healthy() -> Self {
        Self::default()
    }

    /// Fail operation `k` and every one after it.
    pub fn dead_after(k: u64) -> Self {
        Self {
            fail_at: Some(k),
            persistent: true,
            max_len: None,
        }
    }

    /// Fail operation `k` only.
    pub fn transient_at(k: u64) -> Self {
        Self {
            fail_at: Some(k),
            persistent: false,
            max_len: None,
        }
    }

    /// A disk that holds `max_len` bytes.
    pub fn disk_full_at(max_len: u64) -> Self {
        Self {
            fail_at: None,
            persistent: false,
            max_len: Some(max_len),
        }
    }
}

/// What a storage did, shared with the test that watches it.
#[derive(Debug, Default)]
pub struct FaultStats {
    ops: AtomicU64,
    injected: AtomicU64,
    failing: AtomicBool,
    halted: AtomicBool,
    peak_len: AtomicU64,
}

impl FaultStats {
    /// The largest length the storage was set to so far (a store may grow its file while it
    /// commits and give the end back afterwards).
    pub fn peak_len(&self) -> u64 {
        self.peak_len.load(Ordering::SeqCst)
    }

    /// Operations attempted so far.
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    /// Errors injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    /// From now on every operation fails: the process is about to "crash", and whatever the
    /// store does on its way down (its best-effort commit on drop) must not reach the image.
    pub fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
    }
}

impl Image {
    /// An empty image (a new file).
    pub fn new() -> Self {
        Self::default()
    }

    /// An image holding `bytes`, all of them durable.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self {
            bytes: Arc::new(Mutex::new(Bytes {
                durable: bytes.clone(),
                volatile: bytes,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Bytes> {
        // A panic while holding the lock leaves plain bytes behind; keep using them.
        self.bytes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every byte written so far.
    pub fn volatile(&self) -> Vec<u8> {
        self.lock().volatile.clone()
    }

    /// The bytes as of the last `sync_data`.
    pub fn durable(&self) -> Vec<u8> {
        self.lock().durable.clone()
    }

    /// How many other handles on these bytes exist: storages opened on this image (and not
    /// dropped yet) and clones of it. 0 once every store opened on it has let go of its storage.
    pub fn other_handles(&self) -> usize {
        Arc::strong_count(&self.bytes) - 1
    }

    /// A new, independent image of what survives `crash`.
    pub fn survivor(&self, crash: Crash) -> Image {
        match crash {
            Crash::Process => Image::from_bytes(self.volatile()),
            Crash::Power => Image::from_bytes(self.durable()),
        }
    }

    /// A storage on this image under `plan`, and the handle that watches it.
    pub fn storage(&self, plan: FaultPlan) -> (ImageStorage, Arc<FaultStats>) {
        let stats = Arc::new(FaultStats::default());
        let storage = ImageStorage {
            image: self.clone(),
            plan,
            stats: stats.clone(),
        };
        (storage, stats)
    }

    /// A healthy storage on this image.
    pub fn healthy(&self) -> ImageStorage {
        self.storage(FaultPlan::healthy()).0
    }
}

/// A [`RawStorage`] on an [`Image`], failing as its [`FaultPlan`] says.
#[derive(Debug)]
pub struct ImageStorage {
    image: Image,
    plan: FaultPlan,
    stats: Arc<FaultStats>,
}

impl ImageStorage {
    /// Counts one operation and fails it if the plan says so.
    fn admit(&self) -> io::Result<()> {
        if self.stats.halted.load(Ordering::SeqCst) {
            return Err(io::Error::other("storage halted (simulated crash)"));
        }
        let op = self.stats.ops.fetch_add(1, Ordering::SeqCst);
        let hit = self.plan.fail_at == Some(op)
            || (self.plan.persistent && self.stats.failing.load(Ordering::SeqCst));
        if hit {
            self.stats.failing.store(true, Ordering::SeqCst);
            self.stats.injected.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::other(format!("injected I/O error at op {op}")));
        }
        Ok(())
    }

    fn check_room(&self, end: u64) -> io::Result<()> {
        match self.plan.max_len {
            Some(max) if end > max => {
                self.stats.injected.fetch_add(1, Ordering::SeqCst);
                Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!("disk full: {end} bytes asked, {max} available"),
                ))
            }
            _ => Ok(()),
        }
    }
}

fn range(offset: u64, len: usize, size: usize) -> io::Result<std::ops::Range<usize>> {
    let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    let end = start
        .checked_add(len)
        .filter(|&end| end <= size)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("access at {offset}+{len} past the end ({size})"),
            )
        })?;
    Ok(start..end)
}

impl RawStorage for ImageStorage {
    fn len(&self) -> io::Result<u64> {
        if self.stats.halted.load(Ordering::SeqCst) {
            return Err(io::Error::other("storage halted (simulated crash)"));
        }
        Ok(self.image.lock().volatile.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.admit()?;
        let bytes = self.image.lock();
        let range = range(offset, out.len(), bytes.volatile.len())?;
        out.copy_from_slice(&bytes.volatile[range]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.admit()?;
        self.check_room(len)?;
        self.stats.peak_len.fetch_max(len, Ordering::SeqCst);
        let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        self.image.lock().volatile.resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.admit()?;
        let mut bytes = self.image.lock();
        bytes.durable = bytes.volatile.clone();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.admit()?;
        self.check_room(offset.saturating_add(data.len() as u64))?;
        let mut bytes = self.image.lock();
        let range = range(offset, data.len(), bytes.volatile.len())?;
        bytes.volatile[range].copy_from_slice(data);
        Ok(())
    }
}
