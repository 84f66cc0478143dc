//! Records as /dev/kmsg returns them, parsed.

use proptest::prelude::*;

use crate::sources::kmsg::record::{Assembler, Fragment, Message, Record, RecordError, parse};

/// Real records from /work/shared/reference/netfilter-logs.md (IPv4 and IPv6 INPUT, UDP, ICMP, OUTPUT).
const REAL: [&str; 5] = [
    "4,344,125226582,-;KITCHK: IN=lo OUT= MAC=00:00:00:00:00:00:00:00:00:00:00:00:08:00 SRC=127.0.0.1 DST=127.0.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=62275 DF PROTO=TCP SPT=46062 DPT=9999 WINDOW=65495 RES=0x00 SYN URGP=0 \n",
    "4,345,129328469,-;KITCHK: IN=lo OUT= MAC=00:00:00:00:00:00:00:00:00:00:00:00:86:dd SRC=0000:0000:0000:0000:0000:0000:0000:0001 DST=0000:0000:0000:0000:0000:0000:0000:0001 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=362346 PROTO=TCP SPT=48300 DPT=9999 WINDOW=65476 RES=0x00 SYN URGP=0 \n",
    "4,349,3471517981,-;KITCHK-UDP: IN=kitchkvb OUT= MAC=8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00 SRC=198.18.0.1 DST=198.18.0.2 LEN=31 TOS=0x00 PREC=0x00 TTL=64 ID=49464 DF PROTO=UDP SPT=39874 DPT=9998 LEN=11 \n",
    "4,351,3471526690,-;KITCHK-ICMP: IN=kitchkvb OUT= MAC=8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00 SRC=198.18.0.1 DST=198.18.0.2 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=59040 DF PROTO=ICMP TYPE=8 CODE=0 ID=4205 SEQ=1 \n",
    "4,352,3471534384,-;KITCHK-OUT: IN= OUT=kitchkva SRC=198.18.0.1 DST=198.18.0.2 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=56625 DF PROTO=TCP SPT=50468 DPT=9997 WINDOW=64240 RES=0x00 SYN URGP=0 UID=0 GID=0 \n",
];

fn record(sequence: u64, fragment: Fragment, message: &str) -> Record {
    Record {
        priority: 4,
        sequence,
        usec: sequence * 10,
        fragment,
        message: message.to_string(),
    }
}

#[test]
fn real_netfilter_records_parse_to_their_fields_and_message() {
    let expected = [(344, 125_226_582), (345, 129_328_469), (349, 3_471_517_981)];
    for (line, (sequence, usec)) in REAL.iter().zip(expected) {
        let parsed = parse(line.as_bytes()).unwrap();
        assert_eq!(parsed.priority, 4);
        assert_eq!(parsed.sequence, sequence);
        assert_eq!(parsed.usec, usec);
        assert_eq!(parsed.fragment, Fragment::Whole);
    }
    for line in REAL {
        let parsed = parse(line.as_bytes()).unwrap();
        let message = line.split_once(';').unwrap().1.strip_suffix('\n').unwrap();
        assert_eq!(parsed.message, message);
        // The kernel's trailing space stays: the message is exactly what the rule logged.
        assert!(parsed.message.ends_with(' '));
    }
    assert_eq!(
        parse(REAL[4].as_bytes()).unwrap().message,
        "KITCHK-OUT: IN= OUT=kitchkva SRC=198.18.0.1 DST=198.18.0.2 LEN=60 TOS=0x00 PREC=0x00 TTL=64 \
         ID=56625 DF PROTO=TCP SPT=50468 DPT=9997 WINDOW=64240 RES=0x00 SYN URGP=0 UID=0 GID=0 "
    );
}

#[test]
fn userspace_facility_and_extra_header_fields_are_accepted() {
    let parsed = parse(b"12,420,3723120995,-,caller=T1234;X: IN=eth0\n").unwrap();
    assert_eq!(
        parsed,
        Record {
            priority: 12,
            sequence: 420,
            usec: 3_723_120_995,
            fragment: Fragment::Whole,
            message: "X: IN=eth0".to_string(),
        }
    );
    // Without the final newline (a line of an imitating file) it is the same record.
    assert_eq!(
        parse(b"12,420,3723120995,-,caller=T1234;X: IN=eth0").unwrap(),
        parsed
    );
}

#[test]
fn dictionary_lines_are_not_part_of_the_message() {
    let parsed = parse(
        b"6,339,5140900,-;NET: Registered protocol family 10\n SUBSYSTEM=net\n DEVICE=+net:lo\n",
    )
    .unwrap();
    assert_eq!(parsed.sequence, 339);
    assert_eq!(parsed.message, "NET: Registered protocol family 10");
}

#[test]
fn escapes_are_turned_back_into_bytes() {
    let parsed = parse(b"4,1,2,-;tab\\x09nl\\x0aback\\x5cslash caf\\xc3\\xa9 \\xFF?\n").unwrap();
    assert_eq!(parsed.message, "tab\tnl\nback\\slash caf\u{e9} \u{fffd}?");
    // Not an escape: kept as written.
    let parsed = parse(b"4,1,2,-;a\\xZ1 b\\ c\\x4\n").unwrap();
    assert_eq!(parsed.message, "a\\xZ1 b\\ c\\x4");
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert_eq!(parse(b""), Err(RecordError::NoHeader));
    assert_eq!(parse(b"hello world\n"), Err(RecordError::NoHeader));
    assert_eq!(parse(b"4,1,2;msg"), Err(RecordError::NoFlags));
    assert_eq!(parse(b"4,1,2,;msg"), Err(RecordError::NoFlags));
    assert_eq!(
        parse(b"x,1,2,-;msg"),
        Err(RecordError::BadNumber("priority"))
    );
    assert_eq!(
        parse(b"4,-1,2,-;msg"),
        Err(RecordError::BadNumber("sequence"))
    );
    assert_eq!(
        parse(b"4,1,,-;msg"),
        Err(RecordError::BadNumber("timestamp"))
    );
    assert_eq!(parse(b"4,1;msg"), Err(RecordError::BadNumber("timestamp")));
    assert_eq!(
        parse(b"4,99999999999999999999,2,-;msg"),
        Err(RecordError::BadNumber("sequence"))
    );
    assert_eq!(
        parse(b"4294967296,1,2,-;msg"),
        Err(RecordError::BadNumber("priority"))
    );
    // A dictionary line alone (its record's line missing) is no record either.
    assert_eq!(parse(b" SUBSYSTEM=net\n"), Err(RecordError::NoHeader));
}

#[test]
fn flags_tell_whole_records_from_fragments() {
    assert_eq!(parse(b"4,1,2,c;a").unwrap().fragment, Fragment::First);
    assert_eq!(parse(b"4,1,2,+;a").unwrap().fragment, Fragment::Continued);
    assert_eq!(parse(b"4,1,2,-;a").unwrap().fragment, Fragment::Whole);
}

fn assemble(records: Vec<Record>) -> (Vec<Message>, Option<Message>) {
    let mut assembler = Assembler::default();
    let mut messages = Vec::new();
    for record in records {
        assembler.push(record, |message| messages.push(message));
    }
    (messages, assembler.flush())
}

#[test]
fn c_and_plus_fragments_are_joined_into_one_message() {
    let (messages, pending) = assemble(vec![
        record(1, Fragment::First, "KITCHK: IN=lo OUT= "),
        record(2, Fragment::Continued, "SRC=127.0.0.1 DST=127.0.0.1 "),
        record(3, Fragment::Continued, "PROTO=UDP SPT=1 DPT=2 "),
        record(4, Fragment::Whole, "next line"),
        record(5, Fragment::First, "a"),
        record(6, Fragment::First, "b"),
        record(7, Fragment::Continued, "c"),
    ]);
    assert_eq!(
        messages,
        vec![
            Message {
                sequence: 3,
                usec: 10,
                text: "KITCHK: IN=lo OUT= SRC=127.0.0.1 DST=127.0.0.1 PROTO=UDP SPT=1 DPT=2 "
                    .to_string()
            },
            Message {
                sequence: 4,
                usec: 40,
                text: "next line".to_string()
            },
            Message {
                sequence: 5,
                usec: 50,
                text: "a".to_string()
            },
        ]
    );
    assert_eq!(
        pending,
        Some(Message {
            sequence: 7,
            usec: 60,
            text: "bc".to_string()
        })
    );
}

#[test]
fn a_continuation_without_its_start_begins_a_message() {
    let (messages, pending) = assemble(vec![
        record(8, Fragment::Continued, "rest "),
        record(9, Fragment::Continued, "more"),
    ]);
    assert!(messages.is_empty());
    assert_eq!(pending.unwrap().text, "rest more");
}

/// Escapes a message as the kernel does (`msg_add_ext_text`).
fn kernel_escape(message: &[u8]) -> String {
    let mut escaped = String::new();
    for &byte in message {
        if !(b' '..127).contains(&byte) || byte == b'\\' {
            escaped.push_str(&format!("\\x{byte:02x}"));
        } else {
            escaped.push(byte as char);
        }
    }
    escaped
}

proptest! {
    #[test]
    fn any_record_the_kernel_writes_parses_back(
        priority in 0u32..=191,
        sequence in any::<u64>(),
        usec in any::<u64>(),
        flag in prop::sample::select(vec!['-', 'c', '+']),
        message in any::<String>(),
        dictionary in prop::collection::vec("[A-Z]{1,8}=[ -~]{0,20}", 0..3),
    ) {
        let mut bytes = format!("{priority},{sequence},{usec},{flag};{}\n", kernel_escape(message.as_bytes()));
        for entry in &dictionary {
            bytes.push_str(&format!(" {entry}\n"));
        }
        let parsed = parse(bytes.as_bytes()).unwrap();
        prop_assert_eq!(parsed.priority, priority);
        prop_assert_eq!(parsed.sequence, sequence);
        prop_assert_eq!(parsed.usec, usec);
        prop_assert_eq!(parsed.message, message);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn record_like_bytes_never_panic(text in "[0-9,;+c\\-\\\\x]{0,40}[ -~\\n]{0,40}") {
        let _ = parse(text.as_bytes());
    }
}
