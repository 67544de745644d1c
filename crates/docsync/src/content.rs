//! The local content table: bytes written with `set`, keyed by their BLAKE3 hash.
//!
//! A replica stores only hashes and lengths. The facade keeps the bytes of what this node wrote
//! so that `get` can return them: in memory for an in-memory node, as one file per hash under
//! `<data dir>/content/` for a persistent one (written to a temporary file and renamed, so a
//! reader never sees a half-written blob under its final name). Files are synced to disk in one
//! batch by [`ContentStore::sync`], which the node calls on `flush`, before the entries that
//! point at them are committed; a blob damaged by a crash before that is detected by its hash on
//! read. Content of entries synced from peers is not transferred yet; such entries show their
//! hash and size only.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sync_core::ContentHash;

use crate::error::Error;

/// Where content bytes live.
#[derive(Debug, Clone)]
pub(crate) enum ContentStore {
    Memory(Arc<Mutex<HashMap<ContentHash, Bytes>>>),
    Dir {
        path: PathBuf,
        /// Files written since the last [`ContentStore::sync`].
        unsynced: Arc<Mutex<Vec<PathBuf>>>,
    },
}

impl ContentStore {
    pub(crate) fn memory() -> Self {
        Self::Memory(Arc::default())
    }

    pub(crate) fn dir(path: PathBuf) -> Result<Self, Error> {
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Self::Dir {
            path,
            unsynced: Arc::default(),
        })
    }

    fn path_of(dir: &Path, hash: &ContentHash) -> PathBuf {
        dir.join(hash.to_string())
    }

    /// Stores `data`, returning its hash. Idempotent.
    pub(crate) fn put(&self, data: Bytes) -> Result<ContentHash, Error> {
        let hash = ContentHash::of(&data);
        match self {
            Self::Memory(map) => {
                map.lock().map_err(|_| Error::Poisoned)?.insert(hash, data);
            }
            Self::Dir {
                path: dir,
                unsynced,
            } => {
                let path = Self::path_of(dir, &hash);
                if path.exists() {
                    return Ok(hash);
                }
                let tmp = dir.join(format!("{hash}.tmp"));
                let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
                file.write_all(&data).map_err(|e| Error::io(&tmp, e))?;
                std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
                unsynced.lock().map_err(|_| Error::Poisoned)?.push(path);
            }
        }
        Ok(hash)
    }

    /// The bytes of `hash`, if this node has them. Bytes on disk are checked against the hash.
    pub(crate) fn get(&self, hash: &ContentHash) -> Result<Option<Bytes>, Error> {
        match self {
            Self::Memory(map) => Ok(map.lock().map_err(|_| Error::Poisoned)?.get(hash).cloned()),
            Self::Dir { path: dir, .. } => {
                let path = Self::path_of(dir, hash);
                match std::fs::read(&path) {
                    Ok(data) if ContentHash::of(&data) == *hash => Ok(Some(data.into())),
                    Ok(_) => Err(Error::CorruptContent(*hash)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io(&path, e)),
                }
            }
        }
    }

    /// Whether the bytes of `hash` are here.
    pub(crate) fn has(&self, hash: &ContentHash) -> bool {
        match self {
            Self::Memory(map) => map.lock().map(|m| m.contains_key(hash)).unwrap_or(false),
            Self::Dir { path: dir, .. } => Self::path_of(dir, hash).exists(),
        }
    }

    /// Syncs every file written since the last call, and the directory, to disk.
    pub(crate) fn sync(&self) -> Result<(), Error> {
        let Self::Dir {
            path: dir,
            unsynced,
        } = self
        else {
            return Ok(());
        };
        let pending = std::mem::take(&mut *unsynced.lock().map_err(|_| Error::Poisoned)?);
        if pending.is_empty() {
            return Ok(());
        }
        for path in &pending {
            let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            file.sync_all().map_err(|e| Error::io(path, e))?;
        }
        // The renames live in the directory: sync it too (where the platform allows opening it).
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}
