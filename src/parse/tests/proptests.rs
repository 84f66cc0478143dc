//! No input makes the parser panic: arbitrary text, drop-like text, real lines cut or with bytes inserted.

use proptest::prelude::*;

use super::*;

fn fuzz_parsers() -> [Parser; 2] {
    let prefixes = vec![
        "KITCHK:".to_string(),
        "my drop: ".to_string(),
        "D".to_string(),
    ];
    let zone = LocalZone::fixed(-5 * 3600);
    let go = TimeLayout::from_go("Jan _2 2006 03:04:05.000 PM MST").expect("layout");
    [
        Parser::new(prefixes.clone(), TimeLayout::Auto, zone.clone()),
        Parser::new(prefixes, go, zone),
    ]
}

fn exercise(line: &str) {
    let now = utc("2027-01-01T00:00:10Z");
    for parser in fuzz_parsers() {
        let _ = parser.parse_line(line, now);
        let _ = parser.parse_message(line, now);
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(line in any::<String>()) {
        exercise(&line);
    }

    #[test]
    fn drop_like_text_never_panics(
        line in "(Nov  5 2026 |2026-11-25T21:05:35(\\.[0-9]{0,12})?(Z|[+-][0-9:]{0,6}) |Dec 31 )?[a-z ]{0,3}(KITCHK: |my drop: |D)?((IN|OUT|MAC|SRC|DST|LEN|TTL|HOPLIMIT|ID|PROTO|SPT|DPT|TYPE|CODE|FRAG:)=?[0-9a-fA-F.:\\[\\]]{0,8} ?){0,30}"
    ) {
        exercise(&line);
    }

    #[test]
    fn truncated_real_lines_never_panic(which in 0usize..6, cut in any::<prop::sample::Index>()) {
        let line = format!("Dec 31 23:59:59 vm kernel: [1.5] {}", [TCP_V4, TCP_V6, UDP, ICMP_ECHO, OUTPUT, ICMP_ERROR][which]);
        let boundaries: Vec<usize> = (0..=line.len()).filter(|at| line.is_char_boundary(*at)).collect();
        exercise(&line[..boundaries[cut.index(boundaries.len())]]);
    }

    #[test]
    fn real_lines_with_inserted_bytes_never_panic(
        which in 0usize..6,
        insertions in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let line = format!("2026-11-25T21:05:35.429037+00:00 vm kernel: {}", [TCP_V4, TCP_V6, UDP, ICMP_ECHO, OUTPUT, ICMP_ERROR][which]);
        let mut bytes = line.into_bytes();
        for (at, byte) in insertions {
            bytes.insert(at.index(bytes.len() + 1), byte);
        }
        exercise(&String::from_utf8_lossy(&bytes));
    }
}
