//! Aggregation of repeated drops into one Event per window.
