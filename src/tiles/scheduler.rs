//! Deciding what to load and in what order, off the caller's thread.
//!
//! The viewer states, every frame, the tiles it wants with a priority (lower first: visible tiles
//! nearest the centre, then prefetch). The scheduler keeps at most `max_in_flight` loads running on
//! rayon's pool, always starting the most urgent queued tile next; a tile that drops out of the
//! wanted set before it starts is cancelled. Results wait in a mailbox until the caller collects
//! them, and a callback (the viewer's repaint request) fires as each one lands.
//!
//! Generic over what a load yields (`T`, e.g. a texture-ready image) and its error (`E`, e.g.
//! [`crate::SlideError`]): the scheduler knows tiles only by [`TileId`], never the slide.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

/// A tile of the slide a scheduler serves: pyramid level (0 = full resolution) and its column
/// and row in that level's tile grid.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct TileId {
    /// Pyramid level, 0 = full resolution.
    pub level: u32,
    /// Column in the level's tile grid (tiles from the left).
    pub col: u64,
    /// Row in the level's tile grid (tiles from the top).
    pub row: u64,
}

/// A tile wanted now, with its urgency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TileRequest {
    /// The tile.
    pub id: TileId,
    /// Lower loads sooner (the viewer uses the distance from the view's centre, in tiles).
    pub priority: f64,
}

/// What one load gave: the loader's value or its error, for tile `id`.
#[derive(Debug)]
pub struct TileResult<T, E> {
    /// The tile loaded.
    pub id: TileId,
    /// The loader's result.
    pub outcome: Result<T, E>,
}

type Loader<T, E> = dyn Fn(TileId) -> Result<T, E> + Send + Sync;

struct State {
    /// Sorted by descending priority value, so `pop()` yields the most urgent.
    queue: Vec<TileRequest>,
    in_flight: HashSet<TileId>,
    started: u64,
    cancelled: u64,
}

struct Shared<T, E> {
    state: Mutex<State>,
    results: Mutex<Vec<TileResult<T, E>>>,
    loader: Box<Loader<T, E>>,
    on_result: Box<dyn Fn() + Send + Sync>,
    max_in_flight: usize,
}

/// Counters for tests, the status bar and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    /// Requests waiting to start.
    pub queued: usize,
    /// Loads running now (at most the scheduler's `max_in_flight`).
    pub in_flight: usize,
    /// Loads started since the scheduler was made.
    pub started: u64,
    /// Queued requests dropped because a later wanted set left them out.
    pub cancelled: u64,
}

/// Loads tiles on rayon's pool in priority order, a bounded number at a time (see the module
/// docs). `T` is what the loader yields, `E` its error; both cross threads.
pub struct TileScheduler<T: Send + 'static, E: Send + 'static> {
    shared: Arc<Shared<T, E>>,
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    // A panic in a loader must not wedge the viewer: the data behind the lock stays consistent
    // (every critical section is a few field updates), so carry on with it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T: Send + 'static, E: Send + 'static> TileScheduler<T, E> {
    /// A scheduler that runs `loader` for each started tile and calls `on_result` after each
    /// result lands (from the pool's thread), with at most `max_in_flight` (at least 1) loads at
    /// once. Nothing starts before [`Self::set_wanted`].
    pub fn new(
        loader: impl Fn(TileId) -> Result<T, E> + Send + Sync + 'static,
        on_result: impl Fn() + Send + Sync + 'static,
        max_in_flight: usize,
    ) -> Self {
        TileScheduler {
            shared: Arc::new(Shared {
                state: Mutex::new(State { queue: Vec::new(), in_flight: HashSet::new(), started: 0, cancelled: 0 }),
                results: Mutex::new(Vec::new()),
                loader: Box::new(loader),
                on_result: Box::new(on_result),
                max_in_flight: max_in_flight.max(1),
            }),
        }
    }

    /// Replace the wanted set. Queued tiles not in `wanted` are cancelled; tiles already loading
    /// finish (their result still arrives). Duplicates keep their most urgent priority.
    pub fn set_wanted(&self, mut wanted: Vec<TileRequest>) {
        {
            let mut state = lock(&self.shared.state);
            let mut seen = HashSet::with_capacity(wanted.len());
            wanted.sort_by(|a, b| a.priority.total_cmp(&b.priority));
            wanted.retain(|r| !state.in_flight.contains(&r.id) && seen.insert(r.id));
            let kept: HashSet<TileId> = wanted.iter().map(|r| r.id).collect();
            let dropped = state.queue.iter().filter(|r| !kept.contains(&r.id)).count();
            state.cancelled += dropped as u64;
            wanted.reverse();
            state.queue = wanted;
        }
        Self::pump(&self.shared);
    }

    fn pump(shared: &Arc<Shared<T, E>>) {
        loop {
            let next = {
                let mut state = lock(&shared.state);
                if state.in_flight.len() >= shared.max_in_flight {
                    return;
                }
                let Some(next) = state.queue.pop() else { return };
                state.in_flight.insert(next.id);
                state.started += 1;
                next
            };
            let shared = shared.clone();
            rayon::spawn(move || {
                let outcome = (shared.loader)(next.id);
                lock(&shared.results).push(TileResult { id: next.id, outcome });
                lock(&shared.state).in_flight.remove(&next.id);
                (shared.on_result)();
                Self::pump(&shared);
            });
        }
    }

    /// Results that arrived since the last call.
    pub fn take_results(&self) -> Vec<TileResult<T, E>> {
        std::mem::take(&mut *lock(&self.shared.results))
    }

    /// Counts of queued, running, started and cancelled loads, now.
    pub fn stats(&self) -> SchedulerStats {
        let state = lock(&self.shared.state);
        SchedulerStats {
            queued: state.queue.len(),
            in_flight: state.in_flight.len(),
            started: state.started,
            cancelled: state.cancelled,
        }
    }

    /// True when nothing is queued or loading.
    pub fn is_idle(&self) -> bool {
        let state = lock(&self.shared.state);
        state.queue.is_empty() && state.in_flight.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn id(col: u64) -> TileId {
        TileId { level: 0, col, row: 0 }
    }

    #[test]
    fn most_urgent_first_and_stale_requests_cancelled() {
        // One load at a time; the first load blocks until released so the queue can be inspected.
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let order = Arc::new(Mutex::new(Vec::new()));
        let seen = order.clone();
        let scheduler = TileScheduler::new(
            move |t: TileId| -> Result<u64, ()> {
                if t.col == 100 {
                    let _ = lock(&release_rx).recv_timeout(Duration::from_secs(10));
                }
                lock(&seen).push(t.col);
                Ok(t.col)
            },
            || {},
            1,
        );
        scheduler.set_wanted(vec![TileRequest { id: id(100), priority: 0.0 }]);
        // While 100 loads: ask for 1..=5 with priorities out of order.
        let wanted: Vec<TileRequest> = [(3, 3.0), (1, 1.0), (5, 5.0), (2, 2.0), (4, 4.0)]
            .iter()
            .map(|&(c, p)| TileRequest { id: id(c), priority: p })
            .collect();
        scheduler.set_wanted(wanted);
        assert_eq!(scheduler.stats().queued, 5);
        // The view moved: only 2 and 4 are still wanted, and a new tile 6 is most urgent.
        scheduler.set_wanted(vec![
            TileRequest { id: id(4), priority: 4.0 },
            TileRequest { id: id(2), priority: 2.0 },
            TileRequest { id: id(6), priority: 0.5 },
            TileRequest { id: id(100), priority: 0.0 }, // already loading: not queued twice
        ]);
        let stats = scheduler.stats();
        assert_eq!((stats.queued, stats.in_flight, stats.cancelled), (3, 1, 3));
        release_tx.send(()).unwrap_or_default();
        let mut results = Vec::new();
        // A deadline, not a count of polls: a loaded machine (CI, parallel builds) is slow.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while results.len() < 4 && std::time::Instant::now() < deadline {
            results.extend(scheduler.take_results());
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(*lock(&order), vec![100, 6, 2, 4]);
        assert!(scheduler.is_idle());
        assert!(results.iter().all(|r| r.outcome.as_ref().is_ok_and(|v| *v == r.id.col)));
    }

    #[test]
    fn failures_arrive_as_results() {
        let scheduler =
            TileScheduler::new(|t: TileId| if t.col == 1 { Err("corrupt".to_string()) } else { Ok(()) }, || {}, 2);
        scheduler.set_wanted(vec![TileRequest { id: id(1), priority: 0.0 }, TileRequest { id: id(2), priority: 1.0 }]);
        let mut results = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while results.len() < 2 && std::time::Instant::now() < deadline {
            results.extend(scheduler.take_results());
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(results.len(), 2);
        let failed: Vec<_> = results.iter().filter(|r| r.outcome.is_err()).map(|r| r.id.col).collect();
        assert_eq!(failed, vec![1]);
    }
}
