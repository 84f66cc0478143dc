//! A stable 64-bit checksum (FNV-1a) for values that are persisted or sent elsewhere: file fingerprints
//! in checkpoints, Event names. It must never change between releases, which is why it is written out
//! here rather than taken from std's `DefaultHasher`, whose algorithm is unspecified.

/// FNV-1a, 64 bit.
pub fn checksum(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}
