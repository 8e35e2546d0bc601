//! Days left on a server certificate: the `notAfter` of an X.509 certificate in DER, read with
//! a few lines of DER walking rather than a full X.509 parser.

use chrono::{DateTime, NaiveDateTime, Utc};

/// One DER element: (tag, content, rest).
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count].iter().fold(0_usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[count..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The certificate's `notAfter`.
pub fn not_after(der: &[u8]) -> Option<DateTime<Utc>> {
    let (_, certificate, _) = element(der)?; // Certificate ::= SEQUENCE
    let (_, tbs, _) = element(certificate)?; // TBSCertificate ::= SEQUENCE
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == 0xa0 {
        rest = after; // [0] EXPLICIT version
    }
    let (_, _, rest) = element(rest)?; // serialNumber
    let (_, _, rest) = element(rest)?; // signature algorithm
    let (_, _, rest) = element(rest)?; // issuer
    let (_, validity, _) = element(rest)?; // validity ::= SEQUENCE { notBefore, notAfter }
    let (_, _, validity) = element(validity)?;
    let (tag, time, _) = element(validity)?;
    let text = std::str::from_utf8(time).ok()?;
    let parsed = match tag {
        0x17 => NaiveDateTime::parse_from_str(text, "%y%m%d%H%M%SZ").ok()?, // UTCTime
        0x18 => NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%SZ").ok()?, // GeneralizedTime
        _ => return None,
    };
    Some(parsed.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal certificate skeleton with the fields in X.509 order.
    fn der(not_after: &[u8], tag: u8) -> Vec<u8> {
        fn wrap(tag: u8, content: &[u8]) -> Vec<u8> {
            let mut out = vec![tag, content.len() as u8];
            out.extend_from_slice(content);
            out
        }
        let mut validity = wrap(0x17, b"260101000000Z");
        validity.extend(wrap(tag, not_after));
        let mut tbs = wrap(0xa0, &wrap(0x02, &[2]));
        tbs.extend(wrap(0x02, &[1, 2, 3]));
        tbs.extend(wrap(0x30, &[]));
        tbs.extend(wrap(0x30, &[]));
        tbs.extend(wrap(0x30, &validity));
        wrap(0x30, &wrap(0x30, &tbs))
    }

    #[test]
    fn reads_utc_and_generalized_times() {
        assert_eq!(
            not_after(&der(b"270315120000Z", 0x17)).map(|t| t.to_rfc3339()),
            Some("2027-03-15T12:00:00+00:00".into())
        );
        assert_eq!(
            not_after(&der(b"20500101000000Z", 0x18)).map(|t| t.to_rfc3339()),
            Some("2050-01-01T00:00:00+00:00".into())
        );
        assert_eq!(not_after(b"\x30\x05garbage"), None);
        assert_eq!(not_after(&[]), None);
    }
}
