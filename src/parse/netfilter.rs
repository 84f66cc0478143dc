//! netfilter fields (to be written)
