//! The parse stage: the thread around the pure parser. It reads the clock (for expiry and the year of
//! RFC 3164 timestamps), counts why lines were skipped, and passes every batch's position on, even when
//! the batch held no drop, so that the checkpoint moves past non-drop lines too.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use crossbeam_channel::{Receiver, Sender};

use crate::metrics::Metrics;
use crate::model::{Batch, Line, PacketDrop};
use crate::parse::{NotDrop, Parser};

/// Thread body: returns when `input` is disconnected or `output`'s receiver is gone.
pub fn run(
    parser: Parser,
    expiration: Duration,
    input: Receiver<Batch<Line>>,
    output: Sender<Batch<PacketDrop>>,
    metrics: Arc<Metrics>,
) {
    let expiration = chrono::Duration::from_std(expiration).unwrap_or(chrono::Duration::MAX);
    // A malformed drop line is logged at warn the first time each reason is seen, then at debug: a
    // misconfigured layout would otherwise write one warning per packet.
    let mut warned = HashSet::new();
    for batch in input {
        let now = Utc::now();
        let mut drops = Vec::new();
        for line in &batch.items {
            let parsed = match line.time {
                Some(time) => parser.parse_message(&line.text, time),
                None => parser.parse_line(&line.text, now),
            };
            match parsed {
                Ok(drop) if now.signed_duration_since(drop.time) > expiration => {
                    metrics.lines_skipped.with_label_values(&["expired"]).inc();
                    log::debug!("skipped an expired drop from {}: {}", drop.time, line.text);
                }
                Ok(mut drop) => {
                    metrics.drops_parsed.inc_by(u64::from(drop.count));
                    drop.mark = Some(line.mark);
                    drops.push(drop);
                }
                // Lines of other things, and allowed packets in a CNI's audit log: the usual case.
                Err(reason @ (NotDrop::NoPrefix | NotDrop::NotDropped)) => {
                    metrics
                        .lines_skipped
                        .with_label_values(&[reason.reason()])
                        .inc();
                }
                Err(reason) => {
                    metrics
                        .lines_skipped
                        .with_label_values(&[reason.reason()])
                        .inc();
                    if warned.insert(reason.reason()) {
                        log::warn!(
                            "skipped a drop line ({reason}; later ones are logged at debug): {}",
                            line.text
                        );
                    } else {
                        log::debug!("skipped a drop line ({reason}): {}", line.text);
                    }
                }
            }
        }
        if output
            .send(Batch {
                items: drops,
                end: batch.end,
            })
            .is_err()
        {
            return;
        }
    }
}
