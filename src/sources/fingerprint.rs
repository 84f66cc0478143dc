//! Fingerprints: a checksum of the first bytes of a file (to be written)
