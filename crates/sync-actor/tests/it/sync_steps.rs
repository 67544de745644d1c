//! Two actors reconcile through the sync steps of their handles.

use sync_actor::{Event, OpenOptions, Received};
use sync_core::{Author, Capability, Query};

use crate::mem_actor;

#[tokio::test]
async fn two_actors_converge_with_events_and_counters() {
    let (alice, bob) = (mem_actor(), mem_actor());
    let secret = alice.create_replica().await.unwrap();
    let ns = secret.id();
    bob.import_namespace(Capability::Write(secret))
        .await
        .unwrap();
    let author = Author::generate();
    alice.import_author(author.clone()).await.unwrap();
    bob.import_author(author.clone()).await.unwrap();
    let _ga = alice.open(ns, OpenOptions::sync()).await.unwrap();
    let _gb = bob.open(ns, OpenOptions::sync()).await.unwrap();
    for i in 0..20 {
        alice
            .hash_and_insert(ns, author.id(), format!("a{i}"), [i])
            .await
            .unwrap();
    }
    for i in 0..7 {
        bob.hash_and_insert(ns, author.id(), format!("b{i}"), [i])
            .await
            .unwrap();
    }
    let mut bob_events = bob.subscribe(ns).await.unwrap();

    let (mut msg, mut pa) = alice.sync_initial_message(ns, [2; 32]).await.unwrap();
    let (_, mut pb) = bob.sync_initial_message(ns, [1; 32]).await.unwrap();
    pb.session = ranger::Session::new(ranger::Config::reference());
    let mut to_bob = true;
    let mut rounds = 0;
    loop {
        let reply = if to_bob {
            let (reply, next) = bob.sync_process_message(ns, msg, pb).await.unwrap();
            pb = next;
            reply
        } else {
            let (reply, next) = alice.sync_process_message(ns, msg, pa).await.unwrap();
            pa = next;
            reply
        };
        rounds += 1;
        assert!(rounds < 100);
        match reply {
            Some(m) => msg = m,
            None => break,
        }
        to_bob = !to_bob;
    }
    let a = alice.query(ns, Query::all()).collect().await.unwrap();
    let b = bob.query(ns, Query::all()).collect().await.unwrap();
    assert_eq!(a.len(), 27);
    assert_eq!(a, b);
    assert_eq!(pb.session.outcome().entries_inserted, 20);
    assert_eq!(pa.session.outcome().entries_inserted, 7);
    // Bob's heads are the newest of what Alice sent him.
    let newest_from_alice = a
        .iter()
        .filter(|e| e.key().starts_with(b"a"))
        .map(|e| e.timestamp())
        .max();
    assert_eq!(pb.heads_received.get(&author.id()), newest_from_alice);
    // Bob saw exactly 20 remote inserts, from Alice's id.
    let mut remote = 0;
    while let Some(Received::Event(Event::RemoteInsert {
        from,
        should_download,
        ..
    })) = bob_events.try_recv()
    {
        assert_eq!(from, [1; 32]);
        assert!(should_download);
        remote += 1;
    }
    assert_eq!(remote, 20);
    assert_eq!(bob.metrics().await.unwrap().entries_remote, 20);
}
