//! The content store on its own: imports, reads, status, durability across reopen.

use anyhow::Result;
use bytes::Bytes;
use sync_core::{ContentHash, ContentStatus};
use sync_engine::{ContentError, ContentStore, GcOptions};

#[tokio::test]
async fn concurrent_imports_into_a_file_store_all_complete() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = ContentStore::persistent(dir.path(), GcOptions::off()).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..8u32 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut hashes = Vec::new();
            for i in 0..250u32 {
                let value = Bytes::from(format!("value {i} from {writer}"));
                let imported = store.import_bytes(value.clone()).await?;
                assert_eq!(imported.hash, ContentHash::of(&value));
                hashes.push((imported.hash, value));
            }
            anyhow::Ok(hashes)
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done??);
    }
    assert_eq!(all.len(), 2000);
    for (hash, value) in &all {
        assert!(store.is_complete(hash));
        assert_eq!(&store.read_to_bytes(*hash).await?, value);
    }
    Ok(())
}

#[tokio::test]
async fn content_not_here_is_a_clear_error_not_empty_bytes() -> Result<()> {
    let store = ContentStore::memory();
    let absent = ContentHash::of(b"never stored");
    assert_eq!(store.status(absent).await?, ContentStatus::Missing);
    assert!(!store.is_complete(&absent));
    let err = store.read_to_bytes(absent).await.unwrap_err();
    assert!(
        matches!(err, ContentError::Missing(h) if h == absent),
        "{err}"
    );
    assert!(matches!(
        store.reader(absent).await,
        Err(ContentError::Missing(_))
    ));
    // The empty value is always complete, as iroh-blobs has it.
    assert!(store.is_complete(&ContentHash::EMPTY));
    assert_eq!(store.read_to_bytes(ContentHash::EMPTY).await?, Bytes::new());
    Ok(())
}

#[tokio::test]
async fn imports_survive_a_reopen_and_are_known_complete_at_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let big = Bytes::from(
        (0..300_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let file = dir.path().join("input.bin");
    std::fs::write(&file, &big)?;
    let (small, from_file, from_reader) = {
        let store = ContentStore::persistent(dir.path().join("blobs"), GcOptions::off()).await?;
        let small = store.import_bytes(Bytes::from_static(b"small")).await?.hash;
        let from_file = store.import_file(&file).await?;
        assert_eq!(
            (from_file.hash, from_file.len),
            (ContentHash::of(&big), big.len() as u64)
        );
        let reader = std::io::Cursor::new(b"from a reader".to_vec());
        let from_reader = store.import_reader(reader).await?;
        assert_eq!(from_reader.len, 13);
        store.shutdown().await?;
        (small, from_file.hash, from_reader.hash)
    };
    let store = ContentStore::persistent(dir.path().join("blobs"), GcOptions::off()).await?;
    for hash in [small, from_file, from_reader] {
        assert!(
            store.is_complete(&hash),
            "{hash} known complete after reopen"
        );
    }
    assert_eq!(store.read_to_bytes(from_file).await?, big);
    let exported = dir.path().join("out/exported.bin");
    assert_eq!(store.export(from_file, &exported).await?, big.len() as u64);
    assert_eq!(std::fs::read(&exported)?, big);
    let mut reader = store.reader(from_reader).await?;
    let mut text = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut text).await?;
    assert_eq!(text, "from a reader");
    Ok(())
}
