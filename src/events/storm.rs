//! The Event storm bound: in one time bucket a pod gets at most `EVENTS_PER_POD` Events of its own
//! per direction (one per peer, port, protocol and policy: see `aggregate.rs`); the drops of every
//! further peer count toward one roll-up Event of that pod, direction and bucket (`rollup.rs`). A
//! scan from 100,000 addresses then writes `EVENTS_PER_POD` + 1 Events on the pod, not 100,000, and
//! the counts of its Events still add up to its drops.
//!
//! Exact across restarts: a replay must count each drop toward the Event that counted it before,
//! or that Event's record (`kubernetes/counted.rs`) cannot tell it was counted. Until a group is
//! full every drop gets an Event of its own, in any run: a replay brings no more distinct Events
//! than the run before had when it stopped. Once full, which Events the group has is decided, so
//! the full group is saved in the state directory (atomically) before any write that depends on it
//! goes out, and loaded at start: a replay routes its drops as the run before did.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checksum::checksum;
use crate::events::rollup::RollUp;
use crate::model::Direction;

/// The drops one bound applies to: a pod's, in one direction, in one time bucket.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Group {
    pub pod_uid: String,
    pub direction: Direction,
    pub bucket_start_ms: i64,
}

/// Where a drop is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Toward its own Event (the name asked about).
    Own,
    /// Toward its group's roll-up Event.
    RollUp,
}

pub struct StormBound {
    /// Events of their own per group; `None`: no bound.
    limit: Option<usize>,
    /// Groups whose bucket started this long before the newest one seen are forgotten: drops that
    /// old are expired before they get here.
    keep_ms: i64,
    groups: HashMap<Group, GroupState>,
    newest_bucket_ms: i64,
    /// Where full groups are saved; `None` without a state directory (a restart starts afresh).
    store: Option<PathBuf>,
    save_failures: u64,
}

#[derive(Debug, Default)]
struct GroupState {
    /// Checksums of the names of the group's own Events.
    events: HashSet<u64>,
    /// No more Events of its own: the rest roll up. Set by the limit, or loaded (a lower limit in
    /// the run before may have filled it with fewer Events than this run's limit).
    full: bool,
    rollup: RollUp,
}

/// The saved file: every full group that is still kept.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    groups: Vec<SavedGroup>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedGroup {
    #[serde(flatten)]
    group: Group,
    events: Vec<u64>,
}

impl StormBound {
    /// No bound: every drop counts toward its own Event.
    pub fn unbounded() -> StormBound {
        StormBound {
            limit: None,
            keep_ms: 0,
            groups: HashMap::new(),
            newest_bucket_ms: i64::MIN,
            store: None,
            save_failures: 0,
        }
    }

    /// At most `limit` Events of their own per group, groups kept for `keep`; full groups saved in
    /// `store` and loaded from it (a file that cannot be read is logged and ignored: the bound then
    /// starts afresh, as the checkpoint does).
    pub fn new(limit: usize, keep: Duration, store: Option<PathBuf>) -> StormBound {
        let mut bound = StormBound {
            limit: Some(limit.max(1)),
            keep_ms: i64::try_from(keep.as_millis()).unwrap_or(i64::MAX),
            store,
            ..StormBound::unbounded()
        };
        if let Some(path) = &bound.store {
            match load(path) {
                Ok(saved) => {
                    for SavedGroup { group, events } in saved.groups {
                        let state = GroupState {
                            events: events.into_iter().collect(),
                            full: true,
                            rollup: RollUp::default(),
                        };
                        bound.groups.insert(group, state);
                    }
                }
                Err(error) => log::warn!(
                    "ignoring the Event storm bound's state {}: {error}",
                    path.display()
                ),
            }
        }
        bound
    }

    /// Where the drop of `group` whose own Event would be `name` is counted. A group that becomes
    /// full here is saved before this returns.
    pub fn route(&mut self, group: &Group, name: &str) -> Route {
        let Some(limit) = self.limit else {
            return Route::Own;
        };
        if group.bucket_start_ms > self.newest_bucket_ms {
            self.newest_bucket_ms = group.bucket_start_ms;
            self.forget_old();
        }
        let state = self.groups.entry(group.clone()).or_default();
        let event = checksum(name.as_bytes());
        if state.events.contains(&event) {
            return Route::Own;
        }
        if state.full {
            return Route::RollUp;
        }
        state.events.insert(event);
        if state.events.len() >= limit {
            state.full = true;
            self.save();
        }
        Route::Own
    }

    /// What `group`'s roll-up stands for, to add a drop to or to word its message.
    pub fn rollup(&mut self, group: &Group) -> &mut RollUp {
        &mut self.groups.entry(group.clone()).or_default().rollup
    }

    /// `group`'s roll-up, if the group is still kept.
    pub fn known_rollup(&self, group: &Group) -> Option<&RollUp> {
        self.groups.get(group).map(|state| &state.rollup)
    }

    /// Saves that failed since the last call.
    pub fn take_save_failures(&mut self) -> u64 {
        std::mem::take(&mut self.save_failures)
    }

    fn forget_old(&mut self) {
        let oldest = self.newest_bucket_ms.saturating_sub(self.keep_ms);
        self.groups
            .retain(|group, _| group.bucket_start_ms >= oldest);
    }

    fn save(&mut self) {
        let Some(path) = &self.store else { return };
        let saved = Saved {
            groups: self
                .groups
                .iter()
                .filter(|(_, state)| state.full)
                .map(|(group, state)| SavedGroup {
                    group: group.clone(),
                    events: state.events.iter().copied().collect(),
                })
                .collect(),
        };
        let text = serde_json::to_vec(&saved).expect("groups serialize");
        if let Err(error) = crate::atomic_file::replace(path, &text) {
            // Not fatal: the bound holds in this run; only a restart could count a replay twice.
            log::warn!(
                "saving the Event storm bound's state {}: {error}",
                path.display()
            );
            self.save_failures += 1;
        }
    }
}

fn load(path: &PathBuf) -> io::Result<Saved> {
    match std::fs::read(path) {
        Ok(text) => serde_json::from_slice(&text).map_err(io::Error::other),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Saved::default()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(uid: &str, bucket_start_ms: i64) -> Group {
        Group {
            pod_uid: uid.to_string(),
            direction: Direction::Receiving,
            bucket_start_ms,
        }
    }

    const MINUTE: i64 = 60_000;

    #[test]
    fn past_the_limit_new_events_roll_up_and_known_ones_stay_their_own() {
        let mut bound = StormBound::new(2, Duration::from_secs(600), None);
        let web = group("web", 0);
        assert_eq!(bound.route(&web, "a"), Route::Own);
        assert_eq!(bound.route(&web, "b"), Route::Own);
        assert_eq!(bound.route(&web, "c"), Route::RollUp);
        assert_eq!(bound.route(&web, "a"), Route::Own);
        assert_eq!(bound.route(&web, "d"), Route::RollUp);
        // Another pod, another direction, another bucket: bounds of their own.
        assert_eq!(bound.route(&group("db", 0), "c"), Route::Own);
        let sending = Group {
            direction: Direction::Sending,
            ..web.clone()
        };
        assert_eq!(bound.route(&sending, "c"), Route::Own);
        assert_eq!(bound.route(&group("web", 2 * MINUTE), "c"), Route::Own);
    }

    #[test]
    fn a_full_group_is_routed_the_same_after_a_restart() {
        let directory = tempfile::tempdir().unwrap();
        let store = directory.path().join("storm.json");
        let keep = Duration::from_secs(600);
        let mut bound = StormBound::new(2, keep, Some(store.clone()));
        let web = group("web", 0);
        bound.route(&web, "a");
        bound.route(&web, "b");
        // Not full: nothing decided, nothing saved.
        bound.route(&group("db", 0), "a");

        // Even with a higher limit, the restarted bound routes the full group as before.
        let mut restarted = StormBound::new(5, keep, Some(store));
        assert_eq!(restarted.route(&web, "c"), Route::RollUp);
        assert_eq!(restarted.route(&web, "b"), Route::Own);
        for name in ["b", "c", "d", "e", "f"] {
            assert_eq!(restarted.route(&group("db", 0), name), Route::Own);
        }
        assert_eq!(restarted.route(&group("db", 0), "g"), Route::RollUp);
    }

    #[test]
    fn groups_older_than_kept_are_forgotten() {
        let mut bound = StormBound::new(1, Duration::from_secs(600), None);
        let old = group("web", 0);
        bound.route(&old, "a");
        assert_eq!(bound.route(&old, "b"), Route::RollUp);
        bound.route(&group("web", 12 * MINUTE), "a");
        assert_eq!(bound.groups.len(), 1);
        // Back to the old bucket (a drop that late is expired before it gets here).
        assert_eq!(bound.route(&old, "b"), Route::Own);
    }

    #[test]
    fn an_unreadable_state_file_is_ignored_and_a_failed_save_counted() {
        let directory = tempfile::tempdir().unwrap();
        let store = directory.path().join("storm.json");
        std::fs::write(&store, b"{not json").unwrap();
        let mut bound = StormBound::new(1, Duration::from_secs(600), Some(store.clone()));
        assert_eq!(bound.route(&group("web", 0), "a"), Route::Own);
        assert_eq!(bound.take_save_failures(), 0);

        // The temporary file's name taken by a directory: the save fails.
        std::fs::create_dir(directory.path().join("storm.json.tmp")).unwrap();
        bound.route(&group("db", 0), "a");
        assert_eq!(bound.take_save_failures(), 1);
        assert_eq!(bound.take_save_failures(), 0);
    }
}
