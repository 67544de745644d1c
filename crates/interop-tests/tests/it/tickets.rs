//! Tickets copy between iroh-docs 0.101 and docsync, in both directions, byte for byte.

use std::net::SocketAddr;

use proptest::prelude::*;

fn addr(seed: [u8; 32], ip: [u8; 4], port: u16, v6: bool) -> iroh::EndpointAddr {
    let id = iroh::SecretKey::from_bytes(&seed).public();
    let sock: SocketAddr = if v6 {
        SocketAddr::from((
            [0, 0, 0, 0, 0, 0xffff, u16::from(ip[0]), u16::from(ip[1])],
            port,
        ))
    } else {
        SocketAddr::from((ip, port))
    };
    iroh::EndpointAddr::new(id).with_ip_addr(sock)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn tickets_round_trip_between_implementations(
        ns in any::<[u8; 32]>(),
        write in any::<bool>(),
        nodes in proptest::collection::vec((any::<[u8; 32]>(), any::<[u8; 4]>(), any::<u16>(), any::<bool>()), 1..4),
    ) {
        let nodes: Vec<iroh::EndpointAddr> = nodes.into_iter().map(|(s, ip, p, v6)| addr(s, ip, p, v6)).collect();
        let their_secret = iroh_docs::NamespaceSecret::from_bytes(&ns);
        let their_cap = if write {
            iroh_docs::Capability::Write(their_secret.clone())
        } else {
            iroh_docs::Capability::Read(their_secret.id())
        };
        let theirs = iroh_docs::DocTicket::new(their_cap, nodes.clone());
        let text = theirs.to_string();

        // Theirs parsed by us.
        let ours: docsync::DocTicket = text.parse().unwrap();
        let our_secret = sync_core::NamespaceSecret::from_bytes(&ns);
        let expected_cap = if write {
            sync_core::Capability::Write(our_secret.clone())
        } else {
            sync_core::Capability::Read(our_secret.id())
        };
        prop_assert_eq!(&ours.capability, &expected_cap);
        prop_assert_eq!(&ours.nodes, &nodes);
        // Ours printed is the same text, and parsed by them.
        prop_assert_eq!(ours.to_string(), text.clone());
        let back: iroh_docs::DocTicket = ours.to_string().parse().unwrap();
        prop_assert_eq!(back.nodes, nodes);
        prop_assert_eq!(*back.capability.id().as_bytes(), *our_secret.id().as_bytes());
    }
}

#[test]
fn empty_node_lists_are_refused_by_both() {
    let secret = sync_core::NamespaceSecret::from_bytes(&[7; 32]);
    let ours = docsync::DocTicket::new(sync_core::Capability::Write(secret), vec![]);
    let text = ours.to_string();
    assert_eq!(
        text.parse::<docsync::DocTicket>(),
        Err(docsync::TicketError::NoNodes)
    );
    assert!(text.parse::<iroh_docs::DocTicket>().is_err());
}
