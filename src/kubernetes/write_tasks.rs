//! The Event writes in flight on the runtime, one task each, and what becomes of a task that panics.
//!
//! A write's task answers the events stage with the write's outcome. A task that panics would answer
//! nothing: the events stage would keep its slot and its Event name busy for good, and never
//! acknowledge the batches behind it, so the checkpoint would stop. Its `JoinError` is turned into
//! the outcome instead: the write is shed (`writer_panicked`), which the events stage counts in
//! `events_dropped_total{reason}` as every shed write, frees, and acknowledges.

use std::collections::HashMap;
use std::future::Future;

use tokio::task::{Id, JoinSet};

use crate::model::{EventOutcome, WriteResult};

/// The shed reason of a write whose task panicked.
pub(super) const PANICKED: &str = "writer_panicked";

/// The tasks carrying writes, each known by its write's ticket and Event name.
#[derive(Default)]
pub(super) struct WriteTasks {
    tasks: JoinSet<()>,
    running: HashMap<Id, (u64, String)>,
}

/// A write whose task panicked: its Event and the outcome to report for it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Panicked {
    pub(super) name: String,
    pub(super) outcome: EventOutcome,
}

impl WriteTasks {
    /// Runs `task`, the write `ticket` of the Event `name`, on the runtime.
    pub(super) fn spawn<F>(&mut self, ticket: u64, name: &str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = self.tasks.spawn(task);
        self.running.insert(handle.id(), (ticket, name.to_string()));
    }

    /// Forgets the tasks that have ended, and returns the writes of those that panicked.
    pub(super) fn reap(&mut self) -> Vec<Panicked> {
        let mut panicked = Vec::new();
        while let Some(joined) = self.tasks.try_join_next_with_id() {
            panicked.extend(self.ended(joined));
        }
        panicked
    }

    /// Waits for the next task to end (never resolves while none runs); the write of one that
    /// panicked.
    pub(super) async fn next_ended(&mut self) -> Option<Panicked> {
        match self.tasks.join_next_with_id().await {
            Some(joined) => self.ended(joined),
            None => std::future::pending().await,
        }
    }

    /// Forgets a task that ended; its write if it panicked.
    fn ended(&mut self, joined: Result<(Id, ()), tokio::task::JoinError>) -> Option<Panicked> {
        let (id, error) = match joined {
            Ok((id, ())) => (id, None),
            Err(error) => (error.id(), Some(error)),
        };
        let (ticket, name) = self.running.remove(&id)?;
        // Tasks are aborted only at shutdown, which does not reap: an error is a panic.
        let error = error?;
        log::error!("the write of Event {name} failed ({error}): its drops are shed");
        Some(Panicked {
            name,
            outcome: EventOutcome {
                ticket,
                result: WriteResult::Shed { reason: PANICKED },
                through: Vec::new(),
            },
        })
    }

    /// Aborts every task still running and waits for them to end.
    pub(super) async fn shutdown(&mut self) {
        self.tasks.shutdown().await;
        self.running.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_panicking_write_becomes_a_shed_outcome_and_its_slot_is_freed() {
        runtime().block_on(async {
            let mut tasks = WriteTasks::default();
            tasks.spawn(1, "web-0.0000000000000001", async {});
            tasks.spawn(2, "web-0.0000000000000002", async {
                panic!("a bug in the writer");
            });
            tasks.spawn(3, "db-0.0000000000000003", async {});
            // Each task runs to its end (or its panic) when this one lets it.
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            assert_eq!(
                tasks.reap(),
                vec![Panicked {
                    name: "web-0.0000000000000002".to_string(),
                    outcome: EventOutcome {
                        ticket: 2,
                        result: WriteResult::Shed {
                            reason: "writer_panicked"
                        },
                        through: Vec::new(),
                    },
                }]
            );
            assert_eq!(tasks.running.len(), 0);
            assert_eq!(tasks.reap(), Vec::new());
        });
    }

    #[test]
    fn a_write_still_running_is_not_reaped_and_shutdown_aborts_it() {
        runtime().block_on(async {
            let mut tasks = WriteTasks::default();
            tasks.spawn(1, "web-0.0000000000000001", std::future::pending());
            tokio::task::yield_now().await;
            assert_eq!(tasks.reap(), Vec::new());
            assert_eq!(tasks.running.len(), 1);
            tasks.shutdown().await;
            assert_eq!(tasks.running.len(), 0);
        });
    }

    #[test]
    fn waiting_for_the_next_task_to_end_reports_a_panic_as_soon_as_it_happens() {
        runtime().block_on(async {
            let mut tasks = WriteTasks::default();
            tasks.spawn(1, "web-0.0000000000000001", async {});
            tasks.spawn(2, "web-0.0000000000000002", async {
                tokio::task::yield_now().await;
                panic!("a bug in the writer");
            });
            // The first ends well (nothing to report), the second panics.
            assert_eq!(tasks.next_ended().await, None);
            let panicked = tasks.next_ended().await.unwrap();
            assert_eq!(panicked.name, "web-0.0000000000000002");
            assert_eq!(panicked.outcome.ticket, 2);
            assert!(tasks.running.is_empty());
            // With none running, it waits for good.
            let waited =
                tokio::time::timeout(std::time::Duration::from_millis(20), tasks.next_ended())
                    .await;
            assert!(waited.is_err());
        });
    }
}
