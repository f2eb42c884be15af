//! How much CPU a background save may take: it works in short bursts and sleeps between
//! them, so that serving keeps most of the cores.
//!
//! Why bursts and not a low thread priority: the saver holds a shard lock while it copies a
//! slice of items, and a thread preempted while holding one keeps every worker that needs
//! that shard waiting until the scheduler runs it again (measured: at nice 19 no save
//! finished under full load, and at nice 0 serving fell to 0.29 of its rate). A thread that
//! runs a fraction of a millisecond and then sleeps always has the scheduler's credit, so
//! it is not preempted in the middle of a burst, and the share of the time it is busy is
//! the share of a core it takes.
//!
//! Must never: sleep with a shard held (the caller ticks only between slices).

use std::time::{Duration, Instant};

/// How fast a save runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as it can: SAVE (the client asked to wait), a save at shutdown, a full sync.
    Full,
    /// Busy at most this share (0 < share ≤ 1) of the time, in bursts of [`BURST`]: BGSAVE.
    Share(f64),
}

/// The share of one core a background save takes while it runs.
pub const BACKGROUND: Pace = Pace::Share(0.25);

/// The work a paced save does between two sleeps.
pub const BURST: Duration = Duration::from_micros(250);

/// Keeps a save to its pace: [`tick`](Pacer::tick) after each slice of work.
pub struct Pacer {
    pace: Pace,
    burst_started: Instant,
    /// Time slept so far.
    pub slept: Duration,
}

impl Pacer {
    pub fn new(pace: Pace) -> Pacer {
        Pacer {
            pace,
            burst_started: Instant::now(),
            slept: Duration::ZERO,
        }
    }

    /// Called between slices (no lock held): once the current burst has run [`BURST`],
    /// sleeps for as long as keeps the busy share at the pace's.
    pub fn tick(&mut self) {
        let Pace::Share(share) = self.pace else {
            return;
        };
        let busy = self.burst_started.elapsed();
        if busy < BURST || !(share > 0.0 && share < 1.0) {
            return;
        }
        let rest = busy.mul_f64((1.0 - share) / share);
        std::thread::sleep(rest);
        self.slept += rest;
        self.burst_started = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(time: Duration) {
        let started = Instant::now();
        while started.elapsed() < time {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn a_paced_worker_sleeps_in_proportion_to_its_work() {
        let mut pacer = Pacer::new(Pace::Share(0.25));
        let mut worked = Duration::ZERO;
        for _ in 0..40 {
            spin(Duration::from_micros(100));
            worked += Duration::from_micros(100);
            pacer.tick();
        }
        // Three times the work but the last, unfinished burst (each burst's measured length
        // includes any overrun, so never less; the bound above allows for a loaded machine).
        assert!(
            pacer.slept >= (worked - BURST) * 3,
            "slept {:?}",
            pacer.slept
        );
        assert!(pacer.slept < worked * 60, "slept {:?}", pacer.slept);
    }

    #[test]
    fn full_pace_never_sleeps() {
        let mut pacer = Pacer::new(Pace::Full);
        for _ in 0..10 {
            spin(Duration::from_micros(300));
            pacer.tick();
        }
        assert_eq!(pacer.slept, Duration::ZERO);
    }
}
