//! Schema versions and migrations, run once when a store is opened.
//!
//! A file carries its schema version in the `meta` table. Opening runs, in one write
//! transaction, every migration from the file's version up to [`SCHEMA_VERSION`]: migration
//! `n` (at index `n` of [`MIGRATIONS`]) turns a version-`n` file into a version-`n + 1` file. A
//! new file has version 0. A file of a newer version is refused before anything is written.

use redb::{Database, ReadableDatabase, ReadableTable, TableHandle, WriteTransaction};
use sync_core::StoreError;

use crate::tables::{
    self, BY_FINGERPRINT, META, META_INDEX_SHAPE, META_VERSION, RECORDS, SCHEMA_VERSION, Shape,
    fingerprint_key, fingerprint_row_of, record_fingerprint,
};

/// What a new store is made with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CreateOptions {
    /// Bits of the level hash for level 1 of the aggregate index.
    pub(crate) first_bits: u8,
    /// Bits of the level hash for each further level.
    pub(crate) level_bits: u8,
}

/// One migration: from version `index` to `index + 1`.
type Migration = fn(&WriteTransaction, &CreateOptions) -> Result<(), StoreError>;

/// Every migration, in order. `MIGRATIONS.len()` equals [`SCHEMA_VERSION`].
const MIGRATIONS: [Migration; SCHEMA_VERSION as usize] = [create_v1, index_fingerprints_v2];

/// Version 0 to 1: a new store. Creates every table (of the current version: a new store's
/// later migrations then find nothing to convert) and the shape of the aggregate index, with
/// a fresh random salt.
fn create_v1(tx: &WriteTransaction, options: &CreateOptions) -> Result<(), StoreError> {
    let mut t = tables::Tables::open(tx).map_err(StoreError::backend)?;
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt).map_err(|e| StoreError::Backend(e.to_string().into()))?;
    let shape = Shape {
        first_bits: options.first_bits,
        level_bits: options.level_bits,
        salt,
    };
    t.meta
        .insert(META_INDEX_SHAPE, shape.encode().as_slice())
        .map_err(StoreError::backend)?;
    Ok(())
}

/// Version 1 to 2: adds `records-by-fingerprint-v2`, one row per record under its entry
/// fingerprint, filled from the records in one pass.
fn index_fingerprints_v2(tx: &WriteTransaction, _: &CreateOptions) -> Result<(), StoreError> {
    let records = tx.open_table(RECORDS).map_err(StoreError::backend)?;
    let mut index = tx.open_table(BY_FINGERPRINT).map_err(StoreError::backend)?;
    for item in records.iter().map_err(StoreError::backend)? {
        let (k, v) = item.map_err(StoreError::backend)?;
        let fp = record_fingerprint(k.value(), v.value());
        index
            .insert(fingerprint_key(&fp), fingerprint_row_of(k.value()))
            .map_err(StoreError::backend)?;
    }
    Ok(())
}

/// Brings the database to [`SCHEMA_VERSION`] and returns the shape of its aggregate index.
/// `options` apply only if the database is new.
pub(crate) fn migrate(db: &Database, options: &CreateOptions) -> Result<Shape, StoreError> {
    let found = read_version(db)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::VersionTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < SCHEMA_VERSION {
        let tx = db.begin_write().map_err(StoreError::backend)?;
        for (from, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            migration(&tx, options)?;
            let to = from as u64 + 1;
            let mut meta = tx.open_table(META).map_err(StoreError::backend)?;
            meta.insert(META_VERSION, &to.to_be_bytes()[..])
                .map_err(StoreError::backend)?;
        }
        tx.commit().map_err(StoreError::backend)?;
    }
    let tx = db.begin_read().map_err(StoreError::backend)?;
    let meta = tx.open_table(META).map_err(StoreError::backend)?;
    let shape = meta
        .get(META_INDEX_SHAPE)
        .map_err(StoreError::backend)?
        .ok_or_else(|| StoreError::Corrupt("missing index shape".into()))?;
    Shape::decode(shape.value())
}

/// The schema version of the file: 0 for a new, empty database.
fn read_version(db: &Database) -> Result<u64, StoreError> {
    let tx = db.begin_read().map_err(StoreError::backend)?;
    let names: Vec<String> = tx
        .list_tables()
        .map_err(StoreError::backend)?
        .map(|t| t.name().to_owned())
        .collect();
    if !names.iter().any(|n| n == META.name()) {
        if names.is_empty() {
            return Ok(0);
        }
        return Err(StoreError::Corrupt(format!(
            "not a docsync store: tables {names:?} and no {:?} table",
            META.name()
        )));
    }
    let meta = tx.open_table(META).map_err(StoreError::backend)?;
    let version = meta.get(META_VERSION).map_err(StoreError::backend)?;
    let bytes = version
        .as_ref()
        .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
        .ok_or_else(|| StoreError::Corrupt("missing or malformed schema version".into()))?;
    Ok(u64::from_be_bytes(bytes))
}
