//! What an Event has counted, and what a write adds to it. Each Event records how far into its source
//! stream it has counted (the `counted-through` annotation, `STREAM@MARK`); a drop of a write at or
//! below that mark, in the same stream, was counted by an earlier run and is not added again.

use crate::model::EventWrite;

/// An Event's count and how far into its stream it has counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Stored {
    pub(super) count: u32,
    pub(super) through: Option<Through>,
}

/// A stream and the highest mark counted in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Through {
    pub(super) stream: String,
    pub(super) mark: u128,
}

impl Through {
    pub(super) fn parse(text: &str) -> Option<Through> {
        let (stream, mark) = text.rsplit_once('@')?;
        Some(Through {
            stream: stream.to_string(),
            mark: mark.parse().ok()?,
        })
    }

    pub(super) fn text(&self) -> String {
        format!("{}@{}", self.stream, self.mark)
    }
}

/// How many of `write`'s drops the Event has not counted yet: those whose marks are above what it
/// recorded for the same stream (and those whose marks were not kept), or all of them.
pub(super) fn uncounted(write: &EventWrite, stored: Option<&Through>) -> u32 {
    let (Some(stored), Some(stream)) = (stored, write.marks.stream.as_deref()) else {
        return write.count;
    };
    if stored.stream != stream || write.marks.each.is_empty() {
        return write.count;
    }
    let kept = u32::try_from(write.marks.each.len()).unwrap_or(u32::MAX);
    let new = write.marks.each.iter().filter(|&&mark| mark > stored.mark);
    u32::try_from(new.count()).unwrap_or(u32::MAX) + write.count.saturating_sub(kept)
}

/// What the Event has counted through once `write` is added to what it recorded.
pub(super) fn through_after(write: &EventWrite, stored: Option<&Through>) -> Option<Through> {
    let written = write
        .marks
        .stream
        .as_deref()
        .zip(write.marks.last)
        .map(|(stream, mark)| Through {
            stream: stream.to_string(),
            mark,
        });
    match (stored, written) {
        (Some(stored), Some(written)) if stored.stream == written.stream => Some(Through {
            mark: stored.mark.max(written.mark),
            ..written
        }),
        (stored, written) => written.or_else(|| stored.cloned()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::model::{PodInfo, WriteMarks};

    fn write(count: u32, stream: &str, each: &[u128], unkept: u32) -> EventWrite {
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
            }),
            message: "Packet dropped".to_string(),
            count,
            first_seen: Utc::now(),
            last_seen: Utc::now(),
            marks: WriteMarks {
                stream: Some(stream.into()),
                last: each.iter().max().copied(),
                each: each.to_vec(),
                unkept,
            },
        }
    }

    fn through(stream: &str, mark: u128) -> Through {
        Through {
            stream: stream.to_string(),
            mark,
        }
    }

    #[test]
    fn drops_at_or_below_the_recorded_mark_are_not_counted_again() {
        let replayed = write(4, "file:/l", &[10, 20, 30, 40], 0);
        assert_eq!(uncounted(&replayed, Some(&through("file:/l", 20))), 2);
        assert_eq!(uncounted(&replayed, Some(&through("file:/l", 40))), 0);
        assert_eq!(uncounted(&replayed, Some(&through("file:/l", 5))), 4);
        assert_eq!(uncounted(&replayed, None), 4);
    }

    #[test]
    fn another_stream_or_no_marks_count_every_drop() {
        let other = write(2, "kmsg:boot-b", &[1, 2], 0);
        assert_eq!(uncounted(&other, Some(&through("kmsg:boot-a", 9))), 2);
        let later = write(3, "file:/l", &[], 0);
        assert_eq!(uncounted(&later, Some(&through("file:/l", 99))), 3);
    }

    #[test]
    fn drops_whose_marks_were_not_kept_count_as_new() {
        let capped = write(5, "file:/l", &[10, 20], 3);
        assert_eq!(uncounted(&capped, Some(&through("file:/l", 15))), 1 + 3);
    }

    #[test]
    fn the_recorded_mark_only_grows_within_a_stream() {
        let replay = write(2, "file:/l", &[10, 20], 0);
        assert_eq!(
            through_after(&replay, Some(&through("file:/l", 30))),
            Some(through("file:/l", 30))
        );
        assert_eq!(
            through_after(&replay, Some(&through("file:/l", 5))),
            Some(through("file:/l", 20))
        );
        assert_eq!(
            through_after(&replay, Some(&through("kmsg:a", 99))),
            Some(through("file:/l", 20))
        );
    }

    #[test]
    fn the_annotation_reads_back_what_was_written() {
        let mark = (1_764_669_600_123_456_789u128 << 64) | 4096;
        let written = through("file:/var/log/iptables@v2.log", mark);
        assert_eq!(Through::parse(&written.text()), Some(written));
        assert_eq!(Through::parse("no mark"), None);
    }
}
