//! The shutdown signal: one trigger, seen by every thread, either by polling or inside a `select!`.
//!
//! Triggering drops the only sender of a channel nobody ever sends on, so every receiver becomes
//! "disconnected" at once and a blocked `select!` wakes up; a flag makes the cheap check cheap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};

/// Held by whoever may end the program (the signal thread, the pipeline on a fatal error).
#[derive(Clone)]
pub struct StopTrigger {
    stopped: Arc<AtomicBool>,
    sender: Arc<std::sync::Mutex<Option<Sender<()>>>>,
}

/// Held by every thread that must end when the program stops.
#[derive(Clone)]
pub struct Stop {
    stopped: Arc<AtomicBool>,
    receiver: Receiver<()>,
}

/// A new, untriggered stop signal.
pub fn new() -> (StopTrigger, Stop) {
    let (sender, receiver) = bounded(0);
    let stopped = Arc::new(AtomicBool::new(false));
    let trigger = StopTrigger {
        stopped: stopped.clone(),
        sender: Arc::new(std::sync::Mutex::new(Some(sender))),
    };
    (trigger, Stop { stopped, receiver })
}

impl StopTrigger {
    /// Asks every thread to stop. Calling it again does nothing.
    pub fn trigger(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let mut sender = self
            .sender
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sender.take();
    }
}

impl Stop {
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// A receiver that becomes ready (disconnected) when the stop is triggered; for `select!`.
    pub fn receiver(&self) -> &Receiver<()> {
        &self.receiver
    }

    /// Sleeps for `duration` or until the stop is triggered; returns true if it was.
    pub fn sleep(&self, duration: Duration) -> bool {
        // A receive can only end by timeout or by disconnection: nothing is ever sent.
        let _ = self.receiver.recv_timeout(duration);
        self.is_stopped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn trigger_wakes_a_sleeping_thread_at_once() {
        let (trigger, stop) = new();
        let sleeper = std::thread::spawn(move || {
            let started = Instant::now();
            let stopped = stop.sleep(Duration::from_secs(30));
            (stopped, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(20));
        trigger.trigger();
        let (stopped, slept) = sleeper.join().unwrap();
        assert!(stopped);
        assert!(slept < Duration::from_secs(5), "slept {slept:?}");
    }

    #[test]
    fn untriggered_sleep_runs_its_full_time() {
        let (_trigger, stop) = new();
        assert!(!stop.sleep(Duration::from_millis(10)));
        assert!(!stop.is_stopped());
    }
}
