//! The kmsg source against the real /dev/kmsg (to be written).
