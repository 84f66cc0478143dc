//! The stop, for the runtime: the stop signal is a crossbeam channel, which async code cannot await,
//! so a small thread waits for it and sets a tokio watch that every watch and lookup loop awaits.
//! No loop wakes on a timer to look at it.

use std::time::Duration;

use tokio::sync::watch;

use crate::stop::Stop;

/// Without the thread (it could not be started): how often the stop is looked at.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub(super) struct AsyncStop {
    /// `None` when the thread could not be started: then `stop` is polled.
    set: Option<watch::Receiver<bool>>,
    stop: Stop,
}

impl AsyncStop {
    pub(super) fn new(stop: &Stop) -> AsyncStop {
        let (setter, set) = watch::channel(stop.is_stopped());
        let waiting = stop.clone();
        let started = std::thread::Builder::new()
            .name("kube-stop".to_string())
            .spawn(move || {
                // Disconnected at the stop: nothing is ever sent.
                let _ = waiting.receiver().recv();
                let _ = setter.send(true);
            });
        if let Err(error) = &started {
            log::warn!("no thread to wait for the stop ({error}): looking at it every 50 ms");
        }
        AsyncStop {
            set: started.ok().map(|_| set),
            stop: stop.clone(),
        }
    }

    /// Resolves once the stop is triggered.
    pub(super) async fn stopped(&self) {
        match &self.set {
            Some(set) => {
                let mut set = set.clone();
                // An error: the thread is gone, which it is only after setting it.
                let _ = set.wait_for(|stopped| *stopped).await;
            }
            None => {
                while !self.stop.is_stopped() {
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_once_the_stop_is_triggered_and_not_before() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (trigger, stop) = crate::stop::new();
        runtime.block_on(async {
            let stop = AsyncStop::new(&stop);
            let early = tokio::time::timeout(Duration::from_millis(50), stop.stopped()).await;
            assert!(early.is_err(), "resolved before the stop");
            trigger.trigger();
            tokio::time::timeout(Duration::from_secs(5), stop.stopped())
                .await
                .expect("resolved after the stop");
            // And again, for every loop that asks later.
            tokio::time::timeout(Duration::from_secs(5), stop.stopped())
                .await
                .expect("resolved again");
        });
    }
}
