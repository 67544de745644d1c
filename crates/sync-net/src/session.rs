//! What both sides of a session share: framed reads and writes under the limits, one
//! reconciliation step, the close sequence, and the outcome.

use std::time::Duration;

use iroh::EndpointId;
use iroh::endpoint::{Connection, ReadExactError, RecvStream, SendStream, VarInt};
use ranger::Session;
use sync_actor::{SyncHandle, SyncProgress};
use sync_core::encoding::DecodeLimits;
use sync_core::{AuthorHeads, NamespaceId, RejectionCounts};
use tokio::time::timeout;

use crate::error::{CloseWarning, SyncError};
use crate::limits::Limits;
use crate::metrics::Side;
use crate::wire::{Codec, ProtocolMessage, WireMessage, check_ranges};

/// The largest piece read at once while a frame body arrives: the buffer grows with the bytes
/// that actually came, never to the announced length up front.
const READ_CHUNK: usize = 64 * 1024;

/// Application close codes of a connection ended by a session error (see `docs/protocol.md`).
pub(crate) mod close_code {
    /// The peer broke the protocol (malformed frames, foreign ranges, unexpected messages).
    pub(crate) const PROTOCOL: u32 = 1;
    /// A limit was hit (frame size, rounds, deadline, idle).
    pub(crate) const LIMIT: u32 = 2;
    /// This node failed (actor, stream errors).
    pub(crate) const INTERNAL: u32 = 3;
}

/// The close code for a session that ended with `err`, or `None` if the session ends with the
/// normal close sequence (the peer got an `Abort` frame, or knows already).
pub(crate) fn close_code_for(err: &SyncError) -> Option<u32> {
    match err {
        SyncError::FrameTooLarge { .. }
        | SyncError::Timeout(_)
        | SyncError::Idle(_)
        | SyncError::TooManyRounds(_) => Some(close_code::LIMIT),
        SyncError::Malformed(_)
        | SyncError::Truncated
        | SyncError::ForeignRange
        | SyncError::UnexpectedMessage(_) => Some(close_code::PROTOCOL),
        SyncError::TooManySessions { .. } | SyncError::Actor(_) | SyncError::Config(_) => None,
        SyncError::Read(_) | SyncError::Write(_) => Some(close_code::INTERNAL),
    }
}

/// Closes `conn` at once with `code` and the error as reason.
pub(crate) fn close_with(conn: &Connection, code: u32, err: &SyncError) {
    let reason = err.to_string();
    let reason = reason.as_bytes();
    conn.close(VarInt::from_u32(code), reason.get(..64).unwrap_or(reason));
}

/// Counts what crosses the stream and reads and writes frames under the limits.
#[derive(Debug, Default)]
pub(crate) struct FrameIo {
    pub(crate) bytes_received: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) frames_received: u64,
    pub(crate) frames_sent: u64,
    /// The peer's stream has ended and every byte was read.
    pub(crate) eof: bool,
    /// The encoding the connection negotiated.
    pub(crate) codec: Codec,
    /// The session's document, once an `Init` went either way (the compact encoding needs it).
    namespace: Option<NamespaceId>,
}

impl FrameIo {
    /// Counters at zero, speaking `codec`.
    pub(crate) fn new(codec: Codec) -> Self {
        Self {
            codec,
            ..Self::default()
        }
    }

    /// Reads the next frame: `None` at the end of the stream (between frames). A length
    /// above the limit is refused before anything is allocated; the body buffer grows only
    /// with the bytes that arrive. Every wait is bounded by the idle timeout.
    pub(crate) async fn read(
        &mut self,
        recv: &mut RecvStream,
        limits: &Limits,
    ) -> Result<Option<WireMessage>, SyncError> {
        let idle = limits.idle_timeout;
        let mut prefix = [0u8; 4];
        match timeout(idle, recv.read_exact(&mut prefix)).await {
            Err(_) => return Err(SyncError::Idle(idle)),
            Ok(Err(ReadExactError::FinishedEarly(0))) => {
                self.eof = true;
                return Ok(None);
            }
            Ok(Err(ReadExactError::FinishedEarly(_))) => return Err(SyncError::Truncated),
            Ok(Err(ReadExactError::ReadError(e))) => return Err(SyncError::Read(e)),
            Ok(Ok(())) => {}
        }
        let len = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
        if len > limits.max_frame {
            return Err(SyncError::FrameTooLarge {
                len,
                max: limits.max_frame,
            });
        }
        let mut body = Vec::with_capacity(len.min(READ_CHUNK));
        while body.len() < len {
            let want = (len - body.len()).min(READ_CHUNK);
            match timeout(idle, recv.read_chunk(want)).await {
                Err(_) => return Err(SyncError::Idle(idle)),
                Ok(Err(e)) => return Err(SyncError::Read(e)),
                Ok(Ok(None)) => return Err(SyncError::Truncated),
                Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
            }
        }
        self.bytes_received += 4 + len as u64;
        self.frames_received += 1;
        let message = self
            .codec
            .decode(&body, self.namespace, DecodeLimits::default())?;
        if let WireMessage::Init { namespace, .. } = &message {
            self.namespace = Some(*namespace);
        }
        Ok(Some(message))
    }

    /// Writes one frame; a write the peer does not take within the idle timeout fails.
    pub(crate) async fn write(
        &mut self,
        send: &mut SendStream,
        message: &WireMessage,
        limits: &Limits,
    ) -> Result<(), SyncError> {
        if let WireMessage::Init { namespace, .. } = message {
            self.namespace = Some(*namespace);
        }
        let frame = self
            .codec
            .to_frame(message, self.namespace, limits.max_frame)?;
        match timeout(limits.idle_timeout, send.write_all(&frame)).await {
            Err(_) => Err(SyncError::Idle(limits.idle_timeout)),
            Ok(Err(e)) => Err(SyncError::Write(e)),
            Ok(Ok(())) => {
                self.bytes_sent += frame.len() as u64;
                self.frames_sent += 1;
                Ok(())
            }
        }
    }
}

/// Our side of the reconciliation of one document: every incoming message passes the range
/// fence and the round limit, then goes to the actor.
pub(crate) struct Exchange<'a> {
    handle: &'a SyncHandle,
    namespace: NamespaceId,
    limits: &'a Limits,
    progress: Option<SyncProgress>,
    rounds: u64,
    /// We sent the empty message that says we are done.
    done_sent: bool,
}

/// What to do after a message of the peer.
pub(crate) enum Next {
    /// Send this (a reply, or the empty message that says we are done).
    Send(ProtocolMessage),
    /// The exchange is over: close.
    End,
}

impl<'a> Exchange<'a> {
    /// A session with `peer` under `limits`' reconciliation budget. `progress` from
    /// `sync_initial_message` keeps its counters' owner; its configuration is replaced.
    pub(crate) fn new(
        handle: &'a SyncHandle,
        namespace: NamespaceId,
        limits: &'a Limits,
        progress: Option<SyncProgress>,
        peer: EndpointId,
    ) -> Result<Self, SyncError> {
        let config = limits.reconciliation().map_err(SyncError::Config)?;
        let progress = match progress {
            Some(mut progress) => {
                progress.session = Session::new(config);
                progress
            }
            None => SyncProgress {
                session: Session::new(config),
                heads_received: AuthorHeads::default(),
                peer: *peer.as_bytes(),
                rejections: RejectionCounts::default(),
            },
        };
        Ok(Self {
            handle,
            namespace,
            limits,
            progress: Some(progress),
            rounds: 0,
            done_sent: false,
        })
    }

    /// Processes one message of the peer; the reply, or `None` when our side is done.
    pub(crate) async fn step(
        &mut self,
        message: ProtocolMessage,
    ) -> Result<Option<ProtocolMessage>, SyncError> {
        check_ranges(&message, self.namespace)?;
        if self.rounds >= self.limits.max_rounds {
            return Err(SyncError::TooManyRounds(self.limits.max_rounds));
        }
        self.rounds += 1;
        // Taken for the call; a failed call ends the session, so it is not put back.
        let progress = self.progress.take().ok_or(SyncError::UnexpectedMessage(
            "a message after a failed step",
        ))?;
        let (reply, progress) = self
            .handle
            .sync_process_message(self.namespace, message, progress)
            .await
            .map_err(SyncError::Actor)?;
        self.progress = Some(progress);
        Ok(reply)
    }

    /// Answers one message of the peer, with the end handshake that lets a reference peer's
    /// close sequence succeed.
    ///
    /// The reference ends a session by finishing its stream when it has nothing to reply, and
    /// the other side's close sequence then fails: having read the end of the stream, its
    /// `read_to_end(0)` finds the stream gone (protocol notes §11, "Failed to close
    /// connection"). So when we have nothing to reply to a non-empty message we send an empty
    /// message instead: a reference peer has nothing to reply to it either, ends its loop
    /// without reading our end of stream, finishes its own stream and waits for ours. When the
    /// peer's message was itself empty (our own peers' way of saying they are done), we end.
    pub(crate) async fn answer(&mut self, message: ProtocolMessage) -> Result<Next, SyncError> {
        let empty = message.parts.is_empty();
        match self.step(message).await? {
            Some(reply) => Ok(Next::Send(reply)),
            None if empty || self.done_sent => Ok(Next::End),
            None => {
                self.done_sent = true;
                Ok(Next::Send(ProtocolMessage::new(Vec::new())))
            }
        }
    }

    /// The counters and heads so far.
    pub(crate) fn into_outcome(self, io: &FrameIo) -> SyncOutcome {
        let mut outcome = SyncOutcome {
            rounds: self.rounds,
            bytes_received: io.bytes_received,
            bytes_sent: io.bytes_sent,
            frames_received: io.frames_received,
            frames_sent: io.frames_sent,
            ..SyncOutcome::default()
        };
        if let Some(progress) = self.progress {
            let o = progress.session.outcome();
            outcome.entries_received = o.entries_received;
            outcome.entries_sent = o.entries_sent;
            outcome.entries_inserted = o.entries_inserted;
            outcome.entries_rejected = o.entries_rejected;
            outcome.rejections = progress.rejections;
            outcome.heads_received = progress.heads_received;
        }
        outcome
    }
}

/// Who ends its stream first in the close sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseOrder {
    /// The reference's order: finish our stream, wait until the peer has acknowledged it,
    /// then wait for the end of the peer's stream.
    UsFirst,
    /// Wait for the end of the peer's stream first, then finish ours. After we sent `Abort`
    /// the peer closes first, and it must not read our end of stream before its own
    /// `read_to_end(0)` (see [`Exchange::answer`]).
    PeerFirst,
}

/// The close sequence, skipping the wait for the peer's end of stream if it was read already.
/// Bounded by `grace`; a failure is a warning, not an error.
pub(crate) async fn close_sequence(
    send: &mut SendStream,
    recv: &mut RecvStream,
    io: &FrameIo,
    grace: Duration,
    order: CloseOrder,
) -> Option<CloseWarning> {
    let sequence = async {
        // Whatever the peer's end looks like, ours is still finished.
        let first = if order == CloseOrder::PeerFirst && !io.eof {
            recv.read_to_end(0).await.err().map(CloseWarning::ReadToEnd)
        } else {
            None
        };
        send.finish().map_err(CloseWarning::Finish)?;
        send.stopped().await.map_err(CloseWarning::Stopped)?;
        if order == CloseOrder::UsFirst && !io.eof {
            recv.read_to_end(0).await.map_err(CloseWarning::ReadToEnd)?;
        }
        first.map_or(Ok(()), Err)
    };
    match timeout(grace, sequence).await {
        Err(_) => Some(CloseWarning::Timeout(grace)),
        Ok(Err(warning)) => Some(warning),
        Ok(Ok(())) => None,
    }
}

/// The counters of a finished session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncOutcome {
    /// Entries received in items, stored or not (iroh-docs `num_recv`).
    pub entries_received: u64,
    /// Entries sent in items (iroh-docs `num_sent`).
    pub entries_sent: u64,
    /// Received entries the store took.
    pub entries_inserted: u64,
    /// Received entries dropped by validation (another document, bad signature, too far in
    /// the future).
    pub entries_rejected: u64,
    /// The same entries by reason.
    pub rejections: RejectionCounts,
    /// Messages our side processed.
    pub rounds: u64,
    /// Frame bytes received, length prefixes included.
    pub bytes_received: u64,
    /// Frame bytes sent, length prefixes included.
    pub bytes_sent: u64,
    /// Frames received.
    pub frames_received: u64,
    /// Frames sent.
    pub frames_sent: u64,
    /// Per author, the newest timestamp among the valid entries received.
    pub heads_received: AuthorHeads,
}

/// How long the parts of a session took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Connecting and opening the stream (dialing), or waiting for the stream (accepting).
    pub connect: Duration,
    /// The exchange and the close sequence.
    pub process: Duration,
}

/// A session that reconciled to the end.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SyncFinished {
    /// The document.
    pub namespace: NamespaceId,
    /// The peer.
    pub peer: EndpointId,
    /// Which side we were.
    pub side: Side,
    /// The counters.
    pub outcome: SyncOutcome,
    /// The encoding the connection spoke.
    pub codec: Codec,
    /// The durations.
    pub timings: Timings,
    /// Set if the close sequence after the complete exchange failed (a real iroh-docs node
    /// often drops the connection early, protocol notes §11). The exchange still counts.
    pub close_warning: Option<CloseWarning>,
}
