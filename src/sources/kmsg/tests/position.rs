//! Where reading starts (same boot, other boot, none) and how sequence numbers are admitted.

use crate::model::KmsgPosition;
use crate::sources::kmsg::position::{Admit, Sequence, Start, first_start};

fn saved(boot_id: &str, sequence: u64) -> KmsgPosition {
    KmsgPosition {
        boot_id: boot_id.to_string(),
        sequence,
    }
}

#[test]
fn a_checkpoint_of_this_boot_resumes_after_its_record() {
    assert_eq!(
        first_start(Some(&saved("boot-a", 41)), "boot-a"),
        Start::After(41)
    );
}

#[test]
fn a_checkpoint_of_another_boot_reads_this_boot_from_its_start() {
    assert_eq!(
        first_start(Some(&saved("boot-a", 41)), "boot-b"),
        Start::Beginning
    );
}

#[test]
fn no_checkpoint_reads_new_records_only() {
    assert_eq!(first_start(None, "boot-a"), Start::End);
}

fn admit_all(sequence: &mut Sequence, numbers: &[u64]) -> Vec<Admit> {
    numbers
        .iter()
        .map(|number| sequence.admit(*number))
        .collect()
}

#[test]
fn records_up_to_the_checkpoint_are_skipped_without_loss() {
    let mut sequence = Sequence::default();
    sequence.started(Start::After(5));
    assert_eq!(
        admit_all(&mut sequence, &[3, 4, 5, 6, 7]),
        vec![
            Admit::Skip,
            Admit::Skip,
            Admit::Skip,
            Admit::Take { lost: 0 },
            Admit::Take { lost: 0 },
        ]
    );
    assert_eq!(sequence.restart(Start::End), Start::After(7));
}

#[test]
fn an_oldest_record_newer_than_the_checkpoint_counts_the_gap() {
    let mut sequence = Sequence::default();
    sequence.started(Start::After(5));
    assert_eq!(
        admit_all(&mut sequence, &[9, 10]),
        vec![Admit::Take { lost: 3 }, Admit::Take { lost: 0 }]
    );
}

#[test]
fn an_overwrite_counts_the_gap_and_at_least_one() {
    let mut sequence = Sequence::default();
    sequence.started(Start::End);
    assert_eq!(sequence.admit(100), Admit::Take { lost: 0 });
    sequence.overwritten();
    assert_eq!(sequence.admit(160), Admit::Take { lost: 59 });
    sequence.overwritten();
    assert_eq!(sequence.admit(161), Admit::Take { lost: 1 });
    // Before any record was read, the size of the gap is unknown: one at least.
    let mut fresh = Sequence::default();
    fresh.started(Start::End);
    fresh.overwritten();
    assert_eq!(fresh.admit(7), Admit::Take { lost: 1 });
}

#[test]
fn a_jump_without_an_overwrite_is_not_counted() {
    let mut sequence = Sequence::default();
    sequence.started(Start::Beginning);
    assert_eq!(
        admit_all(&mut sequence, &[1, 5]),
        vec![Admit::Take { lost: 0 }, Admit::Take { lost: 0 }]
    );
}

#[test]
fn a_reopen_resumes_after_the_last_record_read_or_where_it_began() {
    let mut sequence = Sequence::default();
    sequence.started(Start::Beginning);
    assert_eq!(sequence.restart(Start::Beginning), Start::Beginning);
    sequence.admit(12);
    assert_eq!(sequence.restart(Start::Beginning), Start::After(12));
}
