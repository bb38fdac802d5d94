//! Alipay's notifications are `application/x-www-form-urlencoded` in the charset the app was
//! set up with: UTF-8 or GBK. Values are percent-decoded to bytes first and only then decoded
//! from their charset, so a GBK value is read as GBK and never as broken UTF-8.

use std::collections::BTreeMap;

use encoding_rs::Encoding;

/// Why a body is not a form Bursar can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("unknown charset {0:?}")]
    UnknownCharset(String),
    #[error("a field is not valid {0}")]
    BadText(&'static str),
    #[error("the field {0} appears twice")]
    Repeated(String),
}

/// The fields of a form body. `charset` is the request's (from its `Content-Type`); without
/// one, the form's own `charset` field decides, and UTF-8 without that.
pub fn decode(body: &[u8], charset: Option<&str>) -> Result<BTreeMap<String, String>, FormError> {
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = body
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            (percent_decode(name), percent_decode(value))
        })
        .collect();
    let label = charset.map(str::to_string).or_else(|| {
        pairs
            .iter()
            .find(|(name, _)| name == b"charset")
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
    });
    let encoding = match label.as_deref().map(str::trim) {
        None | Some("") => encoding_rs::UTF_8,
        Some(label) => Encoding::for_label(label.as_bytes())
            .ok_or_else(|| FormError::UnknownCharset(label.to_string()))?,
    };
    let mut fields = BTreeMap::new();
    for (name, value) in pairs {
        let name = text(&name, encoding)?;
        let value = text(&value, encoding)?;
        if fields.contains_key(&name) {
            // Two values for one signed field would leave it open which one was signed.
            return Err(FormError::Repeated(name));
        }
        fields.insert(name, value);
    }
    Ok(fields)
}

fn text(bytes: &[u8], encoding: &'static Encoding) -> Result<String, FormError> {
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|text| text.into_owned())
        .ok_or(FormError::BadText(encoding.name()))
}

/// `+` is a space and `%XX` a byte; a `%` not followed by two hex digits stays as it is.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let escaped = input
            .get(i + 1..i + 3)
            .and_then(|pair| Some(hex(pair[0])? << 4 | hex(pair[1])?));
        match (input[i], escaped) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (other, _) => out.push(other),
        }
        i += 1;
    }
    out
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Encodes `fields` as a form body in UTF-8 (for tests and stubs that play Alipay).
pub fn encode(fields: &BTreeMap<String, String>) -> String {
    fields
        .iter()
        .map(|(name, value)| format!("{}={}", escape(name), escape(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_and_gbk_forms_decode_to_the_same_text() {
        let utf8 = decode(
            "subject=%E8%AF%AD%E9%9B%80+500&charset=utf-8".as_bytes(),
            None,
        )
        .expect("UTF-8 form");
        assert_eq!(utf8["subject"], "语雀 500");
        // 语雀 in GBK is D3 EF C8 B8.
        let gbk = decode(b"subject=%D3%EF%C8%B8+500&charset=gbk", None).expect("GBK form");
        assert_eq!(gbk["subject"], "语雀 500");
        let by_header = decode(b"subject=%D3%EF%C8%B8+500", Some("GBK")).expect("GBK by header");
        assert_eq!(by_header["subject"], "语雀 500");
        assert!(decode(b"subject=%D3%EF", Some("utf-8")).is_err());
        assert!(decode(b"a=1&a=2", None).is_err());
        assert!(decode(b"a=1", Some("klingon")).is_err());
        let round = decode(encode(&utf8).as_bytes(), None).expect("round trip");
        assert_eq!(round, utf8);
    }

    #[test]
    fn a_stray_percent_stays() {
        assert_eq!(percent_decode(b"100%"), b"100%");
        assert_eq!(percent_decode(b"%4"), b"%4");
        assert_eq!(percent_decode(b"%41%zz"), b"A%zz");
    }
}
