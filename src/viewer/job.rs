//! Background jobs for the window: a closure run on a thread of its own, polled each frame, with a
//! repaint requested when it ends (after the egui ecosystem's `poll-promise`). Anything that reads
//! or writes a file, decodes or hashes runs in a [`Job`]: the UI thread never waits on one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The worker ended without an answer (it panicked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the worker thread stopped without an answer")
    }
}

/// Progress a worker publishes while it runs (bytes, items: the worker's unit), and the request to
/// stop that the job's owner makes by dropping the job. Shared by the job and its worker.
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
    cancelled: AtomicBool,
    ctx: egui::Context,
    last_repaint: Mutex<Instant>,
}

/// A progress update asks for a repaint at most this often.
const PROGRESS_REPAINT: Duration = Duration::from_millis(100);

impl Progress {
    /// Publish `done` of `total`; repaints the window now and then so a progress bar moves.
    pub fn set(&self, done: u64, total: u64) {
        self.done.store(done, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        let mut last = self.last_repaint.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() > PROGRESS_REPAINT {
            self.ctx.request_repaint();
            *last = Instant::now();
        }
    }

    /// The job was dropped: the worker may stop early (its answer is not read).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// One value computed on a worker thread. Dropping the job does not stop the thread, but tells it
/// through [`Progress::is_cancelled`].
pub struct Job<T> {
    /// The worker's channel until it answered or stopped.
    rx: Option<Receiver<T>>,
    /// Boxed: a job waiting for a large value stays small.
    outcome: Option<Box<Result<T, Stopped>>>,
    progress: Arc<Progress>,
}

impl<T: Send + 'static> Job<T> {
    /// Run `work` on a new thread; the window repaints when it returns.
    pub fn spawn(ctx: &egui::Context, work: impl FnOnce() -> T + Send + 'static) -> Self {
        Self::spawn_with_progress(ctx, move |_| work())
    }

    /// Run `work` on a new thread, giving it a [`Progress`] to publish to and to check for
    /// cancellation; the window repaints when it returns.
    pub fn spawn_with_progress(ctx: &egui::Context, work: impl FnOnce(&Progress) -> T + Send + 'static) -> Self {
        let (tx, rx) = channel();
        let progress = Arc::new(Progress {
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            cancelled: AtomicBool::new(false),
            ctx: ctx.clone(),
            last_repaint: Mutex::new(Instant::now()),
        });
        let worker = progress.clone();
        std::thread::spawn(move || {
            let value = work(&worker);
            // The owner may have dropped the job: then nobody wants the value.
            let _ = tx.send(value);
            worker.ctx.request_repaint();
        });
        Job { rx: Some(rx), outcome: None, progress }
    }
}

impl<T> Job<T> {
    fn poll(&mut self) {
        let Some(rx) = &self.rx else { return };
        let outcome = match rx.try_recv() {
            Ok(value) => Ok(value),
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => Err(Stopped),
        };
        self.outcome = Some(Box::new(outcome));
        self.rx = None;
    }

    /// The worker has ended (with a value, or [`Stopped`]) and its answer is not taken yet.
    pub fn ready(&mut self) -> bool {
        self.poll();
        self.outcome.is_some()
    }

    /// The worker's answer once it has ended, taken (`None` while it runs, and after it was taken).
    pub fn try_take(&mut self) -> Option<Result<T, Stopped>> {
        self.poll();
        self.outcome.take().map(|o| *o)
    }

    /// Share done of the last [`Progress::set`], 0 to 1 (0 before any).
    pub fn fraction(&self) -> f32 {
        let total = self.progress.total.load(Ordering::Relaxed).max(1);
        self.progress.done.load(Ordering::Relaxed) as f32 / total as f32
    }
}

impl<T> Drop for Job<T> {
    fn drop(&mut self) {
        self.progress.cancelled.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait<T>(job: &mut Job<T>) -> Option<Result<T, Stopped>> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if job.ready() {
                return job.try_take();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }

    #[test]
    fn a_job_answers_once() {
        let ctx = egui::Context::default();
        let mut job = Job::spawn(&ctx, || 6 * 7);
        assert_eq!(wait(&mut job), Some(Ok(42)));
        assert_eq!(job.try_take(), None, "taken already");
    }

    #[test]
    fn a_panicking_worker_is_stopped() {
        let ctx = egui::Context::default();
        let mut job: Job<u8> = Job::spawn(&ctx, || panic!("on purpose"));
        assert_eq!(wait(&mut job), Some(Err(Stopped)));
    }

    #[test]
    fn progress_is_published_and_dropping_cancels() {
        let ctx = egui::Context::default();
        let (go_tx, go_rx) = channel::<()>();
        let (seen_tx, seen_rx) = channel::<bool>();
        let job = Job::spawn_with_progress(&ctx, move |p| {
            p.set(1, 4);
            let _ = go_rx.recv();
            let _ = seen_tx.send(p.is_cancelled());
        });
        let start = Instant::now();
        while job.fraction() == 0.0 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(job.fraction(), 0.25);
        drop(job);
        let _ = go_tx.send(());
        assert_eq!(seen_rx.recv_timeout(Duration::from_secs(10)), Ok(true));
    }
}
