//! The metrics HTTP server (to be written).
