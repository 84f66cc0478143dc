//! A full receive buffer: the agent is stalled (SIGSTOP) while a flood of logged packets arrives, so
//! the kernel must drop what does not fit, and a second flood comes while it reads the queue down
//! (the kernel goes on dropping until the queue is empty). Every packet the rule logged is either
//! reported or counted as lost, exactly, and later packets are reported again.

use std::net::UdpSocket;
use std::time::Duration;

use super::{TOOLS, logged_by_rule, start_agent};
use crate::support::netns::{NetnsPair, SERVER_V4, in_netns};
use crate::support::{kernel_lock, privileged, wait_until};

/// Packets in the flood: far more than 128 KiB of receive buffer holds.
const FLOOD: usize = 5_000;

#[test]
fn an_overflow_is_counted_exactly_and_reading_goes_on() {
    if !privileged("NFLOG overflow", TOOLS) {
        return;
    }
    let _serial = kernel_lock();
    let pair = NetnsPair::new();
    for port in ["9990", "9995"] {
        for target in [&["-j", "NFLOG", "--nflog-group", "9"][..], &["-j", "DROP"]] {
            let mut rule = vec!["-A", "INPUT", "-p", "udp", "--dport", port];
            rule.extend_from_slice(target);
            pair.in_server("iptables", &rule);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(&pair, dir.path(), "9", &[("NFLOG_BUFFER_BYTES", "65536")]);
    // The kernel doubles a receive buffer for its bookkeeping.
    assert_eq!(
        agent.metric("kube_iptables_tailer_nflog_receive_buffer_bytes"),
        131_072.0
    );

    let flood = || {
        in_netns(&pair.client, || {
            let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
            for _ in 0..FLOOD {
                socket.send_to(b"x", (SERVER_V4, 9990)).unwrap();
            }
        })
    };
    agent.signal(libc::SIGSTOP);
    flood();
    let stalled = logged_by_rule(&pair, "INPUT", "dpt:9990");
    assert!(stalled > 1_000, "the flood reached the rule: {stalled}");
    agent.signal(libc::SIGCONT);
    flood();
    let logged = logged_by_rule(&pair, "INPUT", "dpt:9990");

    let received = || agent.metric("kube_iptables_tailer_nflog_messages_received_total");
    let lost = || agent.metric("kube_iptables_tailer_source_lost_total{reason=\"overflow\"}");
    wait_until(
        "every logged packet reported or counted lost",
        Duration::from_secs(30),
        || received() + lost() == logged as f64,
    );
    assert!(lost() > 0.0, "the buffer overflowed");
    assert!(received() > 0.0, "what fit was read");
    let printed = agent.drain_records();
    assert_eq!(printed.len() as f64, received());
    assert!(printed.iter().all(|record| record["dpt"] == 9990));

    // Still reading: three later packets, exactly.
    for _ in 0..3 {
        pair.send_udp(SERVER_V4, 9995);
    }
    let later = agent.expect_records(3);
    assert!(
        later.iter().all(|record| record["dpt"] == 9995),
        "{later:?}"
    );
    assert_eq!(received() + lost(), logged as f64 + 3.0);
    let (status, _) = agent.terminate();
    assert!(status.success(), "{status}");
}
