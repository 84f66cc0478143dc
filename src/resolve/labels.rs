//! One shared copy of each distinct label set: the pods of a workload (a ReplicaSet's, a DaemonSet's)
//! carry the same labels, so 50,000 pods hold a few thousand sets, not 50,000.

use std::collections::{BTreeMap, HashSet};

use crate::model::Labels;

/// The label sets handed out since the last [`LabelSets::clear`]. The pod watch clears it when a full
/// list starts over, so sets of pods long gone are not kept.
#[derive(Default)]
pub struct LabelSets {
    known: HashSet<Labels>,
}

impl LabelSets {
    /// The shared copy of `labels`.
    pub fn share(&mut self, labels: Option<&BTreeMap<String, String>>) -> Labels {
        let pairs = labels
            .into_iter()
            .flatten()
            .map(|(key, value)| (Box::from(key.as_str()), Box::from(value.as_str())))
            .collect();
        let labels = Labels::new(pairs);
        match self.known.get(&labels) {
            Some(known) => known.clone(),
            None => {
                self.known.insert(labels.clone());
                labels
            }
        }
    }

    pub fn clear(&mut self) {
        self.known.clear();
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn equal_label_sets_are_one_shared_copy() {
        let mut sets = LabelSets::default();
        let web = map(&[("app", "web"), ("pod-template-hash", "7d4f9")]);
        let first = sets.share(Some(&web));
        let second = sets.share(Some(&web));
        assert_eq!(first, second);
        assert!(first.same_copy(&second));
        let other = sets.share(Some(&map(&[("app", "db")])));
        assert_eq!(other.get("app"), Some("db"));
        assert_eq!(first.get("app"), Some("web"));
        assert_eq!(first.get("missing"), None);
        assert!(sets.share(None).is_empty());
        assert_eq!(sets.len(), 3);
    }
}
