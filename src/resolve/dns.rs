//! Reverse DNS for IPs that are no pod: bounded, cached, with a timeout.
