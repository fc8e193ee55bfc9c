//! The strict flat XML codec (docs/wechatpay-v2.md §4): one parser for responses, notifications and the
//! simulator's request intake, and one writer.
//!
//! # Grammar accepted by [`parse`]
//!
//! ```text
//! document := BOM? ws* xml-decl? misc* root misc*
//! root     := "<xml>" (ws | comment | field)* "</xml>"  |  "<xml/>"
//! field    := "<" name ">" (text | CDATA | comment)* "</" name ">"  |  "<" name "/>"
//! misc     := ws | comment
//! ```
//!
//! Everything else is refused, each case with its own [`XmlError`]:
//!
//! * any `<!DOCTYPE`, `<!ENTITY` (or other DTD markup) and any entity reference other than the
//!   five predefined ones and character references → [`XmlError::Forbidden`] (§4.2 rule 1,
//!   §11.1). Nothing is ever expanded or loaded. A forbidden construct wins over every other
//!   error except [`XmlError::TooLarge`], so the caller can record it as `forbidden_xml`;
//! * a body above the limit ([`MAX_BODY`] by default) → [`XmlError::TooLarge`], checked first
//!   (§4.2 rule 10);
//! * invalid UTF-8, or a declaration naming another encoding → [`XmlError::NotUtf8`];
//! * an empty or whitespace-only body → [`XmlError::Empty`];
//! * another root element → [`XmlError::WrongRoot`] (§4.2 rule 2);
//! * an element inside a field → [`XmlError::Nested`] (rule 3);
//! * a field name seen twice → [`XmlError::Duplicate`] (rule 4);
//! * non-whitespace text or CDATA directly under the root → [`XmlError::TextUnderRoot`];
//! * anything else that is not well-formed (attributes, processing instructions, mismatched
//!   tags, content after the root, characters XML forbids, …) → [`XmlError::Malformed`].
//!
//! # Values
//!
//! Values are kept **byte for byte** (rule 5): no trimming, no line-ending normalisation, no
//! number conversion (rule 8). Plain text and CDATA give the same value; an empty element, a
//! self-closing element and an empty CDATA all give `""` (rule 6). Only `&amp; &lt; &gt;
//! &quot; &apos;` and character references are decoded (rule 7). Unknown fields are kept
//! (rule 9), because they take part in signature verification.
//!
//! The parser is hand-written rather than built on a general XML library: the accepted
//! language is tiny, and owning the tokenizer lets it refuse DTD markup before looking at
//! anything else, keep values byte-exact (a conforming XML processor would turn `\r\n` into
//! `\n` and break signatures over such values) and name each failure precisely. It is
//! fuzzed (`wxpay/fuzz`) and property-tested against the writer.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::Params;

/// Default body-size limit for [`parse`] / [`parse_with_root`]: 1 MiB (§4.2 rule 10; gopay
/// reads at most 3 MiB). The largest legitimate v2 message (a unifiedorder with an 8 KiB
/// `detail`, a refundquery page) is far below it.
pub const MAX_BODY: usize = 1024 * 1024;

/// Root element of every v2 message (§4.1).
pub const ROOT: &str = "xml";

/// Root element of the decrypted refund-notification payload (§4.1, §8.9).
pub const REFUND_ROOT: &str = "root";

/// Why a body was refused by [`parse`] (§4.2). Every variant is a distinct failure class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// DOCTYPE / DTD declarations or a custom entity reference (XXE, entity expansion; §11.1).
    #[error("forbidden XML construct ({what}) at byte {offset}: DOCTYPE and entities are refused")]
    Forbidden {
        /// What was found, e.g. `DOCTYPE declaration` or `entity reference &xxe;`.
        what: String,
        /// Byte offset in the body.
        offset: usize,
    },
    /// The body exceeds the size limit (§4.2 rule 10).
    #[error("body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of the body.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The body is not UTF-8 (or declares another encoding) (§2.3 `NOT_UTF8`).
    #[error("body is not UTF-8 (byte {offset})")]
    NotUtf8 {
        /// Offset of the first invalid byte or of the offending declaration.
        offset: usize,
    },
    /// The body is empty or only whitespace (§2.3 `POST_DATA_EMPTY`).
    #[error("empty body")]
    Empty,
    /// The root element is not the expected one (§4.2 rule 2).
    #[error("root element <{found}> where <{expected}> was expected")]
    WrongRoot {
        /// The root the caller asked for (`xml` or `root`).
        expected: String,
        /// The root found.
        found: String,
    },
    /// An element inside a data element: messages are flat (§4.2 rule 3).
    #[error("element <{child}> nested inside <{field}>: messages must be flat")]
    Nested {
        /// The data element.
        field: String,
        /// The element found inside it.
        child: String,
    },
    /// The same element name twice (§4.2 rule 4).
    #[error("duplicate element <{field}>")]
    Duplicate {
        /// The repeated name.
        field: String,
    },
    /// Non-whitespace text (or CDATA) directly under the root (§4.2 rule 5).
    #[error("text directly under the root element at byte {offset}")]
    TextUnderRoot {
        /// Byte offset of the text.
        offset: usize,
    },
    /// Not well-formed in some other way (§2.3 `XML_FORMAT_ERROR`).
    #[error("malformed XML at byte {offset}: {reason}")]
    Malformed {
        /// Byte offset of the problem.
        offset: usize,
        /// Short description.
        reason: &'static str,
    },
}

impl XmlError {
    /// Whether the body was refused for DOCTYPE / entity content (§11.1); callers map this to
    /// the `forbidden_xml` verdict.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, XmlError::Forbidden { .. })
    }
}

/// Parse a v2 message with root `<xml>` and the default size limit (§4.2).
pub fn parse(body: &[u8]) -> Result<Params, XmlError> {
    parse_with_limit(body, ROOT, MAX_BODY)
}

/// Parse with another root element, e.g. [`REFUND_ROOT`] for the decrypted refund
/// notification (§4.1, §8.9).
pub fn parse_with_root(body: &[u8], root: &str) -> Result<Params, XmlError> {
    parse_with_limit(body, root, MAX_BODY)
}

/// Parse with an explicit root and size limit (§4.2).
pub fn parse_with_limit(body: &[u8], root: &str, limit: usize) -> Result<Params, XmlError> {
    if body.len() > limit {
        return Err(XmlError::TooLarge {
            size: body.len(),
            limit,
        });
    }
    // Tokenising works on bytes (all markup is ASCII), so a forbidden construct is reported
    // even in a body that is also not UTF-8; otherwise invalid UTF-8 is the reported cause.
    let utf8_error = std::str::from_utf8(body).err().map(|e| e.valid_up_to());
    let result = Parser { b: body, pos: 0 }.document(root);
    match (result, utf8_error) {
        (Err(e @ XmlError::Forbidden { .. }), _) => Err(e),
        (Err(XmlError::Empty), _) => Err(XmlError::Empty),
        // The tokenizer stops at the first problem; a refused body that also carries DTD
        // markup or a custom entity further on is reported as forbidden, the more serious
        // finding.
        (Err(e), utf8_error) => Err(scan_forbidden(body)
            .or(utf8_error.map(|offset| XmlError::NotUtf8 { offset }))
            .unwrap_or(e)),
        (Ok(_), Some(offset)) => Err(scan_forbidden(body).unwrap_or(XmlError::NotUtf8 { offset })),
        (Ok(params), None) => Ok(params),
    }
}

/// Raw scan of an already refused body for DTD markup or custom entity references.
fn scan_forbidden(body: &[u8]) -> Option<XmlError> {
    for (i, w) in body.windows(2).enumerate() {
        if w == b"<!" {
            if let e @ XmlError::Forbidden { .. } = (Parser { b: body, pos: i }).bang_markup() {
                return Some(e);
            }
        }
    }
    let mut i = 0;
    while let Some(j) = body[i..].iter().position(|&c| c == b'&') {
        let at = i + j;
        let name: Vec<u8> = body[at + 1..]
            .iter()
            .copied()
            .take_while(|&c| c != b';')
            .take(33)
            .collect();
        let terminated = body.get(at + 1 + name.len()) == Some(&b';');
        let custom = !matches!(name.as_slice(), b"amp" | b"lt" | b"gt" | b"quot" | b"apos");
        let is_name =
            !name.is_empty() && is_name_start(name[0]) && name.iter().all(|&c| is_name_char(c));
        if terminated && name.len() <= 32 && is_name && custom {
            return Some(XmlError::Forbidden {
                what: format!("entity reference &{};", String::from_utf8_lossy(&name)),
                offset: at,
            });
        }
        i = at + 1;
    }
    None
}

struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// Whether `name` can be written and read back as an element name by this codec.
pub fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && is_name_start(b[0]) && b.iter().all(|&c| is_name_char(c))
}

/// The XML 1.0 `Char` production: what may appear in a value at all.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn malformed(offset: usize, reason: &'static str) -> XmlError {
    XmlError::Malformed { offset, reason }
}

fn utf8(bytes: &[u8], offset: usize) -> Result<&str, XmlError> {
    std::str::from_utf8(bytes).map_err(|e| XmlError::NotUtf8 {
        offset: offset + e.valid_up_to(),
    })
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.b[self.pos.min(self.b.len())..]
    }

    fn starts_with(&self, s: &[u8]) -> bool {
        self.rest().starts_with(s)
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    fn find(&self, needle: &[u8]) -> Option<usize> {
        self.rest()
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| self.pos + i)
    }

    fn document(mut self, root: &str) -> Result<Params, XmlError> {
        if self.b.starts_with(b"\xEF\xBB\xBF") {
            self.pos = 3;
        }
        self.skip_ws();
        if self.pos >= self.b.len() {
            return Err(XmlError::Empty);
        }
        if self.starts_with(b"<?xml")
            && self
                .b
                .get(self.pos + 5)
                .is_some_and(|&c| is_ws(c) || c == b'?')
        {
            self.declaration()?;
        }
        self.misc()?;
        if self.peek() != Some(b'<') {
            return Err(malformed(self.pos, "expected the root element"));
        }
        let start = self.pos;
        self.pos += 1;
        let (name, self_closing) = self.start_tag()?;
        if name != root.as_bytes() {
            return Err(XmlError::WrongRoot {
                expected: root.to_owned(),
                found: String::from_utf8_lossy(name).into_owned(),
            });
        }
        let params = if self_closing {
            Params::new()
        } else {
            self.root_content(root, start)?
        };
        self.misc()?;
        if self.pos < self.b.len() {
            return Err(malformed(self.pos, "content after the root element"));
        }
        Ok(params)
    }

    /// `<?xml version="1.0" encoding="UTF-8"?>`: only its encoding matters.
    fn declaration(&mut self) -> Result<(), XmlError> {
        let start = self.pos;
        let end = self
            .find(b"?>")
            .ok_or_else(|| malformed(start, "unterminated XML declaration"))?;
        let decl = &self.b[start + 5..end];
        if let Some(i) = decl.windows(8).position(|w| w == b"encoding") {
            let after = &decl[i + 8..];
            let value: Vec<u8> = after
                .iter()
                .copied()
                .skip_while(|&c| is_ws(c) || c == b'=')
                .skip(1)
                .take_while(|&c| c != b'"' && c != b'\'')
                .collect();
            if !value.eq_ignore_ascii_case(b"utf-8") && !value.eq_ignore_ascii_case(b"utf8") {
                return Err(XmlError::NotUtf8 { offset: start });
            }
        }
        self.pos = end + 2;
        Ok(())
    }

    /// Whitespace and comments around the root. DTD markup here is forbidden.
    fn misc(&mut self) -> Result<(), XmlError> {
        loop {
            self.skip_ws();
            if self.starts_with(b"<!--") {
                self.comment()?;
            } else if self.starts_with(b"<!") {
                return Err(self.bang_markup());
            } else if self.starts_with(b"<?") {
                return Err(malformed(
                    self.pos,
                    "processing instructions are not allowed",
                ));
            } else {
                return Ok(());
            }
        }
    }

    fn comment(&mut self) -> Result<(), XmlError> {
        let start = self.pos;
        self.pos += 4;
        let end = self
            .find(b"-->")
            .ok_or_else(|| malformed(start, "unterminated comment"))?;
        self.pos = end + 3;
        Ok(())
    }

    /// `<!` that is neither a comment nor CDATA: DTD markup is forbidden, anything else is
    /// malformed.
    fn bang_markup(&self) -> XmlError {
        let word: Vec<u8> = self.rest()[2..]
            .iter()
            .take(8)
            .take_while(|c| c.is_ascii_alphabetic())
            .map(u8::to_ascii_uppercase)
            .collect();
        let what = match word.as_slice() {
            b"DOCTYPE" => "DOCTYPE declaration",
            b"ENTITY" => "ENTITY declaration",
            b"ELEMENT" | b"ATTLIST" | b"NOTATION" => "DTD markup declaration",
            _ => return malformed(self.pos, "unexpected '<!' markup"),
        };
        XmlError::Forbidden {
            what: what.to_owned(),
            offset: self.pos,
        }
    }

    /// After `<`: a name, optional whitespace, then `>` or `/>`. Attributes are refused.
    fn start_tag(&mut self) -> Result<(&'a [u8], bool), XmlError> {
        let name = self.name()?;
        self.skip_ws();
        if self.starts_with(b">") {
            self.pos += 1;
            Ok((name, false))
        } else if self.starts_with(b"/>") {
            self.pos += 2;
            Ok((name, true))
        } else if self.peek().is_some_and(is_name_start) {
            Err(malformed(self.pos, "attributes are not allowed"))
        } else {
            Err(malformed(self.pos, "malformed start tag"))
        }
    }

    fn name(&mut self) -> Result<&'a [u8], XmlError> {
        let start = self.pos;
        if !self.peek().is_some_and(is_name_start) {
            return Err(malformed(start, "invalid or unsupported element name"));
        }
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        if self.peek().is_some_and(|c| c >= 0x80 || c == b':') {
            return Err(malformed(start, "invalid or unsupported element name"));
        }
        Ok(&self.b[start..self.pos])
    }

    /// After `</`: the name must be `expected`, then optional whitespace and `>`.
    fn end_tag(&mut self, expected: &[u8]) -> Result<(), XmlError> {
        let start = self.pos;
        self.pos += 2;
        let name = self.name()?;
        if name != expected {
            return Err(malformed(start, "mismatched end tag"));
        }
        self.skip_ws();
        if self.peek() != Some(b'>') {
            return Err(malformed(self.pos, "malformed end tag"));
        }
        self.pos += 1;
        Ok(())
    }

    /// Text up to the next `<` (or the end).
    fn text(&mut self) -> (&'a [u8], usize) {
        let start = self.pos;
        let len = self
            .rest()
            .iter()
            .position(|&c| c == b'<')
            .unwrap_or(self.rest().len());
        self.pos += len;
        (&self.b[start..start + len], start)
    }

    fn root_content(&mut self, root: &str, root_start: usize) -> Result<Params, XmlError> {
        let mut params = Params::new();
        loop {
            let (text, offset) = self.text();
            if !text.iter().all(|&c| is_ws(c)) {
                // Surface a forbidden entity reference before the structural complaint.
                unescape(text, offset)?;
                return Err(XmlError::TextUnderRoot { offset });
            }
            if self.pos >= self.b.len() {
                return Err(malformed(root_start, "root element is not closed"));
            }
            if self.starts_with(b"</") {
                self.end_tag(root.as_bytes())?;
                return Ok(params);
            } else if self.starts_with(b"<!--") {
                self.comment()?;
            } else if self.starts_with(b"<![CDATA[") {
                return Err(XmlError::TextUnderRoot { offset: self.pos });
            } else if self.starts_with(b"<!") {
                return Err(self.bang_markup());
            } else if self.starts_with(b"<?") {
                return Err(malformed(
                    self.pos,
                    "processing instructions are not allowed",
                ));
            } else {
                let start = self.pos;
                self.pos += 1;
                let (name, self_closing) = self.start_tag()?;
                let name_str = utf8(name, start + 1)?;
                if params.contains_key(name_str) {
                    return Err(XmlError::Duplicate {
                        field: name_str.to_owned(),
                    });
                }
                let value = if self_closing {
                    String::new()
                } else {
                    self.field_value(name, start)?
                };
                params.insert(name_str.to_owned(), value);
            }
        }
    }

    fn field_value(&mut self, name: &'a [u8], field_start: usize) -> Result<String, XmlError> {
        let mut value = String::new();
        loop {
            let (text, offset) = self.text();
            if !text.is_empty() {
                if let Some(i) = text.windows(3).position(|w| w == b"]]>") {
                    return Err(malformed(offset + i, "']]>' is not allowed in text"));
                }
                value.push_str(&unescape(text, offset)?);
            }
            if self.pos >= self.b.len() {
                return Err(malformed(field_start, "element is not closed"));
            }
            if self.starts_with(b"</") {
                self.end_tag(name)?;
                break;
            } else if self.starts_with(b"<![CDATA[") {
                let start = self.pos;
                self.pos += 9;
                let end = self
                    .find(b"]]>")
                    .ok_or_else(|| malformed(start, "unterminated CDATA section"))?;
                value.push_str(utf8(&self.b[self.pos..end], self.pos)?);
                self.pos = end + 3;
            } else if self.starts_with(b"<!--") {
                self.comment()?;
            } else if self.starts_with(b"<!") {
                return Err(self.bang_markup());
            } else if self.starts_with(b"<?") {
                return Err(malformed(
                    self.pos,
                    "processing instructions are not allowed",
                ));
            } else if self.b.get(self.pos + 1).is_some_and(|&c| is_name_start(c)) {
                let child: Vec<u8> = self.rest()[1..]
                    .iter()
                    .copied()
                    .take_while(|&c| is_name_char(c))
                    .collect();
                return Err(XmlError::Nested {
                    field: String::from_utf8_lossy(name).into_owned(),
                    child: String::from_utf8_lossy(&child).into_owned(),
                });
            } else {
                return Err(malformed(self.pos, "'<' is not allowed in text"));
            }
        }
        if value.chars().any(|c| !is_xml_char(c)) {
            return Err(malformed(
                field_start,
                "value contains a character XML does not allow",
            ));
        }
        Ok(value)
    }
}

/// Decode the predefined entities and character references in `text` (§4.2 rule 7). Any
/// other entity reference is forbidden (§11.1); a stray `&` is malformed.
fn unescape(text: &[u8], offset: usize) -> Result<Cow<'_, str>, XmlError> {
    let s = utf8(text, offset)?;
    if !s.contains('&') {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut at = offset;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        at += i;
        let after = &rest[i + 1..];
        let semi = after
            .find(';')
            .filter(|&j| j <= 32)
            .ok_or_else(|| malformed(at, "'&' without a terminated entity reference"))?;
        let entity = &after[..semi];
        match entity {
            "amp" => out.push('&'),
            "lt" => out.push('<'),
            "gt" => out.push('>'),
            "quot" => out.push('"'),
            "apos" => out.push('\''),
            _ if entity.starts_with('#') => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16)
                        .ok()
                        .filter(|_| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                } else {
                    let dec = &entity[1..];
                    dec.parse::<u32>()
                        .ok()
                        .filter(|_| !dec.is_empty() && dec.bytes().all(|b| b.is_ascii_digit()))
                };
                match code.and_then(char::from_u32).filter(|&c| is_xml_char(c)) {
                    Some(c) => out.push(c),
                    None => return Err(malformed(at, "invalid character reference")),
                }
            }
            _ if is_valid_name(entity) || entity.bytes().any(|b| b >= 0x80) => {
                return Err(XmlError::Forbidden {
                    what: format!("entity reference &{entity};"),
                    offset: at,
                });
            }
            _ => return Err(malformed(at, "'&' without a valid entity reference")),
        }
        rest = &after[semi + 1..];
        at += 1 + semi + 1;
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Write a v2 message with root `<xml>` (§4.3).
///
/// Every entry is written, in byte order of the names, including empty values (as `<a></a>`)
/// so that `parse(write(p)) == p`; request builders simply never put empty optional fields
/// in. Pure-digit values are written as plain text, others in CDATA; a value containing
/// `]]>` (which CDATA cannot hold) or `\r` (which XML processors would normalise) is written
/// entity-escaped instead. Names must satisfy [`is_valid_name`] and values must consist of
/// characters XML allows; no v2 field violates either.
pub fn write(params: &Params) -> String {
    write_with_root(params, ROOT)
}

/// Write with another root element (`<root>` for the refund-notification plaintext, §8.9).
pub fn write_with_root(params: &Params, root: &str) -> String {
    let mut out = String::with_capacity(
        16 + params
            .iter()
            .map(|(k, v)| 2 * k.len() + v.len() + 17)
            .sum::<usize>(),
    );
    let _ = write!(out, "<{root}>");
    for (name, value) in params {
        out.push('<');
        out.push_str(name);
        out.push('>');
        write_value(&mut out, value);
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
    let _ = write!(out, "</{root}>");
    out
}

fn write_value(out: &mut String, value: &str) {
    if value.is_empty() || value.bytes().all(|b| b.is_ascii_digit()) {
        out.push_str(value);
    } else if value.contains("]]>") || value.contains('\r') {
        for c in value.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '\r' => out.push_str("&#13;"),
                c => out.push(c),
            }
        }
    } else {
        out.push_str("<![CDATA[");
        out.push_str(value);
        out.push_str("]]>");
    }
}

/// Escape a value as CDATA-safe text for hand-built bodies such as the notification replies
/// (§8.8). Same rules as [`write`].
pub(crate) fn write_value_to(out: &mut String, value: &str) {
    write_value(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Params {
        parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn err(s: &str) -> XmlError {
        parse(s.as_bytes()).expect_err(s)
    }

    #[test]
    fn plain_cdata_empty_and_self_closing_values() {
        let p = ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml>\n  <a><![CDATA[hello]]></a>\n  <b>hello</b>\n  <c>a&amp;b&#x41;&#66;</c><d/><e></e><f><![CDATA[]]></f>\n</xml>\n");
        assert_eq!(p["a"], "hello");
        assert_eq!(p["b"], "hello");
        assert_eq!(p["c"], "a&bAB");
        assert_eq!(p["d"], "");
        assert_eq!(p["e"], "");
        assert_eq!(p["f"], "");
    }

    #[test]
    fn values_are_byte_exact() {
        let p = ok("<xml><a> 1 </a><b>x\r\ny</b><c><![CDATA[ <b>&amp; ]]></c><n>01</n></xml>");
        assert_eq!(p["a"], " 1 ");
        assert_eq!(p["b"], "x\r\ny");
        assert_eq!(p["c"], " <b>&amp; ");
        assert_eq!(p["n"], "01");
    }

    #[test]
    fn bom_comments_and_mixed_pieces() {
        let p = ok(
            "\u{feff}<!-- hi --><xml><!-- c --><a>x<!-- y -->z<![CDATA[w]]></a></xml><!-- end -->",
        );
        assert_eq!(p["a"], "xzw");
    }

    #[test]
    fn each_refusal_has_its_own_error() {
        assert!(err("<!DOCTYPE xml><xml></xml>").is_forbidden());
        assert!(err(
            "<?xml version=\"1.0\"?><!doctype xml [<!ENTITY a \"b\">]><xml><a>&a;</a></xml>"
        )
        .is_forbidden());
        assert!(err("<xml><a>&xxe;</a></xml>").is_forbidden());
        assert!(err("<xml><!ENTITY a \"b\"><a>1</a></xml>").is_forbidden());
        assert!(err("<xml><a><!DOCTYPE x></a></xml>").is_forbidden());
        assert_eq!(err(""), XmlError::Empty);
        assert_eq!(err(" \n\t"), XmlError::Empty);
        assert!(matches!(err("<XML></XML>"), XmlError::WrongRoot { .. }));
        assert!(matches!(
            err("<root><a>1</a></root>"),
            XmlError::WrongRoot { .. }
        ));
        assert!(matches!(
            err("<xml><a><b>1</b></a></xml>"),
            XmlError::Nested { .. }
        ));
        assert!(matches!(
            err("<xml><a>1</a><a>1</a></xml>"),
            XmlError::Duplicate { .. }
        ));
        assert!(matches!(
            err("<xml><a/><a></a></xml>"),
            XmlError::Duplicate { .. }
        ));
        assert!(matches!(
            err("<xml>text<a>1</a></xml>"),
            XmlError::TextUnderRoot { .. }
        ));
        assert!(matches!(
            err("<xml><a>1</a><![CDATA[x]]></xml>"),
            XmlError::TextUnderRoot { .. }
        ));
        assert!(matches!(
            parse(b"<xml><a>\xff</a></xml>"),
            Err(XmlError::NotUtf8 { .. })
        ));
        assert!(matches!(
            err("<?xml version=\"1.0\" encoding=\"GBK\"?><xml></xml>"),
            XmlError::NotUtf8 { .. }
        ));
        assert!(matches!(
            parse_with_limit(b"<xml></xml>", ROOT, 5),
            Err(XmlError::TooLarge { size: 11, limit: 5 })
        ));
        for bad in [
            "<xml><a>1</b></xml>",
            "<xml><a>1</a>",
            "<xml><a>1</a></xml><xml></xml>",
            "<xml><a x=\"1\">1</a></xml>",
            "<xml><a>1 & 2</a></xml>",
            "<xml><a>1 ]]> 2</a></xml>",
            "<xml><a>1 < 2</a></xml>",
            "<xml><a>&#0;</a></xml>",
            "<xml><a>\u{1}</a></xml>",
            "<xml><?pi x?></xml>",
            "hello",
            "<xml><a><![CDATA[x</a></xml>",
            "<xml><1a>x</1a></xml>",
        ] {
            assert!(
                matches!(err(bad), XmlError::Malformed { .. }),
                "{bad}: {:?}",
                err(bad)
            );
        }
    }

    #[test]
    fn forbidden_wins_over_bad_utf8_and_structural_errors() {
        assert!(parse(b"<!DOCTYPE x><xml><a>\xff</a></xml>")
            .unwrap_err()
            .is_forbidden());
        assert!(parse(b"<xml><a>\xff</a><!DOCTYPE x></xml>")
            .unwrap_err()
            .is_forbidden());
        assert!(err("<XML><!DOCTYPE x></XML>").is_forbidden());
        assert!(err("<xml><a>1</a><a>2</a>&xxe;</xml>").is_forbidden());
        assert!(err("<xml><a><b/></a><!ENTITY e \"x\"></xml>").is_forbidden());
        // A DOCTYPE inside CDATA is data, and the document is fine.
        assert_eq!(
            ok("<xml><a><![CDATA[<!DOCTYPE html>&x;]]></a></xml>")["a"],
            "<!DOCTYPE html>&x;"
        );
        assert!(matches!(
            err("<xml><a>1</a><a>2</a></xml>"),
            XmlError::Duplicate { .. }
        ));
    }

    #[test]
    fn refund_root() {
        let p = parse_with_root(b"<root><a>1</a></root>", REFUND_ROOT).unwrap();
        assert_eq!(p["a"], "1");
        assert!(matches!(
            parse_with_root(b"<xml></xml>", REFUND_ROOT),
            Err(XmlError::WrongRoot { .. })
        ));
    }

    #[test]
    fn writer_uses_cdata_plain_digits_and_escapes_cdata_terminator() {
        let p: Params = [
            ("total_fee", "100"),
            ("body", "a&b<c>"),
            ("attach", "x]]>y"),
            ("empty", ""),
            ("cr", "a\r\nb"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let xml = write(&p);
        assert_eq!(
            xml,
            "<xml><attach>x]]&gt;y</attach><body><![CDATA[a&b<c>]]></body><cr>a&#13;\nb</cr><empty></empty><total_fee>100</total_fee></xml>"
        );
        assert_eq!(parse(xml.as_bytes()).unwrap(), p);
    }
}
