//! The wire protocol: one JSON object per line, versioned, with request ids.
//!
//! Request: `{"v":1,"id":7,"cmd":"ban","target":"192.0.2.1","jail":"sshd","duration":600}`.
//! Response: `{"v":1,"id":7,"ok":true,"data":{…}}` or
//! `{"v":1,"id":7,"ok":false,"error":{"kind":"not_found","message":"…"}}`.
//! Errors that belong to no request (permission denied, busy) carry id 0.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The protocol version this build speaks. A request with another `v` is refused with
/// [`ErrorKind::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u64 = 1;

/// Longest request line the server reads (bytes, newline excluded); longer lines are answered
/// with [`ErrorKind::LineTooLong`] and skipped. Real requests are under 1 KiB.
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// Longest response line the client reads: a `bans` answer with 100k+ bans is tens of MiB.
pub const MAX_RESPONSE_LINE: usize = 256 * 1024 * 1024;

/// How many entries per list an `activity` answer has when the request gives no limit.
pub const DEFAULT_ACTIVITY_LIMIT: u64 = 20;

/// The most entries per list an `activity` answer has, whatever the request asks: the
/// answer to a once-a-second poll stays small however many addresses fail.
pub const MAX_ACTIVITY_LIMIT: u64 = 200;

/// Longest jail name accepted in a request.
const MAX_JAIL_NAME: usize = 128;

/// One request: an id chosen by the client (echoed in the response) and a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Echoed in the response; clients count from 1 (0 marks connection-level errors).
    pub id: u64,
    /// What to do.
    pub command: Command,
}

/// What the client asks for. Field names are the JSON keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Daemon, jail, source and backend status (`portcullis status [JAIL]`).
    Status {
        /// Only this jail.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jail: Option<String>,
    },
    /// List active bans (`portcullis bans [--jail J] [--net N] [--limit K]`).
    Bans {
        /// Only this jail.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jail: Option<String>,
        /// Only bans whose target lies within this network (or is it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        net: Option<Target>,
        /// At most this many, oldest first (the reply's `total` says how many matched).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
    },
    /// Ban an address or network by hand.
    Ban {
        /// What to ban.
        target: Target,
        /// The jail to record it in; the daemon picks its manual jail when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jail: Option<String>,
        /// Length in seconds; absent means the jail's normal ban time. Excludes `permanent`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration: Option<u64>,
        /// A ban without end.
        #[serde(default, skip_serializing_if = "is_false")]
        permanent: bool,
        /// Ban even an allowlisted address (the admin's own, loopback).
        #[serde(default, skip_serializing_if = "is_false")]
        force: bool,
    },
    /// Lift a ban (or, with `all`, every ban).
    Unban {
        /// What to unban; exactly one of `target` and `all`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<Target>,
        /// Only in this jail; every jail when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jail: Option<String>,
        /// Every ban (in `jail`, when given).
        #[serde(default, skip_serializing_if = "is_false")]
        all: bool,
    },
    /// What is going on now, for `portcullis top`: attempt counters, the heaviest failing
    /// addresses and networks, the newest bans, alerts and sources. Every list is bounded.
    Activity {
        /// At most this many entries per list (the daemon caps it at
        /// [`MAX_ACTIVITY_LIMIT`]; absent: [`DEFAULT_ACTIVITY_LIMIT`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
    },
    /// Re-read the configuration; on error the old one stays in force.
    Reload,
    /// Remove every ban from the firewall and the store (in one jail, when given).
    Flush {
        /// Only this jail.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jail: Option<String>,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Command {
    /// The `cmd` name.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Status { .. } => "status",
            Command::Bans { .. } => "bans",
            Command::Ban { .. } => "ban",
            Command::Unban { .. } => "unban",
            Command::Activity { .. } => "activity",
            Command::Reload => "reload",
            Command::Flush { .. } => "flush",
        }
    }

    /// Check argument combinations serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        let jail = match self {
            Command::Status { jail }
            | Command::Bans { jail, .. }
            | Command::Flush { jail }
            | Command::Ban { jail, .. }
            | Command::Unban { jail, .. } => jail.as_deref(),
            Command::Reload | Command::Activity { .. } => None,
        };
        if let Some(jail) = jail
            && (jail.is_empty() || jail.len() > MAX_JAIL_NAME)
        {
            return Err(format!("jail name must be 1 to {MAX_JAIL_NAME} bytes"));
        }
        match self {
            Command::Ban {
                duration: Some(_),
                permanent: true,
                ..
            } => Err("give either a duration or permanent, not both".into()),
            Command::Ban {
                duration: Some(0), ..
            } => Err("duration must be at least 1 second".into()),
            Command::Unban {
                target: Some(_),
                all: true,
                ..
            } => Err("give either a target or all, not both".into()),
            Command::Unban {
                target: None,
                all: false,
                ..
            } => Err("unban needs a target or all".into()),
            _ => Ok(()),
        }
    }
}

/// An address or network to ban, written as `ADDR` or `ADDR/PREFIX`.
///
/// Parsing normalises: an IPv4-mapped IPv6 address becomes IPv4, a bare address becomes a
/// /32 or /128, and host bits of a network are cleared (`192.0.2.7/24` is `192.0.2.0/24`).
/// Host names are refused: the daemon never resolves names.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target(pub IpNet);

impl Target {
    /// Parse `ADDR` or `ADDR/PREFIX`.
    pub fn parse(text: &str) -> Result<Target, String> {
        let text = text.trim();
        if text.contains('/') {
            let net: IpNet = text
                .parse()
                .map_err(|_| format!("not an address or network: {text:?}"))?;
            let net = match net {
                IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
                    Some(v4) if v6.prefix_len() >= 96 => {
                        IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).unwrap_or(net)
                    }
                    _ => net,
                },
                v4 => v4,
            };
            Ok(Target(net.trunc()))
        } else {
            let addr = portcullis_core::event::parse_addr(text)
                .ok_or_else(|| format!("not an address or network: {text:?}"))?;
            Ok(Target(IpNet::from(addr)))
        }
    }
}

impl fmt::Display for Target {
    /// A single address prints without its prefix; a network with it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            write!(f, "{}", self.0.addr())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Target, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Target::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Why a request failed; scripts and the CLI's exit codes key on this.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Not JSON, not an object, unknown command or argument, bad argument combination.
    BadRequest,
    /// The request's `v` is not [`PROTOCOL_VERSION`].
    UnsupportedVersion,
    /// The request line exceeded [`MAX_REQUEST_LINE`].
    LineTooLong,
    /// The peer's uid/gid is not allowed.
    PermissionDenied,
    /// The connection limit is reached; try again.
    Busy,
    /// No request arrived within the server's read timeout.
    Timeout,
    /// No such jail or ban.
    NotFound,
    /// The target is allowlisted; repeat with `force`.
    Allowlisted,
    /// The new configuration is invalid; the old one stays in force.
    ReloadFailed,
    /// The firewall or store failed.
    Internal,
    /// A kind from a newer daemon.
    #[serde(other)]
    Other,
}

impl ErrorKind {
    /// The snake_case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::UnsupportedVersion => "unsupported_version",
            ErrorKind::LineTooLong => "line_too_long",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Busy => "busy",
            ErrorKind::Timeout => "timeout",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Allowlisted => "allowlisted",
            ErrorKind::ReloadFailed => "reload_failed",
            ErrorKind::Internal => "internal",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `error` object of a failed response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable class.
    pub kind: ErrorKind,
    /// Human-readable explanation, one line.
    pub message: String,
}

impl ErrorBody {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// One response: the request's id and either the data or an error.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The id of the request answered; 0 for connection-level errors.
    pub id: u64,
    /// `data` on success (shape per command, see [`crate::data`]), `error` on failure.
    pub result: Result<Value, ErrorBody>,
}

impl Response {
    /// A success carrying `data`.
    pub fn ok(id: u64, data: Value) -> Response {
        Response {
            id,
            result: Ok(data),
        }
    }

    /// A failure.
    pub fn err(id: u64, kind: ErrorKind, message: impl Into<String>) -> Response {
        Response {
            id,
            result: Err(ErrorBody::new(kind, message)),
        }
    }

    /// The data decoded as `T` (e.g. [`crate::data::BansData`]), or the error.
    pub fn data_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, ErrorBody> {
        match &self.result {
            Ok(v) => T::deserialize(v).map_err(|e| {
                ErrorBody::new(ErrorKind::Other, format!("unexpected response data: {e}"))
            }),
            Err(e) => Err(e.clone()),
        }
    }

    /// The JSON line for this response, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut obj = Map::new();
        obj.insert("v".into(), PROTOCOL_VERSION.into());
        obj.insert("id".into(), self.id.into());
        match &self.result {
            Ok(data) => {
                obj.insert("ok".into(), true.into());
                obj.insert("data".into(), data.clone());
            }
            Err(e) => {
                obj.insert("ok".into(), false.into());
                obj.insert("error".into(), error_value(e));
            }
        }
        let mut line = Value::Object(obj).to_string().into_bytes();
        line.push(b'\n');
        line
    }
}

fn error_value(e: &ErrorBody) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), e.kind.as_str().into());
    m.insert("message".into(), e.message.clone().into());
    Value::Object(m)
}

impl Request {
    /// The JSON line for this request, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut obj = match serde_json::to_value(&self.command) {
            Ok(Value::Object(obj)) => obj,
            // Command always serialises to an object; keep the shape if that ever changes.
            _ => Map::new(),
        };
        obj.insert("v".into(), PROTOCOL_VERSION.into());
        obj.insert("id".into(), self.id.into());
        let mut line = Value::Object(obj).to_string().into_bytes();
        line.push(b'\n');
        line
    }
}

/// Why a request line was refused; becomes an error response with the request's id when it
/// could be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct DecodeError {
    /// The request's id if the line got that far, else 0.
    pub id: u64,
    /// `BadRequest`, `UnsupportedVersion` or `LineTooLong`.
    pub kind: ErrorKind,
    /// What was wrong.
    pub message: String,
}

impl DecodeError {
    fn new(id: u64, kind: ErrorKind, message: impl Into<String>) -> DecodeError {
        DecodeError {
            id,
            kind,
            message: message.into(),
        }
    }

    /// The error response to send back.
    pub fn to_response(&self) -> Response {
        Response::err(self.id, self.kind, self.message.clone())
    }
}

/// Decode one request line (trailing newline optional). Never panics, whatever the bytes;
/// this is the fuzz target of the control protocol.
pub fn decode_request(line: &[u8]) -> Result<Request, DecodeError> {
    if line.len() > MAX_REQUEST_LINE + 2 {
        return Err(DecodeError::new(
            0,
            ErrorKind::LineTooLong,
            format!("request longer than {MAX_REQUEST_LINE} bytes"),
        ));
    }
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| DecodeError::new(0, ErrorKind::BadRequest, format!("malformed JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(DecodeError::new(
            0,
            ErrorKind::BadRequest,
            "request must be a JSON object",
        ));
    };
    let id = match obj.remove("id") {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            DecodeError::new(
                0,
                ErrorKind::BadRequest,
                "id must be a non-negative integer",
            )
        })?,
        Some(_) => {
            return Err(DecodeError::new(
                0,
                ErrorKind::BadRequest,
                "id must be a non-negative integer",
            ));
        }
        None => return Err(DecodeError::new(0, ErrorKind::BadRequest, "missing id")),
    };
    match obj.remove("v") {
        Some(Value::Number(n)) if n.as_u64() == Some(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err(DecodeError::new(
                id,
                ErrorKind::UnsupportedVersion,
                format!(
                    "protocol version {v} is not supported; this daemon speaks version {PROTOCOL_VERSION}"
                ),
            ));
        }
        None => {
            return Err(DecodeError::new(
                id,
                ErrorKind::BadRequest,
                "missing protocol version v",
            ));
        }
    }
    // serde ignores extra keys next to a unit variant's tag; refuse them like the others.
    if obj.get("cmd").and_then(Value::as_str) == Some("reload")
        && let Some(key) = obj.keys().find(|k| *k != "cmd")
    {
        return Err(DecodeError::new(
            id,
            ErrorKind::BadRequest,
            format!("unknown field `{key}` for reload"),
        ));
    }
    let command: Command = serde_json::from_value(Value::Object(obj))
        .map_err(|e| DecodeError::new(id, ErrorKind::BadRequest, e.to_string()))?;
    command
        .validate()
        .map_err(|m| DecodeError::new(id, ErrorKind::BadRequest, m))?;
    Ok(Request { id, command })
}

/// Why a response line could not be read (client side).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid response from the daemon: {0}")]
pub struct ResponseDecodeError(pub String);

/// Decode one response line (trailing newline optional).
pub fn decode_response(line: &[u8]) -> Result<Response, ResponseDecodeError> {
    let bad = |m: &str| ResponseDecodeError(m.to_owned());
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| ResponseDecodeError(format!("malformed JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(bad("not a JSON object"));
    };
    match obj.get("v").and_then(Value::as_u64) {
        Some(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err(ResponseDecodeError(format!(
                "daemon speaks protocol version {v}, this client speaks {PROTOCOL_VERSION}"
            )));
        }
        None => return Err(bad("missing protocol version v")),
    }
    let id = obj
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("missing id"))?;
    let result = match obj.get("ok").and_then(Value::as_bool) {
        Some(true) => Ok(obj.remove("data").unwrap_or(Value::Null)),
        Some(false) => {
            let error = obj
                .remove("error")
                .ok_or_else(|| bad("failure without error"))?;
            Err(ErrorBody::deserialize(error)
                .map_err(|e| ResponseDecodeError(format!("bad error object: {e}")))?)
        }
        None => return Err(bad("missing ok")),
    };
    Ok(Response { id, result })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &str) -> Result<Request, DecodeError> {
        decode_request(s.as_bytes())
    }

    #[test]
    fn requests_round_trip() {
        let cmds = vec![
            Command::Status { jail: None },
            Command::Status {
                jail: Some("sshd".into()),
            },
            Command::Bans {
                jail: None,
                net: None,
                limit: None,
            },
            Command::Ban {
                target: Target::parse("192.0.2.1").unwrap(),
                jail: Some("sshd".into()),
                duration: Some(600),
                permanent: false,
                force: true,
            },
            Command::Ban {
                target: Target::parse("2001:db8::/64").unwrap(),
                jail: None,
                duration: None,
                permanent: true,
                force: false,
            },
            Command::Unban {
                target: Some(Target::parse("198.51.100.0/24").unwrap()),
                jail: None,
                all: false,
            },
            Command::Unban {
                target: None,
                jail: Some("sshd".into()),
                all: true,
            },
            Command::Reload,
            Command::Flush { jail: None },
            Command::Activity { limit: None },
            Command::Activity { limit: Some(50) },
        ];
        for (i, command) in cmds.into_iter().enumerate() {
            let r = Request {
                id: i as u64 + 1,
                command,
            };
            let line = r.to_line();
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(
                decode_request(&line).unwrap(),
                r,
                "{}",
                String::from_utf8_lossy(&line)
            );
        }
    }

    #[test]
    fn wire_shape_is_the_documented_one() {
        let r = req(r#"{"v":1,"id":7,"cmd":"ban","target":"192.0.2.1","duration":600}"#).unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(
            r.command,
            Command::Ban {
                target: Target("192.0.2.1/32".parse().unwrap()),
                jail: None,
                duration: Some(600),
                permanent: false,
                force: false
            }
        );
        let ok = Response::ok(7, serde_json::json!({"x": 1}));
        let v: Value = serde_json::from_slice(&ok.to_line()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"v":1,"id":7,"ok":true,"data":{"x":1}})
        );
        let err = Response::err(8, ErrorKind::NotFound, "no ban for 192.0.2.1");
        let v: Value = serde_json::from_slice(&err.to_line()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"v":1,"id":8,"ok":false,"error":{"kind":"not_found","message":"no ban for 192.0.2.1"}})
        );
        assert_eq!(decode_response(&ok.to_line()).unwrap(), ok);
        assert_eq!(decode_response(&err.to_line()).unwrap(), err);
    }

    #[test]
    fn targets_normalise() {
        let t = |s: &str| Target::parse(s).map(|t| t.0.to_string());
        assert_eq!(t("192.0.2.1"), Ok("192.0.2.1/32".into()));
        assert_eq!(t("::ffff:192.0.2.1"), Ok("192.0.2.1/32".into()));
        assert_eq!(t("192.0.2.7/24"), Ok("192.0.2.0/24".into()));
        assert_eq!(t("::ffff:192.0.2.0/120"), Ok("192.0.2.0/24".into()));
        assert_eq!(t("2001:db8::1"), Ok("2001:db8::1/128".into()));
        assert_eq!(t("[2001:db8::1]"), Ok("2001:db8::1/128".into()));
        assert!(t("example.com").is_err());
        assert!(t("192.0.2.1/33").is_err());
        assert!(t("").is_err());
        assert_eq!(Target::parse("192.0.2.1").unwrap().to_string(), "192.0.2.1");
        assert_eq!(
            Target::parse("192.0.2.0/24").unwrap().to_string(),
            "192.0.2.0/24"
        );
    }

    #[test]
    fn bad_requests_are_errors_with_the_id_when_known() {
        let e = req("not json").unwrap_err();
        assert_eq!((e.id, e.kind), (0, ErrorKind::BadRequest));
        let e = req("[1,2]").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        let e = req(r#"{"v":1,"cmd":"status"}"#).unwrap_err();
        assert_eq!((e.id, e.kind), (0, ErrorKind::BadRequest));
        let e = req(r#"{"v":1,"id":-3,"cmd":"status"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        let e = req(r#"{"v":2,"id":5,"cmd":"status"}"#).unwrap_err();
        assert_eq!((e.id, e.kind), (5, ErrorKind::UnsupportedVersion));
        assert!(e.message.contains("version 2"), "{}", e.message);
        let e = req(r#"{"v":"1","id":5,"cmd":"status"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedVersion);
        let e = req(r#"{"id":5,"cmd":"status"}"#).unwrap_err();
        assert_eq!((e.id, e.kind), (5, ErrorKind::BadRequest));
        let e = req(r#"{"v":1,"id":6,"cmd":"explode"}"#).unwrap_err();
        assert_eq!((e.id, e.kind), (6, ErrorKind::BadRequest));
        let e =
            req(r#"{"v":1,"id":6,"cmd":"ban","target":"192.0.2.1","permanant":true}"#).unwrap_err();
        assert!(e.message.contains("permanant"), "{}", e.message);
        let e = req(r#"{"v":1,"id":6,"cmd":"reload","extra":1}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        let e = req(r#"{"v":1,"id":6,"cmd":"ban","target":"example.com"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        let e =
            req(r#"{"v":1,"id":6,"cmd":"ban","target":"192.0.2.1","duration":5,"permanent":true}"#)
                .unwrap_err();
        assert!(e.message.contains("not both"));
        let e = req(r#"{"v":1,"id":6,"cmd":"unban"}"#).unwrap_err();
        assert!(e.message.contains("needs a target"));
        let e = req(r#"{"v":1,"id":6,"cmd":"status","jail":""}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        let long = format!(
            r#"{{"v":1,"id":1,"cmd":"status","jail":"{}"}}"#,
            "a".repeat(MAX_REQUEST_LINE)
        );
        assert_eq!(req(&long).unwrap_err().kind, ErrorKind::LineTooLong);
        // Deep nesting hits serde_json's recursion limit, not the stack.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(decode_request(deep.as_bytes()).is_err());
    }

    #[test]
    fn unknown_error_kinds_from_newer_daemons_decode_as_other() {
        let line = br#"{"v":1,"id":1,"ok":false,"error":{"kind":"quota_exceeded","message":"m"}}"#;
        let r = decode_response(line).unwrap();
        assert_eq!(r.result.unwrap_err().kind, ErrorKind::Other);
        assert!(decode_response(br#"{"v":2,"id":1,"ok":true,"data":null}"#).is_err());
    }
}
