//! The events stage: turns located drops into Event writes, aggregating repeats, rate-limited, and
//! acknowledges a batch's position once every drop in it has been accepted by the API (or shed and
//! counted).

pub mod aggregate;
pub mod message;
