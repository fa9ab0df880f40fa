//! The `portcullis` binary: placeholder.
fn main() {}
