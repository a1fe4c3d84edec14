//! A [`Draft`] written out as this broker's TOML, each value followed by the
//! Mosquitto line it came from.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::draft::{toml_string, Draft, DraftBridge, DraftListener, Source, Table};
use super::{MosquittoError, Remark};

/// The TOML text of `draft`.
pub(super) fn emit(
    draft: &Draft,
    origin: &str,
    remarks: &mut Vec<Remark>,
) -> Result<String, MosquittoError> {
    let mut out = format!(
        "# Converted from {origin} by `mqtt-broker convert`.\n\
         # Each value names the Mosquitto line it stands for.\n"
    );
    if draft.listeners.is_empty() {
        out.push_str(
            "# No listener: like Mosquitto 2 with none, only 127.0.0.1:1883 and anonymous clients.\n",
        );
    }
    for l in &draft.listeners {
        listener(&mut out, l, remarks)?;
    }
    let auth = auth_with_mosquitto_default(draft);
    for (name, table) in [
        ("limits", &draft.limits),
        ("sys", &draft.sys),
        ("persistence", &draft.persistence),
        ("auth", &auth),
    ] {
        if !table.is_empty() {
            let _ = write!(out, "\n[{name}]\n");
            settings(&mut out, table);
        }
    }
    for b in &draft.bridges {
        bridge(&mut out, b)?;
    }
    Ok(out)
}

/// Mosquitto 2 refuses anonymous clients once any listener is configured
/// (and allows them in its local-only mode, without one); the default here
/// differs (anonymous allowed until a password file is set), so the
/// converted file says it.
fn auth_with_mosquitto_default(draft: &Draft) -> Table {
    let mut auth = draft.auth.clone();
    if auth.get("allow_anonymous").is_none() && !draft.listeners.is_empty() {
        let from = draft.listeners[0].from.clone();
        let from = Source {
            text: "(Mosquitto 2's default once a listener is set)".into(),
            ..from
        };
        auth.set_from("allow_anonymous", "false".into(), from);
    }
    auth
}

fn settings(out: &mut String, table: &Table) {
    for s in table.settings() {
        let _ = writeln!(
            out,
            "{} = {}    # {}:{}: {}",
            s.key,
            s.value,
            s.from.file.display(),
            s.from.line,
            s.from.text
        );
    }
}

fn comment(out: &mut String, from: &Source) {
    let _ = writeln!(
        out,
        "# {}:{}: {}",
        from.file.display(),
        from.line,
        from.text
    );
}

fn listener(
    out: &mut String,
    l: &DraftListener,
    remarks: &mut Vec<Remark>,
) -> Result<(), MosquittoError> {
    let tls = l.table.get("certfile").is_some() || l.table.get("keyfile").is_some();
    let protocol = match (l.websockets, tls) {
        (false, false) => "mqtt",
        (false, true) => "mqtts",
        (true, false) => "ws",
        (true, true) => "wss",
    };
    if l.websockets {
        remarks.push(Remark::at(
            &l.from,
            "WebSocket clients connect at the path /mqtt here (Mosquitto takes any path)",
        ));
    }
    out.push_str("\n[[listener]]\n");
    comment(out, &l.from);
    let _ = writeln!(out, "bind = {}", toml_string(&bind_address(l)?.to_string()));
    let _ = writeln!(out, "protocol = {}", toml_string(protocol));
    settings(out, &l.table);
    Ok(())
}

/// The socket address a listener binds: its address, or every interface.
fn bind_address(l: &DraftListener) -> Result<SocketAddr, MosquittoError> {
    let ip = match l.address.as_deref() {
        None if l.ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some("localhost") if l.ipv6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        Some("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(a) => a.trim_matches(['[', ']']).parse().map_err(|_| {
            l.from.invalid(
                "listener",
                format!("{a:?}: bind to an IP address (or localhost), not a host name"),
            )
        })?,
    };
    Ok(SocketAddr::new(ip, l.port))
}

fn bridge(out: &mut String, b: &DraftBridge) -> Result<(), MosquittoError> {
    let (address, from) = b.address.as_ref().ok_or_else(|| {
        b.from
            .invalid("connection", format!("bridge {:?} has no address", b.name))
    })?;
    out.push_str("\n[[bridge]]\n");
    comment(out, &b.from);
    let _ = writeln!(out, "name = {}", toml_string(&b.name));
    let scheme = if b.tls { "mqtts" } else { "mqtt" };
    let url = format!("{scheme}://{}", with_port(address));
    let _ = writeln!(
        out,
        "address = {}    # {}:{}: {}",
        toml_string(&url),
        from.file.display(),
        from.line,
        from.text
    );
    settings(out, &b.table);
    for t in &b.topics {
        out.push_str("\n[[bridge.topic]]\n");
        settings(out, t);
    }
    Ok(())
}

/// `host` → `host:1883` (Mosquitto's default bridge port, with or without TLS).
fn with_port(address: &str) -> String {
    let has_port = match address.rfind(']') {
        Some(end) => address[end..].contains(':'),
        None => address.matches(':').count() == 1,
    };
    if has_port {
        address.to_string()
    } else if address.matches(':').count() > 1 && !address.starts_with('[') {
        format!("[{address}]:1883")
    } else {
        format!("{address}:1883")
    }
}

#[cfg(test)]
mod tests {
    use super::with_port;

    #[test]
    fn a_bridge_address_without_a_port_gets_mosquittos_default() {
        assert_eq!(with_port("central"), "central:1883");
        assert_eq!(with_port("central:8883"), "central:8883");
        assert_eq!(with_port("[::1]:1884"), "[::1]:1884");
        assert_eq!(with_port("::1"), "[::1]:1883");
    }
}
