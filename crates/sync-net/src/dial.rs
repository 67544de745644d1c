//! The dialing side: connect, send `Init`, answer until one side is done, close.

use std::time::Instant;

use iroh::endpoint::{ConnectOptions, Connection, RecvStream, SendStream};
use iroh::{Endpoint, EndpointAddr};
use sync_actor::SyncHandle;
use sync_core::NamespaceId;
use tokio::time::timeout_at;

use crate::accept::Node;
use crate::error::{ConnectError, SyncError};
use crate::limits::Limits;
use crate::metrics::{SessionResult, Side};
use crate::session::{
    CloseOrder, Exchange, FrameIo, Next, SyncFinished, SyncOutcome, Timings, close_code,
    close_code_for, close_sequence, close_with,
};
use crate::wire::{ALPN, COMPACT_ALPN, Codec, ProtocolMessage, WireMessage};

/// Syncs `namespace` with `peer` over a new connection from `endpoint`, as the dialing side.
///
/// The document must be open for sync in `handle`. This standalone form knows nothing of
/// other sessions: it applies `limits` to this one session but neither the session counts nor
/// the simultaneous-dial rule, and records no metrics. A node that also accepts sessions
/// dials with [`SyncProtocol::connect_and_sync`](crate::SyncProtocol::connect_and_sync).
///
/// On success the peer is registered as useful for the document. A failed close sequence
/// after a complete exchange is reported in [`SyncFinished::close_warning`], not as an error.
pub async fn connect_and_sync(
    endpoint: &Endpoint,
    handle: &SyncHandle,
    namespace: NamespaceId,
    peer: EndpointAddr,
    limits: &Limits,
) -> Result<SyncFinished, ConnectError> {
    let mut io = FrameIo::default();
    let start = Instant::now();
    dial(endpoint, handle, namespace, peer, limits, &mut io, start).await
}

/// A dial of a node: admitted against its session counts and the simultaneous-dial state,
/// counted in its metrics.
pub(crate) async fn node_dial(
    node: &Node,
    namespace: NamespaceId,
    peer: EndpointAddr,
) -> Result<SyncFinished, ConnectError> {
    let start = Instant::now();
    let mut io = FrameIo::default();
    let result = match node.registry.admit(peer.id) {
        Err((scope, limit)) => Err(SyncError::TooManySessions { scope, limit }.into()),
        Ok(mut slot) => {
            if slot.start_connect(namespace) {
                let result = dial(
                    &node.endpoint,
                    &node.handle,
                    namespace,
                    peer,
                    &node.limits,
                    &mut io,
                    start,
                )
                .await;
                drop(slot);
                result
            } else {
                Err(ConnectError::AlreadySyncing)
            }
        }
    };
    let kind = match &result {
        Ok(finished) => {
            node.metrics.entries(&finished.outcome);
            SessionResult::Ok
        }
        Err(
            ConnectError::RemoteAbort(_)
            | ConnectError::AlreadySyncing
            | ConnectError::Sync(SyncError::TooManySessions { .. }),
        ) => SessionResult::Aborted,
        Err(_) => SessionResult::Failed,
    };
    node.metrics.bytes(io.bytes_received, io.bytes_sent);
    node.metrics.session(Side::Connect, kind, start.elapsed());
    result
}

async fn dial(
    endpoint: &Endpoint,
    handle: &SyncHandle,
    namespace: NamespaceId,
    peer: EndpointAddr,
    limits: &Limits,
    io: &mut FrameIo,
    start: Instant,
) -> Result<SyncFinished, ConnectError> {
    let peer_id = peer.id;
    let deadline = tokio::time::Instant::from_std(start) + limits.session_deadline;
    let timed_out = || ConnectError::Sync(SyncError::Timeout(limits.session_deadline));
    // Ask the actor first: a document we do not sync is not worth a connection.
    let (init, progress) = handle
        .sync_initial_message(namespace, *peer_id.as_bytes())
        .await
        .map_err(SyncError::Actor)?;
    let ex = Exchange::new(handle, namespace, limits, Some(progress), peer_id)?;
    let conn = timeout_at(deadline, connect(endpoint, peer, limits.compact_codec))
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| ConnectError::Connect(Box::new(e)))?;
    io.codec = Codec::from_alpn(conn.alpn()).unwrap_or_default();
    let (mut send, mut recv) = timeout_at(deadline, conn.open_bi())
        .await
        .map_err(|_| timed_out())?
        .map_err(ConnectError::Open)?;
    let connected = start.elapsed();

    let exchange = timeout_at(
        deadline,
        exchange(&mut send, &mut recv, ex, init, namespace, limits, io),
    )
    .await
    .unwrap_or_else(|_| Err(timed_out()));
    match exchange {
        Ok(outcome) => {
            let close_warning = close_sequence(
                &mut send,
                &mut recv,
                io,
                limits.close_grace,
                CloseOrder::UsFirst,
            )
            .await;
            // Remembering the peer is a courtesy; a failure here does not undo the exchange.
            let _ = handle
                .register_useful_peer(namespace, *peer_id.as_bytes())
                .await;
            Ok(SyncFinished {
                namespace,
                peer: peer_id,
                side: Side::Connect,
                outcome,
                codec: io.codec,
                timings: Timings {
                    connect: connected,
                    process: start.elapsed().saturating_sub(connected),
                },
                close_warning,
            })
        }
        Err(ConnectError::RemoteAbort(reason)) => {
            // The peer said why; close as it expects.
            let _ = close_sequence(
                &mut send,
                &mut recv,
                io,
                limits.close_grace,
                CloseOrder::UsFirst,
            )
            .await;
            Err(ConnectError::RemoteAbort(reason))
        }
        Err(ConnectError::Sync(err)) => {
            // No `Abort` goes from the dialer: the connection closes with a code instead.
            let code = close_code_for(&err).unwrap_or(close_code::INTERNAL);
            close_with(&conn, code, &err);
            Err(ConnectError::Sync(err))
        }
        Err(other) => Err(other),
    }
}

/// Connects to `peer` offering the compact encoding first if `compact`, and `/iroh-sync/1`
/// (which every peer speaks) in any case.
async fn connect(
    endpoint: &Endpoint,
    peer: EndpointAddr,
    compact: bool,
) -> Result<Connection, iroh::endpoint::ConnectError> {
    let (alpn, options) = if compact {
        (
            COMPACT_ALPN,
            ConnectOptions::new().with_additional_alpns(vec![ALPN.to_vec()]),
        )
    } else {
        (ALPN, ConnectOptions::new())
    };
    Ok(endpoint
        .connect_with_opts(peer, alpn, options)
        .await?
        .await?)
}

/// The dialer's exchange: `Init`, then one reply per `Sync` until a side is done.
async fn exchange(
    send: &mut SendStream,
    recv: &mut RecvStream,
    mut ex: Exchange<'_>,
    message: ProtocolMessage,
    namespace: NamespaceId,
    limits: &Limits,
    io: &mut FrameIo,
) -> Result<SyncOutcome, ConnectError> {
    io.write(send, &WireMessage::Init { namespace, message }, limits)
        .await?;
    loop {
        match io.read(recv, limits).await? {
            // The peer is done and closed its side.
            None => break,
            Some(WireMessage::Sync(message)) => match ex.answer(message).await? {
                Next::Send(reply) => io.write(send, &WireMessage::Sync(reply), limits).await?,
                Next::End => break,
            },
            Some(WireMessage::Abort { reason }) => return Err(ConnectError::RemoteAbort(reason)),
            Some(WireMessage::Init { .. }) => {
                return Err(SyncError::UnexpectedMessage("Init from the accepting side").into());
            }
        }
    }
    Ok(ex.into_outcome(io))
}
