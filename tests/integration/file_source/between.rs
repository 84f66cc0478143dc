//! Files that came between: two rotations within one poll interval, or while the source was stopped,
//! leave a file that was at the path and never opened, now under a rotated name. It is read, in order,
//! before the path's file; a copytruncate copy of what was read is not read again; a compressed one is
//! skipped and counted.

use std::fs;
use std::path::Path;
use std::time::Duration;

use kube_iptables_tailer::sources::file::FileSourceSettings;

use super::{Tailer, append, from_beginning, lines, log_path, settings};

/// logrotate's `create` with `rotate N`: every `.k` becomes `.k+1`, the log becomes `.1`, a new log
/// is created with `text` (the writer reopened and wrote).
fn rotate(path: &Path, text: &str) {
    shift_rotated(path);
    fs::rename(path, path.with_extension("log.1")).unwrap();
    fs::write(path, text).unwrap();
}

/// Renames every `.k` (up to `.8`) to `.k+1`, the highest first, as logrotate does before a rotation.
fn shift_rotated(path: &Path) {
    for k in (1..9).rev() {
        let from = path.with_extension(format!("log.{k}"));
        if from.exists() {
            fs::rename(&from, path.with_extension(format!("log.{}", k + 1))).unwrap();
        }
    }
}

/// A slow poll: everything a test does between two polls happens "within one poll interval".
fn slow(path: &Path) -> FileSourceSettings {
    FileSourceSettings {
        poll_interval: Duration::from_millis(400),
        change_notices: false,
        ..from_beginning(path)
    }
}

#[test]
fn two_rotations_within_one_poll_interval_read_the_middle_file_too() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(slow(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));

    append(&path, "a2\n");
    rotate(&path, "b1\nb2\n");
    rotate(&path, "c1\n");
    assert_eq!(tailer.take(4), lines(&["a2", "b1", "b2", "c1"]));
    tailer.assert_no_more_lines();
    assert_eq!(
        tailer
            .metrics
            .rotated_files
            .with_label_values(&["read_between"])
            .get(),
        1
    );
}

#[test]
fn a_middle_file_is_read_while_the_new_log_is_still_empty() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(slow(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));

    append(&path, "a2\n");
    rotate(&path, "b1\nb2\n");
    // The last rotation leaves an empty log, as on a quiet node until its next message.
    rotate(&path, "");
    assert_eq!(tailer.take(3), lines(&["a2", "b1", "b2"]));
    tailer.assert_no_more_lines();
    append(&path, "c1\n");
    assert_eq!(tailer.take(1), lines(&["c1"]));
}

#[test]
fn three_rotations_within_one_poll_interval_read_both_middle_files_oldest_first() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(slow(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));

    rotate(&path, "b1\n");
    // Files created within one clock tick have equal birth times: a little apart, as real rotations.
    std::thread::sleep(Duration::from_millis(20));
    rotate(&path, "c1\n");
    std::thread::sleep(Duration::from_millis(20));
    rotate(&path, "d1\n");
    assert_eq!(tailer.take(3), lines(&["b1", "c1", "d1"]));
    tailer.assert_no_more_lines();
}

#[test]
fn two_rotations_while_stopped_resume_in_the_first_and_read_the_middle_one() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    let end = tailer.stop();

    append(&path, "a2\n");
    rotate(&path, "b1\n");
    std::thread::sleep(Duration::from_millis(20));
    rotate(&path, "c1\n");
    let mut tailer = Tailer::start(FileSourceSettings {
        start: Some(end),
        ..settings(&path)
    });
    assert_eq!(tailer.take(3), lines(&["a2", "b1", "c1"]));
    tailer.assert_no_more_lines();
}

#[test]
fn an_empty_file_written_copied_and_truncated_while_stopped_is_read_from_its_copy_first() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "").unwrap();
    // Checkpointed while empty: nothing of it read, nothing known of its content.
    let mut tailer = Tailer::start(settings(&path));
    let end = tailer.start_position();
    tailer.stop_without_lines();

    append(&path, "a1\na2\n");
    fs::copy(&path, path.with_extension("log.1")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, "b1\n");
    let mut tailer = Tailer::start(FileSourceSettings {
        start: Some(end),
        ..settings(&path)
    });
    assert_eq!(tailer.take(3), lines(&["a1", "a2", "b1"]));
    tailer.assert_no_more_lines();
}

// Found by the chaos test (seed 501816): the checkpoint named the log while it was empty; while the
// agent was down the log was written, copied and truncated, written again, then renamed away. The
// restart found the checkpointed file under its rotated name and read it from offset 0, passing over
// the copy that held its first content.
#[test]
fn an_empty_file_copied_truncated_and_renamed_while_stopped_is_read_from_its_copy_first() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "").unwrap();
    let mut tailer = Tailer::start(settings(&path));
    let end = tailer.start_position();
    tailer.stop_without_lines();
    // File times move in clock ticks: the copy must be written after the checkpointed time.
    std::thread::sleep(Duration::from_millis(20));

    append(&path, "a1\na2\n");
    copytruncate(&path);
    append(&path, "b1\n");
    std::thread::sleep(Duration::from_millis(20));
    rotate(&path, "c1\n");
    let mut tailer = Tailer::start(FileSourceSettings {
        start: Some(end),
        ..settings(&path)
    });
    assert_eq!(tailer.take(4), lines(&["a1", "a2", "b1", "c1"]));
    tailer.assert_no_more_lines();
}

#[test]
fn an_empty_file_written_copied_and_truncated_within_one_poll_interval_is_read_from_its_copy_first()
{
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "").unwrap();
    let mut tailer = Tailer::start(slow(&path));
    tailer.start_position();

    append(&path, "a1\na2\n");
    copytruncate(&path);
    append(&path, "b1\n");
    assert_eq!(tailer.take(3), lines(&["a1", "a2", "b1"]));
    tailer.assert_no_more_lines();
}

// Found by the chaos test (seed 183274): lines written to a log nothing of which was read yet, then
// copied and truncated at once; a poll that saw the log empty took the truncation's time for the
// time its unread content was written, so the copy (created a clock tick earlier: file times move
// in ticks of a few ms) no longer counted as written since.
#[test]
fn an_unread_file_copied_and_truncated_before_a_poll_saw_it_empty_is_read_from_its_copy_first() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "").unwrap();
    let mut tailer = Tailer::start(settings(&path));
    tailer.start_position();
    std::thread::sleep(Duration::from_millis(50));

    // The copy is created a few ticks before the lines are written, copied and truncated (all at
    // once: a poll in between is unlikely, and would only read them from the log).
    let copy = path.with_extension("log.1");
    fs::File::create(&copy).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    append(&path, "a1\na2\n");
    fs::write(&copy, fs::read(&path).unwrap()).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    // Polls see the log empty before its next line.
    std::thread::sleep(Duration::from_millis(200));
    append(&path, "b1\n");
    assert_eq!(tailer.take(3), lines(&["a1", "a2", "b1"]));
    tailer.assert_no_more_lines();
}

#[test]
fn two_copytruncates_within_one_poll_interval_read_the_middle_content_from_its_copy() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(slow(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));

    // Everything of the first content was read; the second lives only in the second copy.
    copytruncate(&path);
    append(&path, "b1\nb2\n");
    copytruncate(&path);
    append(&path, "c1\n");
    assert_eq!(tailer.take(3), lines(&["b1", "b2", "c1"]));
    tailer.assert_no_more_lines();
    // And with a tail of the first content in the first copy.
    append(&path, "c2\n");
    assert_eq!(tailer.take(1), lines(&["c2"]));
    append(&path, "c3\n");
    copytruncate(&path);
    append(&path, "d1\n");
    copytruncate(&path);
    append(&path, "e1\n");
    assert_eq!(tailer.take(3), lines(&["c3", "d1", "e1"]));
    tailer.assert_no_more_lines();
}

#[test]
fn a_copytruncate_copy_of_lines_read_is_not_read_again_after_a_later_rename() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    // copytruncate: the copy holds a1, read already; the log starts over.
    fs::copy(&path, path.with_extension("log.1")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    append(&path, "a2\n");
    assert_eq!(tailer.take(1), lines(&["a2"]));
    // Then a rotation by rename: the copy is newer than the log's inode, but no line of it is new.
    rotate(&path, "b1\n");
    assert_eq!(tailer.take(1), lines(&["b1"]));
    tailer.assert_no_more_lines();
}

#[test]
fn a_compressed_file_that_came_between_is_skipped_and_counted() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(slow(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));

    rotate(&path, "b1\n");
    std::thread::sleep(Duration::from_millis(20));
    rotate(&path, "c1\n");
    // The middle file compressed before we looked (logrotate without delaycompress).
    let middle = path.with_extension("log.1");
    fs::write(middle.with_extension("1.gz"), b"\x1f\x8b compressed").unwrap();
    fs::remove_file(&middle).unwrap();
    assert_eq!(tailer.take(1), lines(&["c1"]));
    tailer.assert_no_more_lines();
    assert_eq!(
        tailer
            .metrics
            .rotated_files
            .with_label_values(&["compressed_skipped"])
            .get(),
        1
    );
}

/// logrotate's `copytruncate`: the log is copied to `.1` (older copies shifted), then emptied.
fn copytruncate(path: &Path) {
    shift_rotated(path);
    fs::copy(path, path.with_extension("log.1")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

#[test]
fn lines_written_just_before_a_copytruncate_are_read_from_the_copy() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(slow(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    // Between two polls: a line, the copy and the truncation, then the new content.
    append(&path, "a2\na3\n");
    copytruncate(&path);
    append(&path, "b1\n");
    assert_eq!(tailer.take(3), lines(&["a2", "a3", "b1"]));
    tailer.assert_no_more_lines();
}

#[test]
fn a_copytruncate_while_stopped_resumes_in_the_copy() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    let end = tailer.stop();

    append(&path, "a2\n");
    copytruncate(&path);
    append(&path, "b1\nb2\n");
    let mut tailer = Tailer::start(FileSourceSettings {
        start: Some(end),
        ..settings(&path)
    });
    assert_eq!(tailer.take(3), lines(&["a2", "b1", "b2"]));
    tailer.assert_no_more_lines();
}

/// Antrea's and the AWS network policy agent's lumberjack: the full log is renamed to
/// `STEM-TIME.EXT` (not a name that starts with the log's), a new log is created.
#[test]
fn two_lumberjack_rotations_within_one_poll_interval_read_the_middle_file_too() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("np.log");
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(slow(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));

    append(&path, "a2\n");
    fs::rename(
        &path,
        directory.path().join("np-2026-12-02T10-00-00.000.log"),
    )
    .unwrap();
    fs::write(&path, "b1\nb2\n").unwrap();
    fs::rename(
        &path,
        directory.path().join("np-2026-12-02T10-00-01.000.log"),
    )
    .unwrap();
    fs::write(&path, "c1\n").unwrap();
    assert_eq!(tailer.take(4), lines(&["a2", "b1", "b2", "c1"]));
    tailer.assert_no_more_lines();
}
