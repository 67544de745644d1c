//! Local writes signed off the actor thread, while it stores the writes signed before them.
//!
//! Two signatures are most of a local write's cost. The actor takes the writes waiting in the
//! channel, gives each its timestamp in arrival order, and hands them to a pool of signing
//! threads; it goes on serving the channel and stores each write, in arrival order, as soon
//! as it and every write before it are signed. Any other request first waits for every
//! write before it to be stored, so callers see their requests served in order.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use sync_core::{Author, NamespaceSecret, Record, SignedEntry};
use tokio::sync::oneshot;

use crate::ActorError;

/// The reply of one local write.
pub(crate) type Reply = oneshot::Sender<Result<SignedEntry, ActorError>>;

/// An entry to sign.
pub(crate) struct SignJob {
    pub(crate) secret: NamespaceSecret,
    pub(crate) author: Author,
    pub(crate) key: bytes::Bytes,
    pub(crate) record: Record,
}

impl SignJob {
    pub(crate) fn sign(self) -> SignedEntry {
        SignedEntry::create(&self.secret, &self.author, &self.key, self.record)
    }
}

type Job = (SignJob, oneshot::Sender<SignedEntry>);

/// A write handed to the pool, with its reply.
pub(crate) struct Signing {
    pub(crate) reply: Reply,
    pub(crate) signed: oneshot::Receiver<SignedEntry>,
}

/// The most writes that are being signed at once: the actor takes no new request while this
/// many wait to be stored, which bounds the memory they hold.
const MAX_IN_FLIGHT: usize = 256;

/// The signing threads, started on first use, and the writes they are signing, oldest first.
///
/// The threads take jobs from one queue, so none idles while another has work, and each write
/// is a job of its own, so that the actor stores it as soon as it and those before it are
/// signed. The actor takes jobs from the queue too while it has nothing else to do
/// ([`Signer::help`]): a thread that is woken for a job takes a while to run, and a write that
/// arrives alone is signed and stored without waiting for one. The threads end when the pool
/// is dropped.
pub(crate) struct Signer {
    threads: usize,
    started: usize,
    queue: Arc<Queue>,
    pending: VecDeque<Signing>,
}

/// The jobs no one has taken yet.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    closed: bool,
}

impl Queue {
    /// The state. A panic never leaves it half changed (it is changed by one push, pop or
    /// assignment at a time), so a poisoned lock is taken as it is.
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next job, or `None` once the pool is closed.
    fn take(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn try_take(&self) -> Option<Job> {
        self.lock().jobs.pop_front()
    }
}

impl Signer {
    pub(crate) fn new(threads: usize) -> Self {
        Signer {
            threads: threads.max(1),
            started: 0,
            queue: Arc::default(),
            pending: VecDeque::new(),
        }
    }

    /// Hands the jobs to the pool, each with the reply that answers it once it is stored.
    pub(crate) fn submit(&mut self, jobs: Vec<(SignJob, Reply)>) {
        self.start_threads();
        let mut queued = Vec::with_capacity(jobs.len());
        for (job, reply) in jobs {
            let (tx, rx) = oneshot::channel();
            queued.push((job, tx));
            self.pending.push_back(Signing { reply, signed: rx });
        }
        if self.started == 0 {
            // No signing thread: the actor signs itself.
            for (job, tx) in queued {
                let _ = tx.send(job.sign());
            }
            return;
        }
        let n = queued.len();
        self.queue.lock().jobs.extend(queued);
        for _ in 0..n.min(self.started) {
            self.queue.ready.notify_one();
        }
    }

    /// Signs one job no thread has taken yet, if there is one. Returns whether it did.
    pub(crate) fn help(&mut self) -> bool {
        match self.queue.try_take() {
            Some((job, tx)) => {
                let _ = tx.send(job.sign());
                true
            }
            None => false,
        }
    }

    fn start_threads(&mut self) {
        while self.started < self.threads {
            let queue = Arc::clone(&self.queue);
            let spawned = std::thread::Builder::new()
                .name("sync-actor-signer".into())
                .spawn(move || {
                    while let Some((job, reply)) = queue.take() {
                        let _ = reply.send(job.sign());
                    }
                });
            match spawned {
                Ok(_) => self.started += 1,
                // Fewer threads than asked for (maybe none): use those there are.
                Err(_) => self.threads = self.started,
            }
        }
    }

    /// Whether the pool holds as many writes as it may: the oldest must be stored first.
    pub(crate) fn is_full(&self) -> bool {
        self.pending.len() >= MAX_IN_FLIGHT
    }

    /// The oldest write being signed, to wait for.
    pub(crate) fn oldest(&mut self) -> Option<&mut Signing> {
        self.pending.front_mut()
    }

    /// Removes the oldest write once it is signed, and returns its reply.
    pub(crate) fn finish_oldest(&mut self) -> Option<Reply> {
        self.pending.pop_front().map(|done| done.reply)
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use sync_core::ContentHash;

    use super::*;

    fn job(
        i: u64,
    ) -> (
        SignJob,
        Reply,
        oneshot::Receiver<Result<SignedEntry, ActorError>>,
    ) {
        let (reply, answer) = oneshot::channel();
        let job = SignJob {
            secret: NamespaceSecret::from_bytes(&[7; 32]),
            author: Author::from_bytes(&[9; 32]),
            key: format!("k/{i:03}").into(),
            record: Record::new(ContentHash::of(i.to_le_bytes()), 1, 1000 + i),
        };
        (job, reply, answer)
    }

    /// Writes come back in the order they were submitted, each signed for its own job, whether
    /// a thread or the actor (`help`) signed it; dropping the pool ends its threads' loop.
    #[test]
    fn writes_come_back_in_order_and_signed() {
        for threads in [1, 2, 4] {
            let mut signer = Signer::new(threads);
            let mut answers = Vec::new();
            for round in 0..5u64 {
                let jobs = (0..20)
                    .map(|i| {
                        let (job, reply, answer) = job(round * 20 + i);
                        answers.push(answer);
                        (job, reply)
                    })
                    .collect();
                signer.submit(jobs);
                // The actor takes some of them itself.
                signer.help();
            }
            let mut n = 0u64;
            while let Some(oldest) = signer.oldest() {
                let entry = loop {
                    match oldest.signed.try_recv() {
                        Ok(entry) => break entry,
                        Err(oneshot::error::TryRecvError::Empty) => std::thread::yield_now(),
                        Err(e) => panic!("write {n} lost: {e}"),
                    }
                };
                let reply = signer.finish_oldest().unwrap();
                entry.verify().unwrap();
                assert_eq!(
                    entry.key(),
                    format!("k/{n:03}").as_bytes(),
                    "{threads} threads"
                );
                assert_eq!(entry.record().timestamp(), 1000 + n);
                reply.send(Ok(entry)).unwrap();
                n += 1;
            }
            assert_eq!(n, 100);
            assert!(!signer.help(), "nothing left to sign");
            drop(signer);
            for answer in answers {
                assert!(answer.blocking_recv().unwrap().is_ok());
            }
        }
    }
}
