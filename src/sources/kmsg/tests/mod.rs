//! Unit tests of the kmsg source: the pure parts (records, clocks, start and sequence numbers), the read
//! loop driven by a scripted reader (overwrites, fragments, batches), and the whole thread on a regular
//! file that imitates /dev/kmsg.

mod clock;
mod file;
mod follow;
mod position;
mod record;
