//! The verdicts on the values of one message, possibly still being computed.

use std::collections::VecDeque;
use std::fmt;

/// What [`Hooks::validate_stream`](crate::Hooks::validate_stream) returns: one verdict per value
/// of the message, in the order of the values, either all known at once ([`Verdicts::ready`])
/// or handed out a chunk at a time as they become known ([`Verdicts::streamed`]). A session
/// takes the verdicts of an item's values only when it stores them, so with streamed verdicts
/// it stores the values of one chunk while the checks of the next ones are still running (on
/// other threads of the caller's choosing).
pub struct Verdicts<R> {
    ready: VecDeque<Result<(), R>>,
    more: Option<NextChunk<R>>,
}

/// Produces the next chunk of verdicts, waiting for it if need be; `None` once all are out.
type NextChunk<R> = Box<dyn FnMut() -> Option<Vec<Result<(), R>>>>;

impl<R> Verdicts<R> {
    /// Verdicts that are all known.
    pub fn ready(verdicts: Vec<Result<(), R>>) -> Self {
        Verdicts {
            ready: verdicts.into(),
            more: None,
        }
    }

    /// Verdicts handed out in chunks: each call of `next_chunk` returns the verdicts on the
    /// values that follow those of the chunks before, waiting until they are known, and `None`
    /// once there are no more. The chunks together must hold exactly one verdict per value.
    pub fn streamed(next_chunk: impl FnMut() -> Option<Vec<Result<(), R>>> + 'static) -> Self {
        Verdicts {
            ready: VecDeque::new(),
            more: Some(Box::new(next_chunk)),
        }
    }

    /// The number of verdicts, if all are known.
    pub(crate) fn known_len(&self) -> Option<usize> {
        self.more.is_none().then_some(self.ready.len())
    }
}

impl<R> Iterator for Verdicts<R> {
    type Item = Result<(), R>;

    fn next(&mut self) -> Option<Result<(), R>> {
        loop {
            if let Some(verdict) = self.ready.pop_front() {
                return Some(verdict);
            }
            let more = self.more.as_mut()?;
            match more() {
                Some(chunk) => self.ready.extend(chunk),
                None => {
                    self.more = None;
                    return None;
                }
            }
        }
    }
}

impl<R> fmt::Debug for Verdicts<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verdicts")
            .field("ready", &self.ready.len())
            .field("streamed", &self.more.is_some())
            .finish()
    }
}
