//! Liveness and readiness as the HTTP probes report them: which named threads are alive, and whether
//! the pipeline is ready: every named readiness condition holds (the source is open; with Kubernetes,
//! the pod index has synced).
//!
//! A thread holds a [`LivenessGuard`] for as long as it runs; if the thread ends while the program is
//! not stopping (an error, a panic), dropping the guard marks it dead and `/healthz` fails.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::stop::Stop;

#[derive(Clone, Default)]
pub struct Health {
    threads: Arc<Mutex<BTreeMap<String, bool>>>,
    conditions: Arc<Mutex<BTreeMap<&'static str, bool>>>,
}

/// The condition the source sets once its input is open.
pub const SOURCE_CONDITION: &str = "source";

/// Marks its thread dead when dropped, unless the program is stopping.
pub struct LivenessGuard {
    health: Health,
    name: String,
    stop: Stop,
}

impl Health {
    pub fn new() -> Health {
        let health = Health::default();
        health.set_condition(SOURCE_CONDITION, false);
        health
    }

    /// Registers a running thread under `name`.
    pub fn alive(&self, name: &str, stop: Stop) -> LivenessGuard {
        self.lock().insert(name.to_string(), true);
        LivenessGuard {
            health: self.clone(),
            name: name.to_string(),
            stop,
        }
    }

    /// The names of registered threads that have ended unexpectedly.
    pub fn dead_threads(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, alive)| !**alive)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Sets the source's readiness condition.
    pub fn set_ready(&self, ready: bool) {
        self.set_condition(SOURCE_CONDITION, ready);
    }

    /// Sets (and, the first time, adds) a named readiness condition.
    pub fn set_condition(&self, name: &'static str, ready: bool) {
        let mut conditions = self
            .conditions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        conditions.insert(name, ready);
    }

    /// The conditions that do not hold yet; ready when empty.
    pub fn unready_conditions(&self) -> Vec<&'static str> {
        let conditions = self
            .conditions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        conditions
            .iter()
            .filter(|(_, ready)| !**ready)
            .map(|(name, _)| *name)
            .collect()
    }

    pub fn is_ready(&self) -> bool {
        self.unready_conditions().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, bool>> {
        self.threads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for LivenessGuard {
    fn drop(&mut self) {
        if !self.stop.is_stopped() {
            self.health.lock().insert(self.name.clone(), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_ends_before_stop_is_reported_dead() {
        let health = Health::new();
        let (trigger, stop) = crate::stop::new();
        let guard = health.alive("source", stop.clone());
        let other = health.alive("parse", stop);
        assert!(health.dead_threads().is_empty());
        drop(guard);
        assert_eq!(health.dead_threads(), vec!["source".to_string()]);
        trigger.trigger();
        drop(other);
        assert_eq!(health.dead_threads(), vec!["source".to_string()]);
    }
}
