//! A file that only grows: where the source starts, how lines are split, decoded, limited and batched,
//! and that stopping ends the source.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use kube_iptables_tailer::sources::file::FileSourceSettings;

use super::{Tailer, append, file_position, from_beginning, lines, log_path, settings};

#[test]
fn lines_appended_after_start_are_read_and_existing_ones_are_not() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "old 1\nold 2\n").unwrap();
    let mut tailer = Tailer::start(settings(&path));
    tailer.wait_ready();
    append(&path, "new 1\nnew 2\n");
    assert_eq!(tailer.take(2), lines(&["new 1", "new 2"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.metrics.lines_read.get(), 2);
    // Before any line, the start (the end of the old lines) was handed on to be checkpointed.
    assert_eq!(tailer.start.as_ref().map(|start| start.offset), Some(12));
    let end = tailer.stop();
    let metadata = fs::metadata(&path).unwrap();
    assert_eq!(end.path, path);
    assert_eq!(end.offset, metadata.len());
    assert_eq!(
        (end.identity.device, end.identity.inode),
        (metadata.dev(), metadata.ino())
    );
}

#[test]
fn starting_at_the_end_hands_on_a_line_being_written_whole() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "old\nhalf of a").unwrap();
    let mut tailer = Tailer::start(settings(&path));
    tailer.wait_ready();
    append(&path, " line\nnew\n");
    assert_eq!(tailer.take(2), lines(&["half of a line", "new"]));
    tailer.assert_no_more_lines();
}

#[test]
fn from_beginning_reads_the_existing_lines() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "old 1\nold 2\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(2), lines(&["old 1", "old 2"]));
    tailer.assert_no_more_lines();
}

#[test]
fn a_line_split_across_two_writes_arrives_once_whole() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "").unwrap();
    let mut tailer = Tailer::start(settings(&path));
    tailer.wait_ready();
    append(&path, "first half, ");
    std::thread::sleep(Duration::from_millis(50)); // several polls see the half line
    append(&path, "second half\r\nnext\n");
    assert_eq!(tailer.take(2), lines(&["first half, second half", "next"]));
    tailer.assert_no_more_lines();
}

#[test]
fn a_line_with_invalid_utf8_is_kept_with_replacement_characters() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, b"bad \xff byte\nfine\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(2), lines(&["bad \u{fffd} byte", "fine"]));
}

#[test]
fn batches_hold_at_most_max_batch_lines_and_end_after_their_last_line() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    let text: String = (0..250).map(|n| format!("line {n:03}\n")).collect();
    fs::write(&path, &text).unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    let mut read = 0;
    while read < 250 {
        let batch = tailer.next_batch();
        assert!(
            !batch.items.is_empty() && batch.items.len() <= 100,
            "{}",
            batch.items.len()
        );
        read += batch.items.len();
        // Every line is 9 bytes: the batch ends just after its last line.
        assert_eq!(file_position(batch.end).offset, read as u64 * 9);
    }
    assert_eq!(read, 250);
    tailer.assert_no_more_lines();
}

#[test]
fn a_file_missing_at_start_is_read_from_its_start_once_it_appears() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    let mut tailer = Tailer::start(settings(&path));
    std::thread::sleep(Duration::from_millis(50));
    assert!(!tailer.health.is_ready(), "not ready without a file");
    fs::write(&path, "x1\nx2\n").unwrap();
    assert_eq!(tailer.take(2), lines(&["x1", "x2"]));
    tailer.wait_ready();
    tailer.assert_no_more_lines();
}

#[test]
fn a_line_longer_than_the_limit_is_skipped_and_its_neighbours_arrive() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "").unwrap();
    let mut tailer = Tailer::start(settings(&path));
    tailer.wait_ready();
    let half = "x".repeat(512 * 1024);
    append(&path, &format!("before\n{half}"));
    std::thread::sleep(Duration::from_millis(30));
    append(&path, &format!("{half}\nafter\n"));
    assert_eq!(tailer.take(2), lines(&["before", "after"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.metrics.lines_too_long.get(), 1);
    assert_eq!(tailer.stop().offset, fs::metadata(&path).unwrap().len());
}

#[test]
fn stop_ends_the_source_even_when_nobody_takes_its_batches() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    let text: String = (0..5000).map(|n| format!("line {n}\n")).collect();
    fs::write(&path, text).unwrap();
    // max_batch_lines 1 and a 16-batch channel: the source blocks on a full channel.
    let mut tailer = Tailer::start(FileSourceSettings {
        max_batch_lines: 1,
        ..from_beginning(&path)
    });
    tailer.wait_ready();
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    tailer.trigger.trigger();
    tailer.thread.take().unwrap().join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}
