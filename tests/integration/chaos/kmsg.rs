//! The kmsg source under chaos: records written to the real /dev/kmsg (no rotation: the kernel's
//! ring buffer only overwrites, far more slowly than the agent reads here), kills and API faults.

use std::io::Write;
use std::time::Duration;

use super::{Chaos, ChaosLog, Rng};
use crate::kubernetes::start_agent;
use crate::support::fake_api::FakeApi;
use crate::support::{kernel_lock, privileged, unique};

struct Kmsg {
    prefix: String,
}

impl ChaosLog for Kmsg {
    fn append(&mut self, from: usize, to: usize) {
        for number in from..to {
            write_kmsg(&super::drop_message(&self.prefix, number));
        }
    }

    fn rotate(&mut self, _: &mut Rng) {}
}

/// One record, as `echo "<4>TEXT" > /dev/kmsg` writes it; a file per record (the kernel rate-limits
/// writes per open file).
fn write_kmsg(text: &str) {
    let mut kmsg = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .expect("open /dev/kmsg for writing");
    kmsg.write_all(format!("<4>{text}\n").as_bytes())
        .expect("write a record to /dev/kmsg");
}

#[test]
fn kmsg_event_counts_add_up_exactly_through_kills_and_api_faults() {
    if !privileged("kmsg_event_counts_add_up_exactly", &[]) {
        return;
    }
    let _serial = kernel_lock();
    let api = FakeApi::start();
    super::cluster(&api);
    let dir = super::directory();
    let prefix = format!("{}:", unique("chaos-drop"));
    let start = || {
        start_agent(
            dir.path(),
            &api,
            &[
                &[("LOG_SOURCE", "kmsg"), ("IPTABLES_LOG_PREFIX", &prefix)][..],
                &super::agent_env(),
            ]
            .concat(),
        )
    };
    let first = start();
    write_kmsg("chaos begins");
    crate::support::wait_until("the first checkpoint", Duration::from_secs(20), || {
        dir.path().join("state/kmsg.checkpoint.json").exists()
    });
    let (status, _) = first.terminate();
    assert!(status.success());
    let chaos = Chaos {
        kind: "kmsg",
        dir: dir.path(),
        api: &api,
        // ~25 drops/s: the kernel's ring buffer (128 KiB here, ~500 of these records) holds ~20 s
        // of them, more than the checkpoint lags behind after API outages (a write's retries wait
        // up to 30 s, but outages this close together are rare), so a restart finds what it
        // replays. At 60/s the 15-minute soak lost 60 drops that way (and said so, below).
        lines: 500,
        step_lines: 2,
        kill: 80,
        rotate: 0,
    };
    // A record the ring buffer overwrote before a restart read it again is gone from the kernel:
    // the agent counts it (source_lost_total{reason="overwritten"}) and says so; such a run tells
    // of the ring's size, not of the agent, and says that rather than "a shortfall".
    let mut log = Kmsg {
        prefix: prefix.clone(),
    };
    let overwritten = || {
        std::fs::read_to_string(dir.path().join("agent.stderr"))
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("the kernel overwrote"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        super::run(&chaos, &mut log, &start)
    }));
    if let Err(failure) = outcome {
        let overwritten = overwritten();
        assert!(
            overwritten.is_empty(),
            "the kernel's ring buffer overwrote records before the agent read them again (the \
             checkpoint lagged longer than the ring holds; the agent counted them): {overwritten:?}"
        );
        std::panic::resume_unwind(failure);
    }
}
