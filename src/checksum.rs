//! A stable 64-bit checksum (FNV-1a) for values that are persisted or sent elsewhere: file fingerprints
//! in checkpoints, Event names. It must never change between releases, which is why it is written out
//! here rather than taken from std's `DefaultHasher`, whose algorithm is unspecified.

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bit.
pub fn checksum(bytes: &[u8]) -> u64 {
    checksum_continued(OFFSET_BASIS, bytes)
}

/// The checksum of `a` followed by `bytes`, from `checksum(a)`: FNV-1a's value is its whole state.
pub fn checksum_continued(checksum_so_far: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(checksum_so_far, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_continued_checksum_is_the_checksum_of_the_whole() {
        assert_eq!(
            checksum_continued(checksum(b"first line\n"), b"second"),
            checksum(b"first line\nsecond")
        );
    }
}
