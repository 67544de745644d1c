//! Events of a document, delivered to subscribers.

use sync_core::{ContentStatus, NamespaceId, SignedEntry};
use tokio::sync::broadcast;

/// Something that happened to an open document. Sent only for entries actually stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An entry written on this node.
    LocalInsert {
        /// The document.
        namespace: NamespaceId,
        /// The entry.
        entry: SignedEntry,
    },
    /// An entry received from a peer.
    RemoteInsert {
        /// The document.
        namespace: NamespaceId,
        /// The entry.
        entry: SignedEntry,
        /// The peer it came from (its endpoint id).
        from: [u8; 32],
        /// Whether the document's download policy wants its content.
        should_download: bool,
        /// Whether the peer said it has the content.
        remote_content_status: ContentStatus,
    },
}

/// What a subscriber receives: an event, or word that it fell behind.
// Almost every value is an `Event`; boxing it would add an allocation per event for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// The next event.
    Event(Event),
    /// The subscriber was too slow; this many events were dropped for it (the actor never
    /// waits for a subscriber).
    Lagged(u64),
}

/// A subscription to the events of one document. Ends (`None`) when the document is closed
/// by its last handle or the actor stops.
#[derive(Debug)]
pub struct Subscription {
    pub(crate) rx: broadcast::Receiver<Event>,
}

impl Subscription {
    /// The next event; `None` once the subscription has ended.
    pub async fn recv(&mut self) -> Option<Received> {
        match self.rx.recv().await {
            Ok(event) => Some(Received::Event(event)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Received::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next event if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Option<Received> {
        match self.rx.try_recv() {
            Ok(event) => Some(Received::Event(event)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Received::Lagged(n)),
            Err(_) => None,
        }
    }
}
