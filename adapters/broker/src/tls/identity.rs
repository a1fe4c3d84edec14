//! The user name a verified client certificate gives, as Mosquitto derives
//! it: `use_identity_as_username` takes the subject's Common Name,
//! `use_subject_as_username` the whole subject in RFC 2253 form (OpenSSL's
//! `XN_FLAG_RFC2253`, e.g. `CN=alice,O=Example,C=GB`: last attribute
//! first, `,` between RDNs, `+` inside one, special characters escaped).

use std::fmt::Write;

use x509_parser::asn1_rs::{Any, Tag};
use x509_parser::certificate::X509Certificate;
use x509_parser::x509::AttributeTypeAndValue;

/// Which part of the client certificate becomes the user name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum UsernameFrom {
    /// None: the client's CONNECT user name stands.
    #[default]
    Nothing,
    /// The subject's first Common Name (`use_identity_as_username`).
    CommonName,
    /// The whole subject, RFC 2253 (`use_subject_as_username`).
    Subject,
}

/// The short names OpenSSL prints, by dotted OID. Others are printed as
/// the dotted OID with the value's DER in hex (RFC 2253 §2.3, §2.4).
const SHORT_NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "street"),
    ("2.5.4.4", "SN"),
    ("2.5.4.42", "GN"),
    ("2.5.4.5", "serialNumber"),
    ("2.5.4.12", "title"),
    ("2.5.4.41", "name"),
    ("2.5.4.43", "initials"),
    ("2.5.4.44", "generationQualifier"),
    ("2.5.4.46", "dnQualifier"),
    ("2.5.4.65", "pseudonym"),
    ("2.5.4.17", "postalCode"),
    ("2.5.4.15", "businessCategory"),
    ("2.5.4.97", "organizationIdentifier"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("1.2.840.113549.1.9.1", "emailAddress"),
];

/// The user name `from` takes from `cert`; `None` when the certificate
/// lacks what is asked for (no Common Name, a value that is not text).
pub(crate) fn username(cert: &X509Certificate<'_>, from: UsernameFrom) -> Option<String> {
    match from {
        UsernameFrom::Nothing => None,
        UsernameFrom::CommonName => common_name(cert),
        UsernameFrom::Subject => subject_rfc2253(cert),
    }
}

/// The subject's first Common Name, as text (as Mosquitto takes it).
pub(crate) fn common_name(cert: &X509Certificate<'_>) -> Option<String> {
    let cn = cert.subject().iter_common_name().next()?;
    let text = value_text(cn.attr_value())?;
    (!text.is_empty() && !text.contains('\0')).then_some(text)
}

/// The subject in RFC 2253 form, as OpenSSL's `XN_FLAG_RFC2253` prints it:
/// every attribute in reverse DER order, the ones of one multi-valued RDN
/// joined by `+` (OpenSSL reverses inside an RDN too), RDNs by `,`.
pub(crate) fn subject_rfc2253(cert: &X509Certificate<'_>) -> Option<String> {
    let attrs: Vec<(usize, &AttributeTypeAndValue<'_>)> = cert
        .subject()
        .iter_rdn()
        .enumerate()
        .flat_map(|(i, rdn)| rdn.iter().map(move |a| (i, a)))
        .collect();
    let mut out = String::new();
    let mut previous = None;
    for (rdn, attr) in attrs.into_iter().rev() {
        match previous {
            Some(p) if p == rdn => out.push('+'),
            Some(_) => out.push(','),
            None => {}
        }
        previous = Some(rdn);
        attribute(&mut out, attr);
    }
    (!out.is_empty()).then_some(out)
}

fn attribute(out: &mut String, attr: &AttributeTypeAndValue<'_>) {
    let oid = attr.attr_type().to_id_string();
    let known = SHORT_NAMES.iter().find(|(o, _)| *o == oid);
    match (known, value_text(attr.attr_value())) {
        (Some((_, name)), Some(text)) => {
            out.push_str(name);
            out.push('=');
            escape(out, &text);
        }
        (known, _) => {
            // An unknown type, or a value that is not a string: the
            // value's DER in hex after '#' (RFC 2253 §2.4).
            out.push_str(known.map_or(oid.as_str(), |(_, n)| n));
            out.push_str("=#");
            for b in der(attr.attr_value()) {
                let _ = write!(out, "{b:02X}");
            }
        }
    }
}

/// A string value as text: UTF8String, PrintableString, IA5String,
/// NumericString, VisibleString and T61String as their bytes (UTF-8 or
/// ASCII), BMPString as UTF-16.
fn value_text(value: &Any<'_>) -> Option<String> {
    let data = value.as_bytes();
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString
        | Tag::T61String => std::str::from_utf8(data).ok().map(str::to_string),
        Tag::BmpString => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units = data.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

/// Escapes a value as OpenSSL does under `XN_FLAG_RFC2253`: `,+"\<>;` with a
/// backslash, a leading `#` or space and a trailing space too, and control
/// characters and every byte of a non-ASCII character as `\XX`.
fn escape(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let edge = (i == 0 && (b == b'#' || b == b' ')) || (i + 1 == bytes.len() && b == b' ');
        if !(0x20..0x7f).contains(&b) {
            let _ = write!(out, "\\{b:02X}");
        } else if edge || b",+\"\\<>;".contains(&b) {
            out.push('\\');
            out.push(char::from(b));
        } else {
            out.push(char::from(b));
        }
    }
}

/// The DER of a universal primitive value: tag, length, content.
fn der(value: &Any<'_>) -> Vec<u8> {
    let data = value.as_bytes();
    let tag = u8::try_from(value.tag().0).unwrap_or(0x1f) & 0x1f;
    let mut out = vec![tag];
    let len = data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let be = len.to_be_bytes();
        let skip = be.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (be.len() - skip) as u8);
        out.extend_from_slice(&be[skip..]);
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::CertificateDer;

    /// Made once with `openssl req -x509 -newkey ec -utf8 -multivalue-rdn
    /// -subj '/C=GB/ST=Nottinghamshire/L=Zürich/O=Ex"am;ple <Ltd>/OU=#hash\\back
    /// /OU= lead/CN=a,b=c+UID=u1/emailAddress=alice@example.com'` (OpenSSL 3).
    const TRICKY: &str = include_str!("test_subject.pem");

    /// What `openssl x509 -noout -subject -nameopt RFC2253` prints for it:
    /// the form Mosquitto's `use_subject_as_username` gives.
    const OPENSSL_RFC2253: &str = "emailAddress=alice@example.com,UID=u1+CN=a\\,b=c,OU=\\ lead,\
        OU=\\#hash\\\\back\\ ,O=Ex\\\"am\\;ple \\<Ltd\\>,L=Z\\C3\\BCrich,ST=Nottinghamshire,C=GB";

    fn with_cert<T>(f: impl FnOnce(&X509Certificate<'_>) -> T) -> T {
        let der = CertificateDer::from_pem_slice(TRICKY.as_bytes()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        f(&cert)
    }

    #[test]
    fn the_subject_is_written_as_openssl_writes_rfc_2253() {
        let subject = with_cert(|c| username(c, UsernameFrom::Subject));
        assert_eq!(subject.as_deref(), Some(OPENSSL_RFC2253));
    }

    #[test]
    fn the_identity_is_the_first_common_name_unescaped() {
        let cn = with_cert(|c| username(c, UsernameFrom::CommonName));
        assert_eq!(cn.as_deref(), Some("a,b=c"));
        assert_eq!(with_cert(|c| username(c, UsernameFrom::Nothing)), None);
    }

    #[test]
    fn values_are_escaped_at_their_edges_and_for_rfc_2253_specials() {
        let esc = |t: &str| {
            let mut s = String::new();
            escape(&mut s, t);
            s
        };
        assert_eq!(esc("#a b "), "\\#a b\\ ");
        assert_eq!(esc(" x"), "\\ x");
        assert_eq!(esc("a#b"), "a#b");
        assert_eq!(esc("a+b<c>d;e\"f\\g"), "a\\+b\\<c\\>d\\;e\\\"f\\\\g");
        assert_eq!(esc("\u{1}é"), "\\01\\C3\\A9");
    }
}
