//! [`ContentStore`]: the iroh-blobs store under every document, and what this node knows is
//! complete in it.
//!
//! The actor asks for the status of every entry it sends, on its own thread and without an
//! async runtime, so the store keeps the set of hashes it has seen complete (after an import, a
//! finished download, or at start from the store's own listing). A hash enters the set only
//! after iroh-blobs reported it complete and leaves it before garbage collection may delete it,
//! so `Complete` is never claimed for content this node cannot serve.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use iroh_blobs::api::blobs::{AddPathOptions, BlobStatus, ExportMode, ExportOptions, ImportMode};
use iroh_blobs::api::{Store, TempTag};
use iroh_blobs::{BlobFormat, Hash};
use n0_future::StreamExt as _;
use sync_actor::SyncHandle;
use sync_core::{ContentHash, ContentStatus};
use tokio::io::AsyncRead;

use crate::error::ContentError;
use crate::gc::{GcOptions, ProtectHandler};

/// The directory of the blob store inside a data directory.
pub const BLOBS_DIR: &str = "blobs";

/// Converts between the data model's hash and iroh-blobs' (both are the 32-byte BLAKE3 hash).
pub(crate) fn to_blobs(hash: ContentHash) -> Hash {
    Hash::from_bytes(*hash.as_bytes())
}

pub(crate) fn from_blobs(hash: Hash) -> ContentHash {
    ContentHash::from_bytes(*hash.as_bytes())
}

/// Content imported into the store: its hash and length, protected from garbage collection
/// for as long as this value lives.
#[derive(Debug)]
pub struct Imported {
    /// The BLAKE3 hash.
    pub hash: ContentHash,
    /// The length in bytes.
    pub len: u64,
    _tag: Option<TempTag>,
}

enum Backend {
    Memory(iroh_blobs::store::mem::MemStore),
    Fs {
        root: PathBuf,
        store: iroh_blobs::store::fs::FsStore,
    },
}

struct Inner {
    backend: Backend,
    complete: RwLock<HashSet<ContentHash>>,
    protect: Option<ProtectHandler>,
}

/// The content of every document of a node: an iroh-blobs store (in memory or on disk) and the
/// set of hashes known complete in it. Cheap to clone.
#[derive(Clone)]
pub struct ContentStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ContentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let root = match &self.inner.backend {
            Backend::Memory(_) => None,
            Backend::Fs { root, .. } => Some(root),
        };
        f.debug_struct("ContentStore").field("root", &root).finish()
    }
}

impl ContentStore {
    /// A store in memory (never garbage-collected).
    pub fn memory() -> Self {
        Self::new(
            Backend::Memory(iroh_blobs::store::mem::MemStore::new()),
            None,
        )
    }

    /// A store in `root` (created if missing), with garbage collection as `gc` says.
    pub async fn persistent(root: impl Into<PathBuf>, gc: GcOptions) -> Result<Self, ContentError> {
        let root = root.into();
        tokio::fs::create_dir_all(&root)
            .await
            .map_err(|e| ContentError::io(&root, e))?;
        let mut options = iroh_blobs::store::fs::options::Options::new(&root);
        let protect = gc.interval.map(|interval| {
            let (handler, callback) = crate::gc::protect_handler();
            options.gc = Some(iroh_blobs::store::GcConfig {
                interval,
                add_protected: Some(callback),
            });
            handler
        });
        let store = iroh_blobs::store::fs::FsStore::load_with_opts(root.join("blobs.db"), options)
            .await
            .map_err(|e| ContentError::Open {
                path: root.clone(),
                source: e.into(),
            })?;
        let this = Self::new(Backend::Fs { root, store }, protect);
        this.load_complete().await?;
        Ok(this)
    }

    fn new(backend: Backend, protect: Option<ProtectHandler>) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend,
                complete: RwLock::new(HashSet::from([ContentHash::EMPTY])),
                protect,
            }),
        }
    }

    /// Starts garbage collection (if the store was opened with it): from now on content that
    /// no entry held by `handle` references is collected.
    pub fn collect_garbage_of(&self, handle: SyncHandle) {
        if let Some(protect) = &self.inner.protect {
            protect.install(self.clone(), handle);
        }
    }

    /// The iroh-blobs store, to serve it or download into it.
    pub fn blobs(&self) -> &Store {
        match &self.inner.backend {
            Backend::Memory(store) => store,
            Backend::Fs { store, .. } => store,
        }
    }

    /// Fills the set of complete hashes from the store's listing.
    async fn load_complete(&self) -> Result<(), ContentError> {
        let mut listed = self
            .blobs()
            .blobs()
            .list()
            .stream()
            .await
            .map_err(ContentError::blobs)?;
        while let Some(hash) = listed.next().await {
            let hash = hash.map_err(ContentError::blobs)?;
            if let BlobStatus::Complete { .. } = self.status_of(hash).await? {
                self.mark_complete(from_blobs(hash));
            }
        }
        Ok(())
    }

    async fn status_of(&self, hash: Hash) -> Result<BlobStatus, ContentError> {
        self.blobs()
            .blobs()
            .status(hash)
            .await
            .map_err(ContentError::blobs)
    }

    pub(crate) fn mark_complete(&self, hash: ContentHash) {
        if let Ok(mut set) = self.inner.complete.write() {
            set.insert(hash);
        }
    }

    /// Forgets every complete hash not in `keep` (before garbage collection may delete them).
    pub(crate) fn retain_complete(&self, keep: &HashSet<Hash>) {
        if let Ok(mut set) = self.inner.complete.write() {
            set.retain(|h| *h == ContentHash::EMPTY || keep.contains(&to_blobs(*h)));
        }
    }

    /// Whether the content of `hash` is complete here, from the set (no I/O).
    pub fn is_complete(&self, hash: &ContentHash) -> bool {
        self.inner
            .complete
            .read()
            .map(|set| set.contains(hash))
            .unwrap_or(false)
    }

    /// The status the actor attaches to entries it sends.
    pub fn status_fn(&self) -> sync_actor::ContentStatusFn {
        let this = self.clone();
        Arc::new(move |hash| {
            if this.is_complete(hash) {
                ContentStatus::Complete
            } else {
                ContentStatus::Missing
            }
        })
    }

    /// The status of `hash` as the blob store reports it (complete, partial, or missing).
    pub async fn status(&self, hash: ContentHash) -> Result<ContentStatus, ContentError> {
        Ok(match self.status_of(to_blobs(hash)).await? {
            BlobStatus::Complete { .. } => {
                self.mark_complete(hash);
                ContentStatus::Complete
            }
            BlobStatus::Partial { .. } => ContentStatus::Incomplete,
            BlobStatus::NotFound => ContentStatus::Missing,
        })
    }

    /// Stores `data`; returns once it is durable.
    pub async fn import_bytes(&self, data: Bytes) -> Result<Imported, ContentError> {
        let len = data.len() as u64;
        let tag = self
            .blobs()
            .blobs()
            .add_bytes(data)
            .temp_tag()
            .await
            .map_err(ContentError::blobs)?;
        self.imported(tag, len).await
    }

    /// Streams the file at `path` into the store (never all in memory); returns once durable.
    pub async fn import_file(&self, path: &Path) -> Result<Imported, ContentError> {
        let path = std::path::absolute(path).map_err(|e| ContentError::io(path, e))?;
        let len = tokio::fs::metadata(&path)
            .await
            .map_err(|e| ContentError::io(&path, e))?
            .len();
        let tag = self
            .blobs()
            .blobs()
            .add_path_with_opts(AddPathOptions {
                path: path.clone(),
                mode: ImportMode::Copy,
                format: BlobFormat::Raw,
            })
            .temp_tag()
            .await
            .map_err(|e| ContentError::Import {
                path: path.clone(),
                source: e.into(),
            })?;
        self.imported(tag, len).await
    }

    /// Streams `reader` to its end into the store; returns once durable.
    pub async fn import_reader(
        &self,
        reader: impl AsyncRead + Send + Sync + Unpin + 'static,
    ) -> Result<Imported, ContentError> {
        let stream = tokio_util_stream(reader);
        let tag = self
            .blobs()
            .blobs()
            .add_stream(stream)
            .await
            .temp_tag()
            .await
            .map_err(ContentError::blobs)?;
        let len = match self.status_of(tag.hash()).await? {
            BlobStatus::Complete { size } => size,
            _ => return Err(ContentError::Incomplete(from_blobs(tag.hash()))),
        };
        self.imported(tag, len).await
    }

    /// Makes an import durable and records it complete.
    async fn imported(&self, tag: TempTag, len: u64) -> Result<Imported, ContentError> {
        let hash = from_blobs(tag.hash());
        self.sync(hash).await?;
        self.mark_complete(hash);
        Ok(Imported {
            hash,
            len,
            _tag: Some(tag),
        })
    }

    /// Commits the blob store's metadata and syncs the files of `hash` to disk.
    async fn sync(&self, hash: ContentHash) -> Result<(), ContentError> {
        let Backend::Fs { root, store } = &self.inner.backend else {
            return Ok(());
        };
        store.sync_db().await.map_err(ContentError::blobs)?;
        let paths = iroh_blobs::store::fs::options::PathOptions::new(root);
        let hash = to_blobs(hash);
        for path in [paths.data_path(&hash), paths.outboard_path(&hash)] {
            sync_file(path).await?;
        }
        Ok(())
    }

    /// The whole content of `hash`, if it is complete here.
    pub async fn read_to_bytes(&self, hash: ContentHash) -> Result<Bytes, ContentError> {
        self.require_complete(hash).await?;
        self.blobs()
            .blobs()
            .get_bytes(to_blobs(hash))
            .await
            .map_err(ContentError::blobs)
    }

    /// A reader (`AsyncRead` and `AsyncSeek`) over the content of `hash`, if it is complete.
    pub async fn reader(
        &self,
        hash: ContentHash,
    ) -> Result<iroh_blobs::api::blobs::BlobReader, ContentError> {
        self.require_complete(hash).await?;
        Ok(self.blobs().blobs().reader(to_blobs(hash)))
    }

    /// Writes the content of `hash` to the file `target` (created or replaced).
    pub async fn export(&self, hash: ContentHash, target: &Path) -> Result<u64, ContentError> {
        self.require_complete(hash).await?;
        let target = std::path::absolute(target).map_err(|e| ContentError::io(target, e))?;
        if let Some(dir) = target.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| ContentError::io(dir, e))?;
        }
        self.blobs()
            .blobs()
            .export_with_opts(ExportOptions {
                hash: to_blobs(hash),
                mode: ExportMode::Copy,
                target: target.clone(),
            })
            .finish()
            .await
            .map_err(|e| ContentError::Export {
                path: target,
                source: e.into(),
            })
    }

    async fn require_complete(&self, hash: ContentHash) -> Result<(), ContentError> {
        match self.status(hash).await? {
            ContentStatus::Complete => Ok(()),
            _ => Err(ContentError::Missing(hash)),
        }
    }

    /// Commits the blob store's pending metadata.
    pub async fn flush(&self) -> Result<(), ContentError> {
        match &self.inner.backend {
            Backend::Memory(_) => Ok(()),
            Backend::Fs { store, .. } => store.sync_db().await.map_err(ContentError::blobs),
        }
    }

    /// Commits and closes the blob store.
    pub async fn shutdown(&self) -> Result<(), ContentError> {
        self.flush().await?;
        self.blobs().shutdown().await.map_err(ContentError::blobs)
    }
}

/// Syncs a file to disk if it exists (small blobs live inside the store's database instead).
async fn sync_file(path: PathBuf) -> Result<(), ContentError> {
    tokio::task::spawn_blocking(move || match std::fs::File::open(&path) {
        Ok(file) => file.sync_all().map_err(|e| ContentError::io(&path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ContentError::io(&path, e)),
    })
    .await
    .map_err(|_| ContentError::TaskFailed)?
}

/// A reader as a stream of chunks of at most 64 KiB.
fn tokio_util_stream(
    reader: impl AsyncRead + Send + Sync + Unpin + 'static,
) -> impl n0_future::Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static {
    use tokio::io::AsyncReadExt as _;
    n0_future::stream::unfold(Some(reader), |state| async move {
        let mut reader = state?;
        let mut buf = vec![0u8; 64 * 1024];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(reader)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}
