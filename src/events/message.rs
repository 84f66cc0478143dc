//! The text of an Event, word for word as the original agent wrote it.
