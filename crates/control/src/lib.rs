//! portcullis-control: the daemon's control socket — a versioned JSON-lines protocol over a
//! Unix stream socket, its server (peer credentials checked before anything is read) and a
//! synchronous client for the CLI.
//!
//! Key decision: the server owns framing, limits and authorisation and hands the daemon
//! typed [`Command`]s through the [`Handler`] trait; it never binds paths or installs signal
//! handlers itself (the listener and the shutdown future are arguments; [`bind_socket`] is a
//! separate helper for the daemon).
#![deny(missing_docs)]

mod client;
pub mod data;
mod protocol;
mod server;
mod socket;

pub use client::{BUSY_RETRY, Client, ClientError, DEFAULT_TIMEOUT};
pub use protocol::{
    Command, DEFAULT_ACTIVITY_LIMIT, DecodeError, ErrorBody, ErrorKind, MAX_ACTIVITY_LIMIT,
    MAX_REQUEST_LINE, MAX_RESPONSE_LINE, PROTOCOL_VERSION, Request, Response, ResponseDecodeError,
    Target, decode_request, decode_response,
};
pub use server::{
    AccessPolicy, CLIENT_GRACE, Handler, MAX_CONNECTIONS, Peer, READ_TIMEOUT, ServerConfig,
    WRITE_TIMEOUT, serve,
};
pub use socket::{BindError, bind_socket};
