//! A damaged store file: byte flips and truncation of a small valid store, then opening it,
//! checking it, reading everything and writing once more. Every step may fail with a
//! `StoreError`; none may panic, except inside redb (see `dependency_panics`).

use std::sync::OnceLock;

use sync_core::{
    Author, Capability, DownloadPolicy, FilterKind, KeyInterval, Query, QueryCursor, Store,
};
use sync_store_redb::RedbStore;

use super::dependency_panics::tolerating_redb_panics;
use super::fixtures::{self, fake_entry};
use crate::input::Input;
use crate::storage::Image;

/// The most byte edits one input applies.
const MAX_EDITS: usize = 64;

/// The bytes of a small store, closed cleanly: three documents (one read-only), three
/// authors, a default author, a few dozen entries with deletions, peers and a policy.
pub(super) fn valid_image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let image = Image::new();
        let mut store = match RedbStore::on_raw_storage(image.healthy()) {
            Ok(store) => store,
            Err(e) => panic!("a new store on a healthy image: {e}"),
        };
        let filled = fill(&mut store).and_then(|()| store.close());
        if let Err(e) = filled {
            panic!("filling the reference image: {e}");
        }
        image.volatile()
    })
}

fn fill(store: &mut RedbStore) -> Result<(), sync_core::StoreError> {
    store.import_namespace(Capability::Write(fixtures::namespace(1)))?;
    store.import_namespace(Capability::Write(fixtures::namespace(2)))?;
    store.import_namespace(Capability::Read(fixtures::ns_id(3)))?;
    for seed in 1..=3 {
        store.import_author(fixtures::author(seed))?;
    }
    store.set_default_author(&fixtures::author_id(2))?;
    for (i, key) in fixtures::KEYS.iter().enumerate() {
        for author in 1..=2u8 {
            let ts = 10 + i as u64 + u64::from(author);
            store.insert(fake_entry(1, author, key, ts, i % 4 == 3))?;
            store.insert(fake_entry(2, author, key, ts, false))?;
        }
    }
    store.register_useful_peer(&fixtures::ns_id(1), [7; 32])?;
    store.set_download_policy(
        &fixtures::ns_id(2),
        DownloadPolicy::NothingExcept(vec![FilterKind::Prefix(b"a".to_vec().into())]),
    )?;
    store.flush()
}

/// The target: see the module docs.
pub fn redb_file(data: &[u8]) {
    let mut input = Input::new(data);
    let mut bytes = valid_image().to_vec();
    // First byte: bit 0 truncates the file to a length from the input.
    let flags = input.u8();
    for _ in 0..input.below(MAX_EDITS + 1) {
        if bytes.is_empty() {
            break;
        }
        let at = input.u32() as usize % bytes.len();
        bytes[at] ^= input.u8().max(1);
    }
    if flags & 1 == 1 && !bytes.is_empty() {
        let len = input.u32() as usize % bytes.len();
        bytes.truncate(len);
    }
    let image = Image::from_bytes(bytes);
    let Ok(Ok(mut store)) = tolerating_redb_panics(|| RedbStore::on_raw_storage(image.healthy()))
    else {
        return;
    };
    // Damage the consistency check does not cover (a policy, a peer list, free pages) may
    // surface as an error of one read; any answer is fine, a panic outside redb is not.
    let used = tolerating_redb_panics(|| {
        let _ = store.check_consistency();
        let _ = read_everything(&mut store);
        // A write and a flush on whatever opened.
        let _ = store.insert(fake_entry(1, 3, b"after", 99, false));
        let _ = store.flush();
    });
    // Closed outside the closure above, so that a panic there does not drop the store while
    // unwinding (a second panic in its drop would abort).
    let _ = tolerating_redb_panics(move || {
        if used.is_ok() {
            let _ = store.close();
        } else {
            drop(store);
        }
    });
}

fn read_everything(store: &mut RedbStore) -> Result<(), sync_core::StoreError> {
    let namespaces = store.list_namespaces()?;
    for (ns, _) in namespaces {
        let _ = store.capability(&ns)?;
        let all = KeyInterval::all();
        let entries = store.entries(&ns, &all, 0, usize::MAX)?;
        let count = store.count(&ns, &all)?;
        if count != entries.len() as u64 {
            return Err(sync_core::StoreError::Corrupt(format!(
                "count {count} for {} entries",
                entries.len()
            )));
        }
        let _ = store.fingerprint(&ns, &all)?;
        let query = Query::all().with_include_empty(true);
        let _ = store.query(&ns, &query, &QueryCursor::start(&query), 1000)?;
        let latest = Query::latest_per_key();
        let _ = store.query(&ns, &latest, &QueryCursor::start(&latest), 1000)?;
        let _ = store.latest_per_author(&ns)?;
        let _ = store.useful_peers(&ns)?;
        let _ = store.download_policy(&ns)?;
    }
    for id in store.list_authors()? {
        let _: Option<Author> = store.author(&id)?;
    }
    let _ = store.default_author()?;
    Ok(())
}

pub(super) fn seeds() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        // One flip in the header region, one in the middle, a truncation.
        vec![0, 1, 0x10, 0, 0, 0, 0x01],
        vec![0, 1, 0x00, 0x10, 0, 0, 0x80],
        vec![1, 0, 0x00, 0x20, 0, 0],
        vec![
            2, 3, 1, 0, 0, 0, 0xff, 0, 2, 0, 0, 0x55, 0, 0x30, 0, 0, 0x0f,
        ],
    ]
}
