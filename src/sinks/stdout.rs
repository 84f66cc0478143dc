//! The stdout sink (to be written).
