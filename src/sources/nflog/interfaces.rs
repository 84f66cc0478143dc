//! Interface names for the indexes an NFLOG message carries (the LOG target prints names: `IN=eth0`).
//!
//! A name is asked of the kernel (`if_indextoname`, one ioctl) the first time an index is seen and kept
//! for [`KEEP_NAME`]: pods come and go and a veth may be renamed, so a name is not kept forever, but a
//! flood of drops through one interface costs one lookup every few seconds, not one per packet.

use std::collections::HashMap;
use std::ffi::CStr;
use std::time::{Duration, Instant};

/// How long a looked-up name is used before it is asked again.
const KEEP_NAME: Duration = Duration::from_secs(10);
/// Names kept at most: a node has far fewer interfaces; past it the cache starts afresh.
const MAX_NAMES: usize = 4096;

#[derive(Default)]
pub struct InterfaceNames {
    names: HashMap<u32, (String, Instant)>,
}

impl InterfaceNames {
    /// The interface's name, or its index as text when it has none any more (gone since the packet).
    pub fn name(&mut self, index: u32, now: Instant) -> &str {
        let fresh = self
            .names
            .get(&index)
            .is_some_and(|(_, looked_up)| now.duration_since(*looked_up) < KEEP_NAME);
        if !fresh {
            if self.names.len() >= MAX_NAMES {
                self.names.clear();
            }
            let name = index_to_name(index).unwrap_or_else(|| index.to_string());
            self.names.insert(index, (name, now));
        }
        &self.names[&index].0
    }
}

fn index_to_name(index: u32) -> Option<String> {
    let mut buffer = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer holds IF_NAMESIZE bytes, as if_indextoname requires.
    let name = unsafe { libc::if_indextoname(index, buffer.as_mut_ptr()) };
    if name.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(buffer.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_index_1_and_an_unknown_index_is_its_number() {
        let mut names = InterfaceNames::default();
        let now = Instant::now();
        assert_eq!(names.name(1, now), "lo");
        assert_eq!(names.name(987_654, now), "987654");
    }
}
