//! The journald source against real journal files (to be written).
