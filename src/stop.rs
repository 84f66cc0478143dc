//! The shutdown signal: one trigger, seen by every thread, either by polling or inside a `select!`.
//!
//! Triggering drops the only sender of a channel nobody ever sends on, so every receiver becomes
//! "disconnected" at once and a blocked `select!` wakes up; a flag makes the cheap check cheap. A thread
//! that waits in poll(2) on a file descriptor asks for a pipe instead ([`Stop::wake_pipe`]): triggering
//! closes its write end, so the read end becomes readable and the poll returns, with no timer.

use std::io::{PipeReader, PipeWriter};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};

/// Held by whoever may end the program (the signal thread, the pipeline on a fatal error).
#[derive(Clone)]
pub struct StopTrigger {
    stopped: Arc<AtomicBool>,
    sender: Arc<Mutex<Option<Sender<()>>>>,
    wake_pipes: Arc<Mutex<Vec<PipeWriter>>>,
}

/// Held by every thread that must end when the program stops.
#[derive(Clone)]
pub struct Stop {
    stopped: Arc<AtomicBool>,
    receiver: Receiver<()>,
    wake_pipes: Arc<Mutex<Vec<PipeWriter>>>,
}

/// A new, untriggered stop signal.
pub fn new() -> (StopTrigger, Stop) {
    let (sender, receiver) = bounded(0);
    let stopped = Arc::new(AtomicBool::new(false));
    let wake_pipes = Arc::new(Mutex::new(Vec::new()));
    let trigger = StopTrigger {
        stopped: stopped.clone(),
        sender: Arc::new(Mutex::new(Some(sender))),
        wake_pipes: wake_pipes.clone(),
    };
    (
        trigger,
        Stop {
            stopped,
            receiver,
            wake_pipes,
        },
    )
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
        // Closing the write ends makes every wake pipe readable (end of file).
        self.wake_pipes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
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

    /// A pipe whose read end becomes readable (end of file) when the stop is triggered, for a thread
    /// that waits in poll(2) on other file descriptors too.
    pub fn wake_pipe(&self) -> std::io::Result<PipeReader> {
        let (reader, writer) = std::io::pipe()?;
        let mut pipes = self
            .wake_pipes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Checked under the lock the trigger takes after setting the flag: a pipe asked for after the
        // trigger gets its write end closed here, one asked for before is closed by the trigger.
        if !self.is_stopped() {
            pipes.push(writer);
        }
        Ok(reader)
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
    fn a_wake_pipe_reads_end_of_file_once_triggered_and_not_before() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let (trigger, stop) = new();
        let mut before = stop.wake_pipe().unwrap();
        let mut poll = libc::pollfd {
            fd: before.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        assert_eq!(
            unsafe { libc::poll(&mut poll, 1, 0) },
            0,
            "readable too early"
        );
        trigger.trigger();
        assert_eq!(before.read(&mut [0; 1]).unwrap(), 0);
        let mut after = stop.wake_pipe().unwrap();
        assert_eq!(after.read(&mut [0; 1]).unwrap(), 0);
    }

    #[test]
    fn untriggered_sleep_runs_its_full_time() {
        let (_trigger, stop) = new();
        assert!(!stop.sleep(Duration::from_millis(10)));
        assert!(!stop.is_stopped());
    }
}
