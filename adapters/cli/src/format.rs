//! How a received message is printed: the payload alone, `-v` ("topic
//! payload"), or an `-F` format, byte for byte as `mosquitto_sub` prints
//! them.
//!
//! `-F` sequences: `%%`, `%t` topic, `%p` payload, `%q` QoS, `%r` retain
//! flag, `%l` payload length, `%m` message (packet) identifier, `%x`/`%X`
//! payload in hex, `%C` content type, `%D` correlation data, `%E` message
//! expiry interval, `%F` payload format indicator, `%R` response topic,
//! `%S` subscription identifier, `%P` user properties (`key:value`, space
//! separated), `%I` ISO-8601 local time, `%U` Unix time with nanoseconds,
//! `%j` JSON of the message (its properties in a fixed order, where
//! Mosquitto keeps the order they arrived in); flags `-` and `0`, a field
//! width and a `.max` width where Mosquitto takes them; `@X` for strftime's
//! `%X` and `@N` for nanoseconds, `@@`; escapes `\\ \0 \a \e \n \r \t
//! \v`. `%A` (topic alias) and `%J` are refused: the client does not
//! expose aliases, and `%J` would need Mosquitto's JSON re-printing.

use std::io::Write;

use chrono::format::StrftimeItems;
use chrono::{DateTime, Local};
use mqtt_tokio::mqtt_client::mqtt_session::mqtt_codec::{PacketId, PayloadFormat};
use mqtt_tokio::{Client, Message, SubscriptionId};

use crate::args::OutputArgs;
use crate::failure::Failure;

/// A received message and what the client knows about it beside the
/// message itself.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// The message.
    pub(crate) message: Message,
    /// The subscription identifiers it matched (5.0).
    pub(crate) subscription_identifiers: Vec<SubscriptionId>,
    /// Its message expiry interval as it arrived, in seconds (5.0).
    pub(crate) expiry_interval: Option<u32>,
    /// The packet identifier it arrived with (QoS 1 and 2).
    pub(crate) packet_id: Option<u16>,
}

impl Received {
    /// What `Event::Message` says; `client` tells how much of the
    /// message's expiry interval is left.
    pub(crate) fn new(
        client: &Client,
        message: Message,
        subscription_identifiers: Vec<SubscriptionId>,
        packet_id: Option<PacketId>,
    ) -> Received {
        Received {
            expiry_interval: expiry_interval(client, &message),
            message,
            subscription_identifiers,
            packet_id: packet_id.map(|id| id.get()),
        }
    }
}

/// The Message Expiry Interval the message arrived with, in seconds.
fn expiry_interval(client: &Client, message: &Message) -> Option<u32> {
    message.props.expires_at.map(|at| {
        let ms = at.as_millis().saturating_sub(client.now().as_millis());
        u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX)
    })
}

/// The way messages are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Printer {
    style: Style,
    /// Whether a newline follows each message (not with `-N`).
    eol: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Style {
    Payload,
    Verbose,
    Format(Vec<Piece>),
}

/// One part of an `-F` format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Field(Spec, u8),
    /// `@X`: strftime's `%X`.
    Time(String),
    /// `@N`.
    Nanos,
}

/// The flags and widths of a `%` sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Spec {
    left: bool,
    zero: bool,
    width: usize,
    max: Option<usize>,
}

impl Printer {
    /// The printer `-v`, `-F` and `-N` ask for (`-F` wins over `-v`).
    pub(crate) fn new(args: &OutputArgs) -> Result<Printer, Failure> {
        let style = match (&args.format, args.verbose) {
            (Some(format), _) => Style::Format(parse(format)?),
            (None, true) => Style::Verbose,
            (None, false) => Style::Payload,
        };
        Ok(Printer {
            style,
            eol: !args.no_newline,
        })
    }

    /// The bytes printed for `received` at time `now`; empty when Mosquitto
    /// prints nothing (an empty payload without `-v` or `-F`).
    pub(crate) fn render(&self, received: &Received, now: DateTime<Local>) -> Vec<u8> {
        let m = &received.message;
        let mut out = Vec::new();
        match &self.style {
            Style::Payload if m.payload.is_empty() => return out,
            Style::Payload => out.extend_from_slice(&m.payload),
            Style::Verbose if m.payload.is_empty() => {
                if !self.eol {
                    return out;
                }
                out.extend_from_slice(m.topic.as_str().as_bytes());
                out.extend_from_slice(b" (null)");
            }
            Style::Verbose => {
                out.extend_from_slice(m.topic.as_str().as_bytes());
                out.push(b' ');
                out.extend_from_slice(&m.payload);
            }
            Style::Format(pieces) => {
                for piece in pieces {
                    piece.render(&mut out, received, now);
                }
            }
        }
        if self.eol {
            out.push(b'\n');
        }
        out
    }
}

/// Parses an `-F` format, refusing what `mosquitto_sub` refuses (and the
/// sequences this tool cannot print) with its words.
fn parse(format: &str) -> Result<Vec<Piece>, Failure> {
    let bytes = format.as_bytes();
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        i += 1;
        let piece = match c {
            b'%' => {
                let (spec, conv, next) = field(bytes, i)?;
                i = next;
                if conv == b'%' {
                    literal.push(b'%');
                    continue;
                }
                Piece::Field(spec, conv)
            }
            b'@' => {
                let t = *bytes.get(i).ok_or_else(incomplete)?;
                i += 1;
                match t {
                    b'@' => {
                        literal.push(b'@');
                        continue;
                    }
                    b'N' => Piece::Nanos,
                    _ => time_piece(format, i - 1)?,
                }
            }
            b'\\' => {
                let e = *bytes
                    .get(i)
                    .ok_or_else(|| Failure::usage("Error: Incomplete escape specifier."))?;
                i += 1;
                literal.push(escape(e)?);
                continue;
            }
            _ => {
                literal.push(c);
                continue;
            }
        };
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        pieces.push(piece);
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

fn incomplete() -> Failure {
    Failure::usage("Error: Incomplete format specifier.")
}

/// The flags, widths and conversion of a `%` sequence starting at `i`;
/// returns where the format goes on.
fn field(bytes: &[u8], mut i: usize) -> Result<(Spec, u8, usize), Failure> {
    let mut spec = Spec::default();
    let at = |i: usize| bytes.get(i).copied().ok_or_else(incomplete);
    loop {
        match at(i)? {
            b'-' => spec.left = true,
            b'0' => spec.zero = true,
            _ => break,
        }
        i += 1;
    }
    while at(i)?.is_ascii_digit() {
        spec.width = spec.width * 10 + usize::from(at(i)? - b'0');
        i += 1;
    }
    if at(i)? == b'.' {
        i += 1;
        let mut max = 0;
        while at(i)?.is_ascii_digit() {
            max = max * 10 + usize::from(at(i)? - b'0');
            i += 1;
        }
        spec.max = Some(max);
    }
    let conv = at(i)?;
    match conv {
        b'%' | b't' | b'p' | b'q' | b'r' | b'l' | b'x' | b'X' | b'C' | b'D' | b'E' | b'F'
        | b'R' | b'S' | b'P' | b'I' | b'U' | b'j' | b'm' => Ok((spec, conv, i + 1)),
        b'A' | b'J' => Err(Failure::usage(format!(
            "Error: Format specifier '{}' is not supported by this tool.",
            char::from(conv)
        ))),
        _ => Err(Failure::usage(format!(
            "Error: Invalid format specifier '{}'.",
            char::from(conv)
        ))),
    }
}

/// `@X` at `at` (the byte after `@`): strftime's `%X`, if chrono knows it.
fn time_piece(format: &str, at: usize) -> Result<Piece, Failure> {
    let c = format[at..].chars().next().ok_or_else(incomplete)?;
    let strftime = format!("%{c}");
    if StrftimeItems::new(&strftime).parse().is_err() || c.len_utf8() != 1 {
        return Err(Failure::usage(format!(
            "Error: Invalid time format specifier '@{c}'."
        )));
    }
    Ok(Piece::Time(strftime))
}

fn escape(e: u8) -> Result<u8, Failure> {
    Ok(match e {
        b'\\' => b'\\',
        b'0' => 0,
        b'a' => 0x07,
        b'e' => 0x1b,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 0x0b,
        _ => {
            return Err(Failure::usage(format!(
                "Error: Invalid escape specifier '{}'.",
                char::from(e)
            )))
        }
    })
}

impl Piece {
    fn render(&self, out: &mut Vec<u8>, r: &Received, now: DateTime<Local>) {
        match self {
            Piece::Literal(bytes) => out.extend_from_slice(bytes),
            Piece::Time(strftime) => {
                let _ = write!(out, "{}", now.format(strftime));
            }
            Piece::Nanos => {
                let _ = write!(out, "{:09}", now.timestamp_subsec_nanos());
            }
            Piece::Field(spec, conv) => field_value(out, *spec, *conv, r, now),
        }
    }
}

fn field_value(out: &mut Vec<u8>, spec: Spec, conv: u8, r: &Received, now: DateTime<Local>) {
    let m = &r.message;
    let p = &m.props;
    match conv {
        b't' => text(out, spec, m.topic.as_str().as_bytes()),
        b'p' => payload(out, spec, &m.payload),
        b'x' | b'X' => hex(out, spec, &m.payload, conv == b'X'),
        b'q' => out.push(b'0' + m.qos as u8),
        b'r' => out.push(if m.retain { b'1' } else { b'0' }),
        b'l' => number(out, spec, Some(m.payload.len() as u64)),
        b'm' => number(out, spec, Some(r.packet_id.map_or(0, u64::from))),
        b'C' => optional_text(out, spec, p.content_type.as_ref().map(|s| s.as_str())),
        b'R' => optional_text(out, spec, p.response_topic.as_ref().map(|t| t.as_str())),
        b'D' => out.extend_from_slice(p.correlation_data.as_deref().unwrap_or_default()),
        b'E' => number(out, spec, r.expiry_interval.map(u64::from)),
        b'F' => number(out, spec, p.payload_format_indicator.map(format_code)),
        b'S' => number(
            out,
            spec,
            r.subscription_identifiers
                .first()
                .map(|s| u64::from(s.get())),
        ),
        b'P' => user_properties(out, m),
        b'I' => {
            let time = now.format("%Y-%m-%dT%H:%M:%S%z").to_string();
            text(out, spec, time.as_bytes());
        }
        b'U' => {
            let _ = write!(
                out,
                "{}.{:09}",
                now.timestamp(),
                now.timestamp_subsec_nanos()
            );
        }
        b'j' => json(out, r, now),
        _ => {}
    }
}

fn format_code(f: PayloadFormat) -> u64 {
    match f {
        PayloadFormat::Unspecified => 0,
        PayloadFormat::Utf8 => 1,
    }
}

/// Pads `value` to the field width, on the left unless `-`; with `0`
/// (and not `-`) zeros instead of spaces where `zero_allowed`.
fn padded(out: &mut Vec<u8>, spec: Spec, value: &[u8], shown_width: usize, zero_allowed: bool) {
    let fill = spec.width.saturating_sub(shown_width);
    let pad = if spec.zero && zero_allowed && !spec.left {
        b'0'
    } else {
        b' '
    };
    if !spec.left {
        out.extend(std::iter::repeat_n(pad, fill));
    }
    out.extend_from_slice(value);
    if spec.left {
        out.extend(std::iter::repeat_n(b' ', fill));
    }
}

/// A string (`%t`, `%C`, `%R`, `%I`): `.max` cuts it, the width pads it.
fn text(out: &mut Vec<u8>, spec: Spec, value: &[u8]) {
    let value = match spec.max {
        Some(max) if value.len() > max => &value[..max],
        _ => value,
    };
    padded(out, spec, value, value.len(), false);
}

fn optional_text(out: &mut Vec<u8>, spec: Spec, value: Option<&str>) {
    if let Some(value) = value {
        text(out, spec, value.as_bytes());
    }
}

fn number(out: &mut Vec<u8>, spec: Spec, value: Option<u64>) {
    if let Some(value) = value {
        let digits = value.to_string();
        padded(out, spec, digits.as_bytes(), digits.len(), true);
    }
}

/// `%p`: a field width is also the most bytes shown, as in Mosquitto.
fn payload(out: &mut Vec<u8>, spec: Spec, value: &[u8]) {
    let shown = if spec.width > 0 {
        &value[..value.len().min(spec.width)]
    } else {
        value
    };
    padded(out, spec, shown, shown.len(), false);
}

/// `%x`/`%X`: with a field width, Mosquitto shows at most half as many
/// bytes as the width, and of fewer bytes than the width only half.
fn hex(out: &mut Vec<u8>, spec: Spec, value: &[u8], upper: bool) {
    let shown = if spec.width > 0 {
        &value[..value.len().min(spec.width) / 2]
    } else {
        value
    };
    let digits: Vec<u8> = shown
        .iter()
        .flat_map(|b| {
            let s = if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            };
            s.into_bytes()
        })
        .collect();
    padded(out, spec, &digits, digits.len(), true);
}

fn user_properties(out: &mut Vec<u8>, m: &Message) {
    for (i, (key, value)) in m.props.user_properties.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(key.as_str().as_bytes());
        out.push(b':');
        out.extend_from_slice(value.as_str().as_bytes());
    }
}

/// `%j`: Mosquitto's JSON, without `mid`.
fn json(out: &mut Vec<u8>, r: &Received, now: DateTime<Local>) {
    let m = &r.message;
    let tst = now.format("%Y-%m-%dT%H:%M:%S%.6fZ%z").to_string();
    out.extend_from_slice(b"{\"tst\":");
    json_string(out, tst.as_bytes());
    out.extend_from_slice(b",\"topic\":");
    json_string(out, m.topic.as_str().as_bytes());
    let _ = write!(
        out,
        ",\"qos\":{},\"retain\":{},\"payloadlen\":{}",
        m.qos as u8,
        u8::from(m.retain),
        m.payload.len()
    );
    if let Some(id) = r.packet_id {
        let _ = write!(out, ",\"mid\":{id}");
    }
    json_properties(out, r);
    out.extend_from_slice(b",\"payload\":");
    if m.payload.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        json_string(out, &m.payload);
    }
    out.push(b'}');
}

fn json_properties(out: &mut Vec<u8>, r: &Received) {
    let p = &r.message.props;
    let mut fields: Vec<Vec<u8>> = Vec::new();
    let mut field = |name: &str, value: &mut dyn FnMut(&mut Vec<u8>)| {
        let mut f = format!("\"{name}\":").into_bytes();
        value(&mut f);
        fields.push(f);
    };
    if let Some(f) = p.payload_format_indicator {
        field("payload-format-indicator", &mut |o| {
            let _ = write!(o, "{}", format_code(f));
        });
    }
    if let Some(e) = r.expiry_interval {
        field("message-expiry-interval", &mut |o| {
            let _ = write!(o, "{e}");
        });
    }
    if let Some(t) = &p.response_topic {
        field("response-topic", &mut |o| {
            json_string(o, t.as_str().as_bytes())
        });
    }
    if let Some(d) = &p.correlation_data {
        field("correlation-data", &mut |o| json_string(o, d));
    }
    if let Some(c) = &p.content_type {
        field("content-type", &mut |o| {
            json_string(o, c.as_str().as_bytes())
        });
    }
    if !p.user_properties.is_empty() {
        field("user-properties", &mut |o| {
            o.push(b'{');
            for (i, (k, v)) in p.user_properties.iter().enumerate() {
                if i > 0 {
                    o.push(b',');
                }
                json_string(o, k.as_str().as_bytes());
                o.push(b':');
                json_string(o, v.as_str().as_bytes());
            }
            o.push(b'}');
        });
    }
    if fields.is_empty() {
        return;
    }
    out.extend_from_slice(b",\"properties\":{");
    out.extend_from_slice(&fields.join(&b',')[..]);
    out.push(b'}');
}

/// A JSON string as cJSON prints it: quotes, backslashes and control
/// characters escaped, other bytes as they are.
fn json_string(out: &mut Vec<u8>, value: &[u8]) {
    out.push(b'"');
    for &b in value {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..0x20 => {
                let _ = write!(out, "\\u{b:04x}");
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
