//! Syslog timestamps: RFC 3339, RFC 3164, or a Go reference layout as the original agent took.

/// The original agent's default `PACKET_DROP_LOG_TIME_LAYOUT`.
pub const ORIGINAL_DEFAULT_LAYOUT: &str = "2006-01-02T15:04:05.000000-07:00";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LayoutError(pub String);

#[derive(Clone, Debug)]
pub enum TimeLayout {
    /// RFC 3339 with any fraction and `Z` or an offset, or RFC 3164 `Jan _2 15:04:05`.
    Auto,
}

impl TimeLayout {
    pub fn from_go(_layout: &str) -> Result<TimeLayout, LayoutError> {
        todo!("layouts")
    }
}
