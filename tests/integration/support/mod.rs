//! Helpers shared by the integration tests (to be written).
