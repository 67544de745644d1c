//! [`AddressBook`]: where peers can be reached, for dials by id, kept across restarts.
//!
//! iroh dials a peer by id only through an address lookup; the endpoints of docsync run none
//! (no DNS, no discovery), so the engine adds this book to the endpoint. A persistent node keeps
//! it in one file, rewritten whole (temporary file, then rename) when an address changes, so a
//! restarted node reaches the providers of its pending downloads without any discovery.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use iroh::address_lookup::memory::MemoryLookup;
use iroh::{EndpointAddr, EndpointId};

/// The most peers remembered; beyond it the book forgets the one updated longest ago.
const MAX_PEERS: usize = 1024;

#[derive(Default)]
struct Book {
    peers: BTreeMap<EndpointId, (u64, EndpointAddr)>,
    clock: u64,
}

/// The addresses of known peers, shared with the endpoint. Cheap to clone.
#[derive(Clone)]
pub(crate) struct AddressBook {
    lookup: MemoryLookup,
    book: Arc<Mutex<Book>>,
    file: Option<PathBuf>,
}

impl AddressBook {
    /// A book read from `file` (if given and present), registered with `endpoint`.
    pub(crate) fn open(endpoint: &iroh::Endpoint, file: Option<PathBuf>) -> Self {
        let lookup = MemoryLookup::new();
        if let Ok(services) = endpoint.address_lookup() {
            services.add(lookup.clone());
        }
        let this = Self {
            lookup,
            book: Arc::default(),
            file,
        };
        for addr in this.load() {
            this.remember(addr);
        }
        this
    }

    /// Every address stored in the file; an unreadable file is an empty book (it only
    /// speeds up reconnection, and the next change rewrites it).
    fn load(&self) -> Vec<EndpointAddr> {
        let Some(bytes) = self.file.as_ref().and_then(|f| std::fs::read(f).ok()) else {
            return Vec::new();
        };
        postcard::from_bytes(&bytes).unwrap_or_default()
    }

    /// Records `addr` (merged with what is known of the peer); false if nothing changed.
    fn remember(&self, addr: EndpointAddr) -> bool {
        let Ok(mut book) = self.book.lock() else {
            return false;
        };
        book.clock += 1;
        let clock = book.clock;
        let merged = match book.peers.get(&addr.id) {
            Some((_, known)) if addr.addrs.is_subset(&known.addrs) => return false,
            Some((_, known)) => {
                EndpointAddr::from_parts(addr.id, known.addrs.iter().chain(&addr.addrs).cloned())
            }
            None => addr,
        };
        self.lookup.add_endpoint_info(merged.clone());
        book.peers.insert(merged.id, (clock, merged));
        if book.peers.len() > MAX_PEERS
            && let Some(oldest) = book
                .peers
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(id, _)| *id)
        {
            book.peers.remove(&oldest);
        }
        true
    }

    /// Adds what is known of a peer's addresses, and saves the book if it changed.
    pub(crate) fn add(&self, addr: EndpointAddr) {
        if addr.addrs.is_empty() || !self.remember(addr) {
            return;
        }
        if let Err(error) = self.save() {
            tracing::warn!(%error, "the address book could not be saved");
        }
    }

    fn save(&self) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let addrs: Vec<EndpointAddr> = match self.book.lock() {
            Ok(book) => book.peers.values().map(|(_, a)| a.clone()).collect(),
            Err(_) => return Ok(()),
        };
        let bytes = postcard::to_stdvec(&addrs).map_err(std::io::Error::other)?;
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, file)
    }
}
