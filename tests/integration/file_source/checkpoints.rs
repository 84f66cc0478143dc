//! Checkpoints: resuming from one (also across a rotation while stopped), and the store and its writer
//! on their own.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube_iptables_tailer::metrics::Metrics;
use kube_iptables_tailer::model::{FileIdentity, FilePosition, Fingerprint, Position};
use kube_iptables_tailer::sources::checkpoint::{CheckpointError, CheckpointStore, run_writer};
use kube_iptables_tailer::sources::file::FileSourceSettings;

use super::{
    Tailer, WAIT, append, file_position, from_beginning, lines, log_path, rotated, settings,
};

#[test]
fn resuming_from_a_checkpoint_reads_exactly_the_new_lines() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\na2\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(2), lines(&["a1", "a2"]));
    let store = CheckpointStore::new(directory.path(), "file");
    store.save(&Position::File(tailer.stop())).unwrap();

    append(&path, "a3\na4\n");
    let start = file_position(store.load().unwrap());
    let mut tailer = Tailer::start(FileSourceSettings {
        start: Some(start),
        ..settings(&path)
    });
    assert_eq!(tailer.take(2), lines(&["a3", "a4"]));
    tailer.assert_no_more_lines();
}

#[test]
fn resuming_after_a_rename_while_stopped_reads_the_rotated_file_then_the_new_one() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    let end = tailer.stop();

    append(&path, "a2\na3\n");
    fs::rename(&path, rotated(&path)).unwrap();
    fs::write(&path, "b1\n").unwrap();
    let mut tailer = Tailer::start(FileSourceSettings {
        start: Some(end),
        ..settings(&path)
    });
    assert_eq!(tailer.take(3), lines(&["a2", "a3", "b1"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("rename"), 1);
}

#[test]
fn resuming_when_the_rotated_file_is_gone_reads_the_current_file_from_its_start() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    let end = tailer.stop();

    append(&path, "a2\n"); // lost: its file is removed while the source is stopped
    fs::rename(&path, rotated(&path)).unwrap();
    fs::remove_file(rotated(&path)).unwrap();
    fs::write(&path, "b1\n").unwrap();
    let mut tailer = Tailer::start(FileSourceSettings {
        start: Some(end),
        ..settings(&path)
    });
    assert_eq!(tailer.take(1), lines(&["b1"]));
    tailer.assert_no_more_lines();
}

#[test]
fn a_checkpoint_for_another_path_is_not_used() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    let mut end = tailer.stop();
    end.path = directory.path().join("other.log");
    end.offset = 0;

    let mut tailer = Tailer::start(FileSourceSettings {
        start: Some(end),
        ..settings(&path)
    });
    tailer.wait_ready();
    append(&path, "a2\n");
    assert_eq!(
        tailer.take(1),
        lines(&["a2"]),
        "started at the end, as without a checkpoint"
    );
}

fn sample_position(offset: u64) -> Position {
    Position::File(FilePosition {
        path: PathBuf::from("/var/log/kern.log"),
        identity: FileIdentity {
            device: 64769,
            inode: 4242,
            fingerprint: Fingerprint {
                len: 1024,
                checksum: 0x0123_4567_89ab_cdef,
            },
        },
        offset,
        written: 0,
    })
}

#[test]
fn a_checkpoint_is_saved_atomically_and_loads_back() {
    let directory = tempfile::tempdir().unwrap();
    let store = CheckpointStore::new(directory.path(), "file");
    assert!(store.load().unwrap().is_none(), "no checkpoint yet");
    store.save(&sample_position(10)).unwrap();
    store.save(&sample_position(20)).unwrap();
    assert_eq!(store.load().unwrap(), Some(sample_position(20)));
    let names: Vec<String> = fs::read_dir(directory.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["file.checkpoint.json".to_string()],
        "no temporary file left behind"
    );
}

#[test]
fn a_corrupt_checkpoint_is_an_error_not_a_start_from_scratch() {
    let directory = tempfile::tempdir().unwrap();
    let store = CheckpointStore::new(directory.path(), "file");
    fs::write(store.path(), "{\"source\":\"file\",\"pa").unwrap();
    assert!(matches!(store.load(), Err(CheckpointError::Corrupt { .. })));
}

#[test]
fn the_checkpoint_writer_saves_the_last_ack_when_acks_disconnect() {
    let directory = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let (acks, received) = crossbeam_channel::unbounded();
    let writer = {
        let (store, metrics) = (
            CheckpointStore::new(directory.path(), "file"),
            metrics.clone(),
        );
        // An hour between writes: only the first ack and the final one can be written.
        std::thread::spawn(move || run_writer(store, received, Duration::from_secs(3600), metrics))
    };
    let store = CheckpointStore::new(directory.path(), "file");
    acks.send(sample_position(1)).unwrap();
    let deadline = Instant::now() + WAIT;
    while store.load().unwrap() != Some(sample_position(1)) {
        assert!(
            Instant::now() < deadline,
            "the first ack is written at once"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    for offset in 2..=5 {
        acks.send(sample_position(offset)).unwrap();
    }
    drop(acks);
    writer.join().unwrap();
    assert_eq!(store.load().unwrap(), Some(sample_position(5)));
    assert_eq!(metrics.checkpoint_writes.get(), 2);
    assert_eq!(metrics.checkpoint_failures.get(), 0);
}
