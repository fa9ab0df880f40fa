//! portcullis-config: placeholder.
