//! portcullis-loggen: placeholder.
