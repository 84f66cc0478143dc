//! What an Event has counted, and what a write adds to it. Each Event records how far into each
//! content it read from it has counted (the `counted-through` annotation: `CONTENT:OFFSET,...`, at
//! most [`MAX_CONTENTS`], the newest kept); a drop of a write at or below what the Event recorded for
//! its content was counted by an earlier run and is not added again.

use serde_json::Value;

use crate::events::replay::raise;
use crate::model::{EventWrite, MAX_EVENT_COUNT, Mark};

/// Contents an Event remembers at most, the oldest forgotten first. An Event counts the drops of one
/// time bucket (`REPEATED_EVENTS_INTERVAL_MINUTES`), so it needs one mark per content (file, journal
/// writer, boot) written in that bucket: replays stay exact while a log is rotated fewer than this
/// many times per bucket (every ~0.5 s at the default 2 minutes; logs rotate hourly or daily). 16
/// was too few: the chaos soak, rotating about once a second, counted replays again. The record is
/// at most ~9 KB of annotation (the API allows 256 KiB).
const MAX_CONTENTS: usize = 256;

/// An Event's count and how far into each content it has counted, as the server holds it, and the
/// server's version of it (what a change is conditional on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Stored {
    pub(super) count: u32,
    pub(super) through: Vec<Mark>,
    pub(super) version: Option<String>,
}

/// The annotation's text for `through`.
pub(super) fn through_text(through: &[Mark]) -> String {
    through
        .iter()
        .map(|mark| format!("{:x}:{}", mark.content, mark.offset))
        .collect::<Vec<_>>()
        .join(",")
}

/// The annotation read back; what cannot be read is left out (and then counts as never counted).
pub(super) fn parse_through(text: &str) -> Vec<Mark> {
    text.split(',')
        .filter_map(|pair| {
            let (content, offset) = pair.split_once(':')?;
            Some(Mark {
                content: u64::from_str_radix(content, 16).ok()?,
                offset: offset.parse().ok()?,
            })
        })
        .collect()
}

/// How many of `write`'s drops the Event has not counted yet: those whose marks are above what it
/// recorded for their content (and those whose marks were not kept), or all of them.
pub(super) fn uncounted(write: &EventWrite, stored: &[Mark]) -> u32 {
    let each = &write.marks.each;
    if each.is_empty() || stored.is_empty() {
        return write.count;
    }
    let counted = |mark: &Mark| {
        stored
            .iter()
            .any(|known| known.content == mark.content && mark.offset <= known.offset)
    };
    let kept = u32::try_from(each.len()).unwrap_or(u32::MAX);
    let new = u32::try_from(each.iter().filter(|mark| !counted(mark)).count()).unwrap_or(u32::MAX);
    new.saturating_add(write.count.saturating_sub(kept))
}

/// An Event's `count` raised by `added`, stopping at what the API can hold (an int32): a count
/// past it would be refused, and the write retried for ever.
pub(super) fn raised(count: u32, added: u32) -> u32 {
    count.saturating_add(added).min(MAX_EVENT_COUNT)
}

/// The `count` of an Event as the API answered it: at most [`MAX_EVENT_COUNT`]; 1 when it says none
/// (an Event counts at least itself).
pub(super) fn stored_count(event: &Value) -> u32 {
    event["count"].as_u64().map_or(1, |count| {
        u32::try_from(count)
            .unwrap_or(MAX_EVENT_COUNT)
            .min(MAX_EVENT_COUNT)
    })
}

/// What the Event has counted through once `write` is added to what it recorded.
pub(super) fn through_after(write: &EventWrite, stored: &[Mark]) -> Vec<Mark> {
    let mut through = stored.to_vec();
    for mark in &write.marks.through {
        raise(&mut through, *mark);
    }
    let excess = through.len().saturating_sub(MAX_CONTENTS);
    through.drain(..excess);
    through
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::model::{PodInfo, WriteMarks};

    fn mark(content: u64, offset: u64) -> Mark {
        Mark { content, offset }
    }

    fn write(count: u32, each: &[Mark], unkept: u32) -> EventWrite {
        let mut through = Vec::new();
        for m in each {
            raise(&mut through, *m);
        }
        EventWrite {
            ticket: 1,
            name: "web-1.0123456789abcdef".to_string(),
            pod: Arc::new(PodInfo {
                namespace: "shop".to_string(),
                name: "web-1".to_string(),
                uid: "uid-web".to_string(),
                node: "node-1".to_string(),
                host_network: false,
                identifier_label: None,
                labels: Default::default(),
            }),
            message: "Packet dropped".to_string(),
            count,
            first_seen: Utc::now(),
            last_seen: Utc::now(),
            marks: WriteMarks {
                through,
                each: each.to_vec(),
                unkept,
            },
        }
    }

    #[test]
    fn drops_at_or_below_the_recorded_offset_of_their_content_are_not_counted_again() {
        let replayed = write(4, &[mark(1, 10), mark(1, 20), mark(2, 5), mark(2, 9)], 0);
        assert_eq!(uncounted(&replayed, &[mark(1, 20)]), 2);
        assert_eq!(uncounted(&replayed, &[mark(1, 20), mark(2, 9)]), 0);
        assert_eq!(uncounted(&replayed, &[mark(1, 15), mark(2, 5)]), 2);
        assert_eq!(uncounted(&replayed, &[mark(3, 99)]), 4, "another content");
        assert_eq!(uncounted(&replayed, &[]), 4);
    }

    #[test]
    fn a_write_without_marks_counts_every_drop() {
        let later = write(3, &[], 0);
        assert_eq!(uncounted(&later, &[mark(1, 99)]), 3);
    }

    #[test]
    fn drops_whose_marks_were_not_kept_count_as_new() {
        let capped = write(5, &[mark(1, 10), mark(1, 20)], 3);
        assert_eq!(uncounted(&capped, &[mark(1, 15)]), 1 + 3);
    }

    #[test]
    fn what_an_event_counted_only_grows_and_keeps_the_newest_contents() {
        let replay = write(2, &[mark(1, 10), mark(2, 20)], 0);
        assert_eq!(
            through_after(&replay, &[mark(1, 30)]),
            [mark(1, 30), mark(2, 20)]
        );
        let many: Vec<Mark> = (100..100 + MAX_CONTENTS as u64)
            .map(|c| mark(c, 1))
            .collect();
        let after = through_after(&replay, &many);
        assert_eq!(after.len(), MAX_CONTENTS);
        assert_eq!(after[MAX_CONTENTS - 2..], [mark(1, 10), mark(2, 20)]);
    }

    #[test]
    fn the_annotation_reads_back_what_was_written() {
        let through = [mark(0xfeed_beef_0123_4567, 4096), mark(7, 0)];
        assert_eq!(parse_through(&through_text(&through)), through);
        assert_eq!(parse_through("not:a,mark"), []);
        assert_eq!(parse_through(""), []);
    }

    #[test]
    fn counts_stop_at_the_apis_int32_instead_of_wrapping() {
        let max = i32::MAX as u32;
        assert_eq!(raised(41, 1), 42);
        assert_eq!(raised(max - 1, 1), max);
        assert_eq!(raised(max - 1, 5), max);
        assert_eq!(raised(max, max), max);
        assert_eq!(raised(u32::MAX, 1), max);
    }

    #[test]
    fn a_stored_count_is_read_as_at_most_the_apis_int32() {
        let max = i32::MAX as u32;
        assert_eq!(stored_count(&serde_json::json!({"count": 7})), 7);
        assert_eq!(stored_count(&serde_json::json!({"count": max})), max);
        // Not from the API, but not to be cut to its low 32 bits either (5e9 as u32 is 705032704).
        assert_eq!(
            stored_count(&serde_json::json!({"count": 5_000_000_000u64})),
            max
        );
        assert_eq!(stored_count(&serde_json::json!({"count": -3})), 1);
        assert_eq!(stored_count(&serde_json::json!({})), 1);
    }
}
