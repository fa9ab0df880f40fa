//! portcullis-control: placeholder.
