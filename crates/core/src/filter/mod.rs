//! Filters: placeholder.
