//! The read loop driven by a scripted reader: records, overwrites (EPIPE) and quiet spells arrive
//! exactly when the script says.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crossbeam_channel::unbounded;

use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::{Batch, KmsgPosition, Line, Position};
use crate::sources::kmsg::position::Start;
use crate::sources::kmsg::reader::{Next, RecordReader};
use crate::sources::kmsg::{KmsgSettings, KmsgSource};
use crate::stop::{self, StopTrigger};

enum Step {
    Record(String),
    Overwritten,
    Empty,
    /// A read error (the device went away, EIO).
    Fail,
}

use Step::{Empty, Fail, Overwritten};

/// A record numbered `sequence` whose message is `text`.
fn record(sequence: u64, flag: char, text: &str) -> Step {
    Step::Record(format!("4,{sequence},{},{flag};{text}\n", sequence * 1000))
}

/// Plays `script`, then stops the source the first time it waits with nothing left.
struct ScriptedReader {
    script: VecDeque<Step>,
    current: Vec<u8>,
    trigger: StopTrigger,
}

impl RecordReader for ScriptedReader {
    fn next(&mut self) -> io::Result<Next<'_>> {
        Ok(match self.script.pop_front() {
            Some(Step::Record(text)) => {
                self.current = text.into_bytes();
                Next::Record(&self.current)
            }
            Some(Overwritten) => Next::Overwritten,
            Some(Fail) => return Err(io::Error::other("injected read error")),
            Some(Empty) | None => Next::Empty,
        })
    }

    fn wait(&mut self, _wake: Option<std::os::fd::RawFd>) -> io::Result<()> {
        if self.script.is_empty() {
            self.trigger.trigger();
        }
        Ok(())
    }
}

struct Outcome {
    batches: Vec<Batch<Line>>,
    metrics: Arc<Metrics>,
}

impl Outcome {
    fn texts(&self) -> Vec<String> {
        self.batches
            .iter()
            .flat_map(|batch| batch.items.iter().map(|line| line.text.clone()))
            .collect()
    }

    fn ends(&self) -> Vec<u64> {
        self.batches
            .iter()
            .map(|batch| match &batch.end {
                Some(Position::Kmsg(position)) => {
                    assert_eq!(position.boot_id, "boot-a");
                    position.sequence
                }
                other => panic!("not a kmsg position: {other:?}"),
            })
            .collect()
    }

    fn lost(&self) -> u64 {
        self.metrics
            .source_lost
            .with_label_values(&["overwritten"])
            .get()
    }
}

fn play(start: Start, max_batch_lines: usize, script: Vec<Step>) -> Outcome {
    let (sender, receiver) = unbounded();
    let (trigger, stop) = stop::new();
    let metrics = Arc::new(Metrics::new());
    let settings = KmsgSettings {
        path: PathBuf::from("/dev/null"),
        boot_id_path: PathBuf::from("/dev/null"),
        start: None,
        max_batch_lines,
    };
    let opener = Box::new(|_: &Path, _| unreachable!("the test gives the reader"));
    let mut source = KmsgSource::new(
        settings,
        sender,
        stop,
        metrics.clone(),
        Health::new(),
        opener,
    );
    source.output.boot_id = "boot-a".to_string();
    source.sequence.started(start);
    let mut reader = ScriptedReader {
        script: script.into(),
        current: Vec::new(),
        trigger,
    };
    source
        .follow(&mut reader)
        .expect("a scripted reader does not fail");
    drop(source);
    Outcome {
        batches: receiver.iter().collect(),
        metrics,
    }
}

#[test]
fn an_overwrite_counts_the_gap_in_sequence_numbers_and_reading_goes_on() {
    let outcome = play(
        Start::End,
        100,
        vec![
            record(1, '-', "one"),
            record(2, '-', "two"),
            Overwritten,
            record(10, '-', "ten"),
            record(11, '-', "eleven"),
        ],
    );
    assert_eq!(outcome.texts(), ["one", "two", "ten", "eleven"]);
    assert_eq!(outcome.lost(), 7);
    assert_eq!(outcome.ends(), [11]);
    assert_eq!(outcome.metrics.lines_read.get(), 4);
}

#[test]
fn an_overwrite_counts_at_least_one_record() {
    let outcome = play(
        Start::End,
        100,
        vec![
            Overwritten,
            record(40, '-', "first"),
            Overwritten,
            record(41, '-', "second"),
        ],
    );
    assert_eq!(outcome.texts(), ["first", "second"]);
    assert_eq!(outcome.lost(), 2);
}

#[test]
fn after_a_checkpoint_handled_records_are_skipped_and_overwritten_ones_counted() {
    let skipped = play(
        Start::After(5),
        100,
        vec![
            record(4, '-', "four"),
            record(5, '-', "five"),
            record(6, '-', "six"),
        ],
    );
    assert_eq!(skipped.texts(), ["six"]);
    assert_eq!(skipped.lost(), 0);

    let gap = play(Start::After(5), 100, vec![record(9, '-', "nine")]);
    assert_eq!(gap.texts(), ["nine"]);
    assert_eq!(gap.lost(), 3);
}

#[test]
fn a_record_that_does_not_parse_is_counted_and_skipped() {
    let outcome = play(
        Start::End,
        100,
        vec![
            Step::Record("garbage without a header\n".to_string()),
            record(3, '-', "three"),
        ],
    );
    assert_eq!(outcome.texts(), ["three"]);
    assert_eq!(outcome.metrics.source_errors.get(), 1);
}

#[test]
fn batches_hold_at_most_max_lines_and_end_at_their_last_record() {
    let outcome = play(
        Start::End,
        2,
        vec![
            record(1, '-', "a"),
            record(2, '-', "b"),
            record(3, '-', "c"),
            Empty,
            record(4, '-', "d"),
        ],
    );
    let sizes: Vec<usize> = outcome.batches.iter().map(|b| b.items.len()).collect();
    assert_eq!(sizes, [2, 1, 1]);
    assert_eq!(outcome.ends(), [2, 3, 4]);
    assert_eq!(
        outcome.batches[0].end,
        Some(Position::Kmsg(KmsgPosition {
            boot_id: "boot-a".to_string(),
            sequence: 2
        }))
    );
    for line in outcome.batches.iter().flat_map(|batch| &batch.items) {
        assert!(line.time.is_some(), "{line:?}");
    }
}

#[test]
fn fragments_are_joined_and_a_lone_first_piece_goes_on_after_a_quiet_spell() {
    let outcome = play(
        Start::End,
        100,
        vec![
            record(1, 'c', "X: IN=lo "),
            Empty,
            record(2, '+', "OUT= SRC=127.0.0.1"),
            record(3, '-', "whole"),
            record(4, 'c', "lonely"),
            Empty,
            Empty,
            record(5, '+', "late"),
        ],
    );
    assert_eq!(
        outcome.texts(),
        ["X: IN=lo OUT= SRC=127.0.0.1", "whole", "lonely"]
    );
    // "late" is still a pending piece when the script ends: not sent, so not acknowledged.
    assert_eq!(outcome.ends(), [3, 4]);
}

#[test]
fn a_record_time_is_its_age_before_now() {
    let clocks = crate::sources::kmsg::clock::Clocks::now();
    let one_second_ago = clocks.monotonic.as_micros() as u64 - 1_000_000;
    let outcome = play(
        Start::End,
        100,
        vec![Step::Record(format!("4,1,{one_second_ago},-;x\n"))],
    );
    let time = outcome.batches[0].items[0].time.unwrap();
    let age = chrono::Utc::now().signed_duration_since(time);
    assert!(
        age >= chrono::Duration::milliseconds(990) && age < chrono::Duration::seconds(2),
        "{age}"
    );
    let lag = outcome.metrics.source_lag_seconds.get();
    assert!((0.99..2.0).contains(&lag), "{lag}");
}

#[test]
fn a_read_error_is_counted_and_the_device_opened_again_after_the_last_record_read() {
    let dir = tempfile::tempdir().unwrap();
    let boot_id_path = dir.path().join("boot_id");
    std::fs::write(&boot_id_path, "boot-a\n").unwrap();
    let (sender, receiver) = unbounded();
    let (trigger, stop) = stop::new();
    let metrics = Arc::new(Metrics::new());
    let health = Health::new();
    let settings = KmsgSettings {
        path: PathBuf::from("/dev/kmsg-imitation"),
        boot_id_path,
        start: Some(KmsgPosition {
            boot_id: "boot-a".to_string(),
            sequence: 1,
        }),
        max_batch_lines: 100,
    };
    // The first reader fails after two records; the second one starts where the first stopped.
    let mut scripts = VecDeque::from([
        vec![record(2, '-', "two"), record(3, '-', "three"), Fail],
        vec![record(3, '-', "three"), record(4, '-', "four")],
    ]);
    let starts = Arc::new(Mutex::new(Vec::new()));
    let (opener_starts, opener_health) = (starts.clone(), health.clone());
    let opener = Box::new(move |path: &Path, start| {
        assert_eq!(path, Path::new("/dev/kmsg-imitation"));
        opener_starts
            .lock()
            .unwrap()
            .push((start, opener_health.is_ready()));
        let reader: Box<dyn RecordReader> = Box::new(ScriptedReader {
            script: scripts.pop_front().unwrap_or_default().into(),
            current: Vec::new(),
            trigger: trigger.clone(),
        });
        Ok(reader)
    });
    KmsgSource::new(settings, sender, stop, metrics.clone(), health, opener).run();

    let outcome = Outcome {
        batches: receiver.iter().collect(),
        metrics,
    };
    assert_eq!(outcome.texts(), ["two", "three", "four"]);
    assert_eq!(outcome.ends(), [3, 4]);
    // Not ready while closed after the error.
    assert_eq!(
        *starts.lock().unwrap(),
        [(Start::After(1), false), (Start::After(3), false)]
    );
    assert_eq!(outcome.metrics.source_errors.get(), 1);
    assert_eq!(outcome.metrics.source_reopens.get(), 1);
    assert_eq!(outcome.lost(), 0);
}
