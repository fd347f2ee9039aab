//! The group-commit writer: many callers submit events, one thread writes them.
//!
//! The callback receiver must answer 200 only once an event is durable, and one fsync per request would cap
//! it at the disk's fsync rate. So every submission goes onto a queue; the writer thread takes whatever has
//! queued up (up to [`WriterOptions::max_batch`]), records it all in one transaction — one commit, one fsync
//! (`synchronous=FULL` on SQLite, `synchronous_commit=on` on PostgreSQL, see [`crate::schema`]) — and only
//! then completes each submission's [`Completion`]. The same on both back ends: the writer owns one
//! [`Ledger`], whichever database it is on.
//! Under load batches grow by themselves; alone, an event is committed at once.
//!
//! A [`Completion`] is a `Future` (await it from async code: it needs no runtime of its own) and can also be
//! waited on from a plain thread with [`Completion::wait`].
//!
//! ```
//! use archive_db::{GroupWriter, IncomingEvent, Ledger};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("ledger.sqlite3");
//! let writer = GroupWriter::start(Ledger::open(&path).unwrap());
//! let pending: Vec<_> = (0..10)
//!     .map(|i| {
//!         let body = format!(r#"{{"id":"00000000-0000-4000-8000-{i:012}","event":"archive","status":"started"}}"#);
//!         writer.submit(IncomingEvent::from_callback(body.as_bytes(), "test").unwrap())
//!     })
//!     .collect();
//! for done in pending {
//!     done.wait().unwrap(); // durable from here on
//! }
//! writer.shutdown().unwrap();
//! assert_eq!(Ledger::open(&path).unwrap().counts().unwrap(), (10, 10));
//! ```

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle, Thread};

use futures_channel::oneshot;

use crate::event::IncomingEvent;
use crate::upsert::EventOutcome;
use crate::{DbError, Ledger};

/// How the writer batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// The most events committed in one transaction.
    pub max_batch: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self { max_batch: 4096 }
    }
}

/// Counters of what the writer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Events committed (or refused one by one).
    pub events: u64,
    /// Transactions committed.
    pub commits: u64,
    /// The largest batch.
    pub largest_batch: u64,
}

#[derive(Debug, Default)]
struct Counters {
    events: AtomicU64,
    commits: AtomicU64,
    largest_batch: AtomicU64,
}

struct Job {
    event: IncomingEvent,
    done: oneshot::Sender<Result<EventOutcome, DbError>>,
}

/// The writer thread and its queue. Dropping it (or [`GroupWriter::shutdown`]) lets the thread write what is
/// queued and then stop.
///
/// Batches: a commit takes everything queued when it starts; an event that fails alone (its savepoint is
/// rolled back) fails only its own submission; a commit that fails fails every submission of the batch.
#[derive(Debug)]
pub struct GroupWriter {
    submitter: Submitter,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
    checkpointer: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

/// A cheap, cloneable handle that submits events to a [`GroupWriter`] (for handing to request handlers).
#[derive(Clone)]
pub struct Submitter {
    tx: mpsc::Sender<Msg>,
}

impl std::fmt::Debug for Submitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitter").finish_non_exhaustive()
    }
}

impl Submitter {
    /// Queues `event`; the returned [`Completion`] resolves once it is committed (or failed).
    pub fn submit(&self, event: IncomingEvent) -> Completion {
        let (done, rx) = oneshot::channel();
        // If the writer has stopped, `done` is dropped with the job and the completion reports it.
        let _ = self.tx.send(Msg::Job(Job { event, done }));
        Completion { rx }
    }

    /// Whether the ledger can commit now ([`Ledger::probe_write`]), asked of the writer thread in turn with
    /// the events (so it waits behind a batch being committed); nothing is written. Needs no runtime.
    pub async fn probe(&self) -> Result<(), DbError> {
        let (done, rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Probe(done));
        rx.await.unwrap_or(Err(DbError::WriterStopped))
    }
}

impl GroupWriter {
    /// Starts the writer thread on `ledger` with the default options.
    pub fn start(ledger: Ledger) -> Self {
        Self::with_options(ledger, WriterOptions::default())
    }

    /// Starts the writer thread on `ledger`.
    pub fn with_options(ledger: Ledger, options: WriterOptions) -> Self {
        let checkpointer = start_checkpointer(&ledger);
        let (tx, rx) = mpsc::channel::<Msg>();
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        let thread = thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || run(ledger, rx, options, &thread_counters))
            .ok();
        Self {
            submitter: Submitter { tx },
            counters,
            thread,
            checkpointer,
        }
    }

    /// Queues `event`; the returned [`Completion`] resolves once it is committed (or failed).
    pub fn submit(&self, event: IncomingEvent) -> Completion {
        self.submitter.submit(event)
    }

    /// A cheap handle for submitting from elsewhere (request handlers, other threads).
    pub fn submitter(&self) -> Submitter {
        self.submitter.clone()
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            events: self.counters.events.load(Ordering::Relaxed),
            commits: self.counters.commits.load(Ordering::Relaxed),
            largest_batch: self.counters.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// Writes everything queued so far, then stops the thread. Events submitted afterwards (through a
    /// [`Submitter`] still around) are not recorded and their completions say so.
    pub fn shutdown(mut self) -> Result<WriterStats, DbError> {
        let stats = self.stop();
        stats.ok_or(DbError::WriterStopped)
    }

    fn stop(&mut self) -> Option<WriterStats> {
        let thread = self.thread.take()?;
        let _ = self.submitter.tx.send(Msg::Stop);
        let joined = thread.join();
        if let Some((stop, checkpointer)) = self.checkpointer.take() {
            drop(stop);
            let _ = checkpointer.join();
        }
        joined.ok()?;
        Some(self.stats())
    }
}

impl Drop for GroupWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How often the checkpointer moves committed pages from the WAL into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Takes WAL checkpoints off the writer's commit path: the writer's connection stops checkpointing on its own
/// (a checkpoint's page copying and database fsync would stall every submitter of the batch behind it), and a
/// second connection runs passive checkpoints, which never block the writer, a few times a second. If that
/// connection cannot be opened the writer keeps SQLite's automatic checkpoints.
fn start_checkpointer(ledger: &Ledger) -> Option<(mpsc::Sender<()>, JoinHandle<()>)> {
    // PostgreSQL checkpoints on its own; a SQLite ledger in memory has no WAL.
    let writer = ledger.conn.sqlite()?;
    let path = ledger.path();
    if path.as_os_str() == ":memory:" {
        return None;
    }
    let conn = rusqlite::Connection::open(path).ok()?;
    conn.pragma_update(None, "synchronous", "FULL").ok()?;
    writer.pragma_update(None, "wal_autocheckpoint", 0).ok()?;
    let (stop, stopped) = mpsc::channel::<()>();
    let checkpoint = move || {
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    };
    let handle = thread::Builder::new()
        .name("ledger-checkpoint".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY)
            {
                checkpoint();
            }
            checkpoint();
        });
    match handle {
        Ok(handle) => Some((stop, handle)),
        Err(_) => {
            // No thread: back to automatic checkpoints.
            let _ = writer.pragma_update(None, "wal_autocheckpoint", 1000);
            None
        }
    }
}

enum Msg {
    Job(Job),
    Probe(oneshot::Sender<Result<(), DbError>>),
    Stop,
}

fn run(mut ledger: Ledger, rx: mpsc::Receiver<Msg>, options: WriterOptions, counters: &Counters) {
    let max = options.max_batch.max(1);
    let mut stopping = false;
    while !stopping {
        // Wait for work, then take whatever else is queued (up to `max`). Readiness probes are answered
        // after the batch they came with.
        let (mut batch, mut probes) = (Vec::new(), Vec::new());
        match rx.recv() {
            Ok(Msg::Job(job)) => batch.push(job),
            Ok(Msg::Probe(done)) => probes.push(done),
            Ok(Msg::Stop) | Err(_) => stopping = true,
        }
        loop {
            while batch.len() < max {
                match rx.try_recv() {
                    Ok(Msg::Job(job)) => batch.push(job),
                    Ok(Msg::Probe(done)) => probes.push(done),
                    Ok(Msg::Stop) => stopping = true,
                    Err(_) => break,
                }
            }
            let committed = !batch.is_empty();
            if committed {
                commit(&mut ledger, std::mem::take(&mut batch), counters);
            }
            for done in probes.drain(..) {
                let _ = done.send(ledger.probe_write());
            }
            // While stopping, drain everything queued before the stop; otherwise go back to waiting.
            if !committed || !stopping {
                break;
            }
        }
    }
    // Jobs submitted after this point are dropped with the receiver: their completions report
    // `WriterStopped`, so nobody is told an event is durable when it is not.
}

fn commit(ledger: &mut Ledger, batch: Vec<Job>, counters: &Counters) {
    let events: Vec<&IncomingEvent> = batch.iter().map(|j| &j.event).collect();
    let results = ledger.record_events(&events);
    let n = batch.len() as u64;
    counters.events.fetch_add(n, Ordering::Relaxed);
    counters.largest_batch.fetch_max(n, Ordering::Relaxed);
    match results {
        Ok(results) => {
            counters.commits.fetch_add(1, Ordering::Relaxed);
            for (job, result) in batch.into_iter().zip(results) {
                let _ = job.done.send(result);
            }
        }
        Err(e) => {
            // The database being away stays that (the receiver answers 503 and the service retries).
            let unavailable = match &e {
                DbError::Unavailable { reason, .. } => Some(reason.clone()),
                _ => None,
            };
            let message = e.to_string();
            for job in batch {
                let err = match &unavailable {
                    Some(reason) => DbError::Unavailable {
                        action: "commit events",
                        reason: reason.clone(),
                    },
                    None => DbError::Commit(message.clone()),
                };
                let _ = job.done.send(Err(err));
            }
        }
    }
}

/// Resolves when a submitted event is committed (durable) or has failed.
#[derive(Debug)]
#[must_use = "the event is durable only once the completion resolves"]
pub struct Completion {
    rx: oneshot::Receiver<Result<EventOutcome, DbError>>,
}

impl Future for Completion {
    type Output = Result<EventOutcome, DbError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(DbError::WriterStopped)))
    }
}

impl Completion {
    /// Blocks the current thread until the event is committed (or failed).
    pub fn wait(self) -> Result<EventOutcome, DbError> {
        struct Unpark(Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(self);
        loop {
            if let Poll::Ready(result) = fut.as_mut().poll(&mut cx) {
                return result;
            }
            thread::park();
        }
    }
}
