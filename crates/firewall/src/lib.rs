//! portcullis-firewall: placeholder.
