//! File source tests on real files (to be written).
