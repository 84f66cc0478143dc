//! The soak: 20,000 lines through 50 rotations of both kinds, each line arriving exactly once, in order.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube_iptables_tailer::sources::file::FileSourceSettings;

use super::{Tailer, WAIT, from_beginning, log_path, rotated};

/// How the soak's rotator rotates.
#[derive(Clone, Copy, Debug)]
enum Rotation {
    /// logrotate `create`: rename, create an empty file; the writer writes a little more to the old
    /// file (before its HUP), then reopens the path.
    RenameAndCreate,
    /// logrotate `copytruncate`: copy, then truncate in place; the writer appends (O_APPEND) at 0.
    CopyTruncate,
}

#[test]
fn soak_every_line_arrives_exactly_once_in_order_through_many_rotations() {
    const LINES: usize = 20_000;
    const ROTATIONS: usize = 50;
    const EVERY: usize = LINES / (ROTATIONS + 1);
    const TAIL_LINES: usize = 3;
    let line = |n: usize| format!("soak line {n:06} {}", "x".repeat(40));

    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    File::create(&path).unwrap();
    let started = Instant::now();
    let mut tailer = Tailer::start(FileSourceSettings {
        max_batch_lines: 500,
        ..from_beginning(&path)
    });
    tailer.wait_ready();
    let received = Arc::new(AtomicUsize::new(0));
    let (requests, rotator_requests) = crossbeam_channel::bounded::<(usize, Rotation)>(0);
    let (rotator_done, done) = crossbeam_channel::bounded::<()>(0);

    let rotator = {
        let (path, received) = (path.clone(), received.clone());
        std::thread::spawn(move || {
            for (written, rotation) in rotator_requests {
                // A tail of one path cannot follow a second rotation before it has seen the first,
                // and copytruncate loses what was not read before the copy: wait for the source.
                let deadline = Instant::now() + WAIT;
                while received.load(Ordering::SeqCst) < written {
                    assert!(Instant::now() < deadline, "the source fell behind");
                    std::thread::sleep(Duration::from_millis(1));
                }
                match rotation {
                    Rotation::RenameAndCreate => {
                        fs::rename(&path, rotated(&path)).unwrap();
                        File::create(&path).unwrap();
                    }
                    Rotation::CopyTruncate => {
                        fs::copy(&path, rotated(&path)).unwrap();
                        OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .unwrap()
                            .set_len(0)
                            .unwrap();
                    }
                }
                rotator_done.send(()).unwrap();
            }
        })
    };
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            let open = || OpenOptions::new().append(true).open(&path).unwrap();
            let mut file = open();
            let mut rotations = 0;
            let mut n = 0;
            while n < LINES {
                if n > 0 && n % EVERY == 0 && rotations < ROTATIONS {
                    let rotation = if rotations % 2 == 0 {
                        Rotation::RenameAndCreate
                    } else {
                        Rotation::CopyTruncate
                    };
                    rotations += 1;
                    requests.send((n, rotation)).unwrap();
                    done.recv().unwrap(); // paused during the rotation
                    if let Rotation::RenameAndCreate = rotation {
                        for _ in 0..TAIL_LINES {
                            writeln!(file, "{}", line(n)).unwrap();
                            n += 1;
                        }
                        file = open(); // the HUP
                    }
                }
                writeln!(file, "{}", line(n)).unwrap();
                n += 1;
            }
            rotations
        })
    };

    let mut arrived = Vec::with_capacity(LINES);
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrived.len() < LINES {
        let batch = tailer
            .batches
            .recv_deadline(deadline)
            .unwrap_or_else(|_| panic!("only {} of {LINES} lines arrived", arrived.len()));
        arrived.extend(batch.items.into_iter().map(|line| line.text));
        received.store(arrived.len(), Ordering::SeqCst);
    }
    let rotations = writer.join().unwrap();
    rotator.join().unwrap();
    tailer.assert_no_more_lines();
    let elapsed = started.elapsed();

    assert_eq!(rotations, ROTATIONS);
    for (n, text) in arrived.iter().enumerate() {
        assert_eq!(*text, line(n), "line {n}");
    }
    assert_eq!(tailer.rotations("rename"), (ROTATIONS / 2) as u64);
    assert_eq!(tailer.rotations("truncate"), (ROTATIONS / 2) as u64);
    assert_eq!(tailer.rotations("recreate"), 0);
    assert_eq!(tailer.metrics.lines_read.get(), LINES as u64);
    assert_eq!(tailer.metrics.source_errors.get(), 0);
    eprintln!("soak: {LINES} lines, {ROTATIONS} rotations in {elapsed:?}");
}
