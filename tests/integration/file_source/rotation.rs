//! Rotation while the source runs: rename (logrotate `create`), copytruncate, truncation the
//! fingerprint or the size gives away, deletion and recreation, and growth that is no rotation.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use kube_iptables_tailer::sources::file::FileSourceSettings;

use super::{Tailer, append, from_beginning, lines, log_path, rotated};

#[test]
fn rotation_by_rename_reads_the_old_files_tail_then_the_new_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    // A slow poll, so that the whole rotation happens between two polls.
    let mut tailer = Tailer::start(FileSourceSettings {
        poll_interval: Duration::from_millis(300),
        change_notices: false,
        ..from_beginning(&path)
    });
    assert_eq!(tailer.take(1), lines(&["a1"]));

    let mut old = OpenOptions::new().append(true).open(&path).unwrap();
    old.write_all(b"a2\n").unwrap();
    fs::rename(&path, rotated(&path)).unwrap();
    // The writer has not reopened yet (rsyslog before logrotate's HUP): the tail goes to the old file.
    old.write_all(b"a3\n").unwrap();
    fs::write(&path, "b1\nb2\n").unwrap();

    assert_eq!(tailer.take(4), lines(&["a2", "a3", "b1", "b2"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("rename"), 1);
    let end = tailer.stop();
    assert_eq!(end.identity.inode, fs::metadata(&path).unwrap().ino());
    assert_eq!(end.offset, 6);
}

#[test]
fn an_empty_new_file_is_not_switched_to_while_the_old_one_still_grows() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    let mut old = OpenOptions::new().append(true).open(&path).unwrap();
    fs::rename(&path, rotated(&path)).unwrap();
    File::create(&path).unwrap(); // logrotate `create`; the writer has not been told yet
    std::thread::sleep(Duration::from_millis(50));
    old.write_all(b"a2\n").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    append(&path, "b1\n"); // the writer reopened
    assert_eq!(tailer.take(2), lines(&["a2", "b1"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("rename"), 1);
}

#[test]
fn copytruncate_restarts_at_the_start_of_the_same_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\na2\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(2), lines(&["a1", "a2"]));
    fs::copy(&path, rotated(&path)).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, "b1\n");
    assert_eq!(tailer.take(1), lines(&["b1"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("truncate"), 1);
    assert_eq!(tailer.rotations("rename"), 0);
}

#[test]
fn truncation_then_regrowth_past_the_offset_is_noticed_by_the_fingerprint() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "first 1\n").unwrap();
    let mut tailer = Tailer::start(FileSourceSettings {
        poll_interval: Duration::from_millis(300),
        change_notices: false,
        ..from_beginning(&path)
    });
    assert_eq!(tailer.take(1), lines(&["first 1"]));
    // Between two polls the file is truncated and grows past our offset (8): its size alone looks fine.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, "second 1\nsecond 2\n");
    assert_eq!(tailer.take(2), lines(&["second 1", "second 2"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("truncate"), 1);
}

#[test]
fn truncation_to_the_same_first_bytes_is_noticed_by_the_size() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    // 2000 bytes of identical lines: after the truncation the first 1024 bytes are the same again.
    fs::write(&path, "same line\n".repeat(200)).unwrap();
    let mut tailer = Tailer::start(FileSourceSettings {
        poll_interval: Duration::from_millis(300),
        change_notices: false,
        ..from_beginning(&path)
    });
    assert_eq!(tailer.take(200).len(), 200);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, &"same line\n".repeat(110));
    assert_eq!(tailer.take(110), vec!["same line".to_string(); 110]);
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("truncate"), 1);
}

#[test]
fn the_unterminated_end_of_a_rotated_file_is_handed_on_as_a_line() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    append(&path, "a writer died mid-li");
    fs::rename(&path, rotated(&path)).unwrap();
    fs::write(&path, "b1\n").unwrap();
    assert_eq!(tailer.take(2), lines(&["a writer died mid-li", "b1"]));
    tailer.assert_no_more_lines();
}

#[test]
fn a_deleted_file_is_drained_and_its_recreation_read_from_the_start() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    let mut old = OpenOptions::new().append(true).open(&path).unwrap();
    fs::remove_file(&path).unwrap();
    old.write_all(b"a2\n").unwrap(); // still written after deletion, through an open handle
    assert_eq!(tailer.take(1), lines(&["a2"]));
    std::thread::sleep(Duration::from_millis(50)); // polls see the path missing
    fs::write(&path, "b1\n").unwrap();
    assert_eq!(tailer.take(1), lines(&["b1"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("recreate"), 1);
    assert_eq!(tailer.rotations("rename"), 0);
}

#[test]
fn a_file_shorter_than_the_fingerprint_is_followed_as_it_grows() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "s\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["s"]));
    let first = tailer.last_end.clone().unwrap();
    assert_eq!(first.identity.fingerprint.len, 2);
    for n in 0..150 {
        append(&path, &format!("line {n:03}\n"));
    }
    let expected: Vec<String> = (0..150).map(|n| format!("line {n:03}")).collect();
    assert_eq!(tailer.take(150), expected);
    let grown = tailer.last_end.clone().unwrap();
    assert_eq!(grown.offset, 2 + 150 * 9);
    assert_eq!(grown.identity.fingerprint.len, 1024);
    assert_eq!(
        (grown.identity.device, grown.identity.inode),
        (first.identity.device, first.identity.inode)
    );
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("truncate"), 0);
}
