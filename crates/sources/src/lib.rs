//! portcullis-sources: placeholder.
