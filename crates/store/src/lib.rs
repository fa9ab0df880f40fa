//! portcullis-store: placeholder.
