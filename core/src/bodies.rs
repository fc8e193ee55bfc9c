//! Raw message bodies for people: pretty-printing (XML indented, JSON laid out) and masking
//! the personal or secret fields before a body is shared (a support ticket, a chat with
//! WeChat Pay's helpdesk), and clipping the short caller-supplied fields shown in tables.
//!
//! Both are pure text transformations, run on the server so the two views the dashboard
//! shows are the ones tested here. Neither interprets the XML beyond its tags: a body we
//! refused (malformed, a DOCTYPE) is still shown, as text, never expanded.
//!
//! Every body shown here came from someone we do not control (anyone can POST to the
//! callback URLs), so every function is linear in its input whatever the input's shape —
//! deep nesting, one enormous line, millions of tiny elements, unclosed tags, control
//! characters — and [`pretty`] and [`clip`] stop at a fixed size ([`SHOW_BYTES`],
//! [`MAX_PRETTY_BYTES`], [`FIELD_BYTES`]). `core/tests/hostile_bodies.rs` checks it.

/// Fields masked by [`sanitize`]: who paid (`openid`, `sub_openid`), the signature (`sign`,
/// `paySign`: with the body it is a verifiable token), the merchant's free-form `attach`
/// (shops put phone numbers and addresses there), bank account and name fields, and
/// anything named like a key. `req_info` stays: it is encrypted with the API key.
pub const MASKED_FIELDS: &[&str] = &[
    "openid",
    "sub_openid",
    "sign",
    "paySign",
    "attach",
    "refund_recv_accout",
    "bank_no",
    "enc_bank_no",
    "true_name",
    "enc_true_name",
    "session_key",
    "key",
];

/// What a masked value becomes.
pub const MASK: &str = "***";

/// How much of a body [`pretty`] lays out: its first 64 KiB. Every genuine WeChat Pay
/// message (and every API body we store) is a few KiB at most, so a real body is always
/// shown whole; junk beyond this is not laid out, the page says how much it shows, and the
/// copy buttons still give the whole stored text.
pub const SHOW_BYTES: usize = 64 * 1024;

/// Deeper nesting than this is not indented further. WeChat Pay's XML is two levels deep
/// and the JSON bodies we store at most four; without a cap, two spaces per level make
/// the output quadratic in the depth (a 20 KiB body of nested tags laid out to 60 MB).
pub const MAX_INDENT_DEPTH: usize = 6;

/// The most text [`pretty`] writes (plus the one line it was writing): four times
/// [`SHOW_BYTES`], room for a real body laid out with every line indented, and a hard
/// bound on what one body can cost a page whatever its shape.
pub const MAX_PRETTY_BYTES: usize = 4 * SHOW_BYTES;

/// How much of a short caller-supplied field (a claimed order number, an address, a
/// technical detail, an audit detail) a page shows. Real ones are under 200 bytes; a
/// longer one is cut with "…" so a table row stays a row.
pub const FIELD_BYTES: usize = 1024;

/// The body with every [`MASKED_FIELDS`] value replaced by [`MASK`]: XML elements
/// (`<openid><![CDATA[…]]></openid>` keeps its CDATA wrapper) and JSON string members
/// (`"openid":"…"`). A masked element or string that never ends (a body stored cut short)
/// is masked to the end of the body, so a cut never lets a value out. Everything else is
/// left byte for byte as it was.
///
/// One pass: each `<` and `"` is looked at once, and the search for a masked value's end
/// either consumes the value or ends the pass, so the cost is linear whatever the shape
/// (no search starts again from each of a million unclosed `<sign>` tags).
pub fn sanitize(body: &str) -> String {
    let bytes = body.as_bytes();
    let mut out = String::with_capacity(body.len() + MASK.len());
    let mut copied = 0;
    let mut i = 0;
    while let Some(found) = bytes[i..].iter().position(|&c| c == b'<' || c == b'"') {
        let at = i + found;
        let value = if bytes[at] == b'<' {
            masked_element(body, at)
        } else {
            masked_member(bytes, at)
        };
        let Some(value) = value else {
            i = at + 1;
            continue;
        };
        out.push_str(&body[copied..value.start]);
        let end = value.end.unwrap_or(body.len());
        if value.xml && body[value.start..end].trim_start().starts_with("<![CDATA[") {
            out.push_str("<![CDATA[");
            out.push_str(MASK);
            out.push_str("]]>");
        } else {
            out.push_str(MASK);
        }
        let Some(end) = value.end else {
            return out;
        };
        copied = end;
        i = value.resume;
    }
    out.push_str(&body[copied..]);
    out
}

/// A masked value found by [`sanitize`]: `start..end` is replaced; `end` is `None` when
/// the value runs to the end of the body; scanning goes on at `resume`.
struct MaskedValue {
    start: usize,
    end: Option<usize>,
    resume: usize,
    xml: bool,
}

/// `<name>` of a masked field at `at` (a `<`), and where its value ends (`</name>`).
fn masked_element(body: &str, at: usize) -> Option<MaskedValue> {
    let rest = &body.as_bytes()[at + 1..];
    let name = MASKED_FIELDS
        .iter()
        .copied()
        .find(|n| rest.get(n.len()) == Some(&b'>') && rest.starts_with(n.as_bytes()))?;
    let start = at + 2 + name.len();
    let close = ["</", name, ">"].concat();
    let end = body[start..].find(&close).map(|len| start + len);
    Some(MaskedValue {
        start,
        end,
        resume: end.map_or(body.len(), |e| e + close.len()),
        xml: true,
    })
}

/// `"name": "` of a masked member at `at` (a `"`), and where its string value ends.
fn masked_member(bytes: &[u8], at: usize) -> Option<MaskedValue> {
    let rest = &bytes[at + 1..];
    let name = MASKED_FIELDS
        .iter()
        .copied()
        .find(|n| rest.get(n.len()) == Some(&b'"') && rest.starts_with(n.as_bytes()))?;
    let colon = skip_ws(bytes, at + 2 + name.len());
    if bytes.get(colon) != Some(&b':') {
        return None;
    }
    let quote = skip_ws(bytes, colon + 1);
    if bytes.get(quote) != Some(&b'"') {
        return None;
    }
    let start = quote + 1;
    let end = string_end(bytes, start);
    Some(MaskedValue {
        start,
        end,
        resume: end.map_or(bytes.len(), |e| e + 1),
        xml: false,
    })
}

fn skip_ws(bytes: &[u8], from: usize) -> usize {
    from + bytes.get(from..).map_or(0, |b| {
        b.iter().take_while(|c| c.is_ascii_whitespace()).count()
    })
}

/// The index of the `"` closing a JSON string whose text starts at `start`, skipping
/// escaped characters (`\` and `"` are ASCII, so bytes are enough).
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut escaped = false;
    for (i, &c) in bytes.get(start..)?.iter().enumerate() {
        match (c, escaped) {
            (_, true) => escaped = false,
            (b'\\', false) => escaped = true,
            (b'"', false) => return Some(start + i),
            _ => {}
        }
    }
    None
}

/// How a body is best shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// Well-formed XML, indented.
    Xml,
    /// JSON, laid out.
    Json,
    /// Anything else, as it came.
    Text,
}

impl BodyFormat {
    /// `xml`, `json` or `text`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BodyFormat::Xml => "xml",
            BodyFormat::Json => "json",
            BodyFormat::Text => "text",
        }
    }
}

/// A body laid out by [`pretty`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pretty {
    /// The laid-out text, control characters made visible (see [`push_visible`]).
    pub text: String,
    /// What the body was taken for.
    pub format: BodyFormat,
    /// How many bytes of the body `text` shows: all of them, unless the body is longer
    /// than [`SHOW_BYTES`] or its layout reached [`MAX_PRETTY_BYTES`].
    pub shown: usize,
    /// The body's length in bytes.
    pub total: usize,
}

impl Pretty {
    /// Whether only the start of the body is shown.
    pub fn is_cut(&self) -> bool {
        self.shown < self.total
    }
}

/// The body laid out for reading, and what it was taken for. XML is indented two spaces
/// per level (at most [`MAX_INDENT_DEPTH`] levels) with each leaf element on one line;
/// JSON is laid out the same way, members in their order; anything else (or XML whose
/// tags do not balance, or JSON that does not parse) is [`BodyFormat::Text`], as it came.
/// Only the first [`SHOW_BYTES`] are laid out and at most about [`MAX_PRETTY_BYTES`] are
/// written ([`Pretty::shown`] says how much); control characters are made visible. The
/// result is text: the page escapes it like any other.
pub fn pretty(body: &str) -> Pretty {
    let total = body.len();
    let head = &body[..floor_char_boundary(body, SHOW_BYTES)];
    let cut = head.len() < total;
    let trimmed = head.trim_start();
    let lead = head.len() - trimmed.len();
    let trimmed = if cut { trimmed } else { trimmed.trim_end() };
    let laid_out = if trimmed.starts_with('<') {
        pretty_xml(trimmed, cut).map(|(text, used)| (text, used, BodyFormat::Xml))
    } else if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && serde_json::from_str::<serde::de::IgnoredAny>(body.trim()).is_ok()
    {
        let (text, used) = pretty_json(trimmed);
        Some((text, used, BodyFormat::Json))
    } else {
        None
    };
    if let Some((text, used, format)) = laid_out {
        let whole = !cut && used == trimmed.len();
        return Pretty {
            text,
            format,
            shown: if whole { total } else { lead + used },
            total,
        };
    }
    let mut text = String::with_capacity(head.len());
    let shown = push_visible_until(&mut text, head, MAX_PRETTY_BYTES);
    Pretty {
        text,
        format: BodyFormat::Text,
        shown,
        total,
    }
}

/// The largest char boundary of `text` at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Whether `c` is shown as something else: C0 controls but line feed, carriage return
/// and tab become their Control Pictures (U+2400…, NUL is `␀`), DEL `␡`; C1 controls and
/// the invisible characters that reorder or hide text (zero-width, bidi overrides and
/// isolates, BOM) become `[U+XXXX]`.
fn push_char_visible(out: &mut String, c: char) {
    match c {
        '\n' | '\r' | '\t' => out.push(c),
        '\0'..='\x1f' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{FFFD}')),
        '\x7f' => out.push('\u{2421}'),
        '\u{80}'..='\u{9f}'
        | '\u{200b}'..='\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}' => {
            use std::fmt::Write;
            let _ = write!(out, "[U+{:04X}]", c as u32);
        }
        c => out.push(c),
    }
}

/// Appends `text` with its control characters made visible (see [`push_char_visible`]):
/// at most four times as many bytes as `text` (a two-byte C1 control becomes `[U+0085]`).
pub fn push_visible(out: &mut String, text: &str) {
    if text
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) || b == b'\n' || b == b'\t' || b == b'\r')
    {
        out.push_str(text);
    } else {
        for c in text.chars() {
            push_char_visible(out, c);
        }
    }
}

/// `text` with its control characters made visible (see [`push_visible`]).
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_visible(&mut out, text);
    out
}

/// Appends `text` like [`push_visible`] until `out` holds `limit` bytes; returns how many
/// bytes of `text` went in.
fn push_visible_until(out: &mut String, text: &str, limit: usize) -> usize {
    for (i, c) in text.char_indices() {
        if out.len() >= limit {
            return i;
        }
        push_char_visible(out, c);
    }
    text.len()
}

/// A short caller-supplied field for a table or a fact line: at most [`FIELD_BYTES`] of
/// it (and "…" when there was more), control characters made visible.
pub fn clip(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(FIELD_BYTES + 8));
    if push_visible_until(&mut out, text, FIELD_BYTES) < text.len() {
        out.push('…');
    }
    out
}

/// Starts a new line indented for `depth` (at most [`MAX_INDENT_DEPTH`] levels).
fn new_line(out: &mut String, depth: usize) {
    if !out.is_empty() {
        out.push('\n');
    }
    for _ in 0..depth.min(MAX_INDENT_DEPTH) {
        out.push_str("  ");
    }
}

/// One piece of an XML text.
enum Token<'a> {
    /// `<name …>`: the whole tag and the name.
    Open(&'a str, &'a str),
    /// `</name>`.
    Close(&'a str, &'a str),
    /// `<name/>`, `<?…?>`, `<!--…-->`, `<!…>`.
    Single(&'a str),
    /// Character data (including CDATA sections).
    Text(&'a str),
}

/// The tokens of `xml`, each with the offset just past it. A construct left open at the
/// end is text when the body was `cut` there, and makes the whole body text otherwise.
fn tokenize<'a>(xml: &'a str, cut: bool) -> Option<Vec<(Token<'a>, usize)>> {
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < xml.len() {
        let rest = &xml[at..];
        let end = if let Some(after) = rest.strip_prefix("<![CDATA[") {
            after
                .find("]]>")
                .map(|n| n + "<![CDATA[".len() + "]]>".len())
        } else if rest.starts_with("<!--") {
            rest.find("-->").map(|n| n + 3)
        } else if rest.starts_with('<') {
            rest.find('>').map(|n| n + 1)
        } else {
            Some(rest.find('<').unwrap_or(rest.len()))
        };
        let Some(end) = end else {
            if !cut {
                return None;
            }
            tokens.push((Token::Text(rest), xml.len()));
            break;
        };
        let piece = &rest[..end];
        let name_of = |s: &'a str| -> &'a str {
            s.split(|c: char| c.is_whitespace() || c == '/' || c == '>')
                .next()
                .unwrap_or("")
        };
        let token = if !piece.starts_with('<') || piece.starts_with("<![CDATA[") {
            Token::Text(piece)
        } else if piece.starts_with("<!--") {
            Token::Single(piece)
        } else if let Some(inner) = piece.strip_prefix("</") {
            Token::Close(piece, name_of(inner))
        } else if piece.starts_with("<?") || piece.starts_with("<!") || piece.ends_with("/>") {
            Token::Single(piece)
        } else {
            let name = name_of(&piece[1..]);
            if name.is_empty() {
                return None;
            }
            Token::Open(piece, name)
        };
        at += end;
        tokens.push((token, at));
    }
    Some(tokens)
}

/// `xml` indented, and how many of its bytes that shows; `None` when its tags do not
/// balance (before the end, when it was `cut`).
fn pretty_xml(xml: &str, cut: bool) -> Option<(String, usize)> {
    let tokens = tokenize(xml, cut)?;
    let mut out = String::with_capacity(xml.len() + xml.len() / 4);
    let mut stack: Vec<&str> = Vec::new();
    let mut used = 0;
    let mut i = 0;
    while i < tokens.len() {
        if out.len() >= MAX_PRETTY_BYTES {
            return Some((out, used));
        }
        let (token, end) = &tokens[i];
        used = *end;
        match *token {
            Token::Open(tag, name) => {
                new_line(&mut out, stack.len());
                push_visible(&mut out, tag);
                // A leaf: text (or nothing) then its own close tag stays on one line.
                let (text, next) = match tokens.get(i + 1) {
                    Some((Token::Text(t), _)) => (Some(*t), i + 2),
                    _ => (None, i + 1),
                };
                if let Some((Token::Close(close, n), end)) = tokens.get(next) {
                    if *n == name {
                        push_visible(&mut out, text.unwrap_or(""));
                        push_visible(&mut out, close);
                        used = *end;
                        i = next + 1;
                        continue;
                    }
                }
                stack.push(name);
            }
            Token::Close(tag, name) => {
                if stack.pop()? != name {
                    return None;
                }
                new_line(&mut out, stack.len());
                push_visible(&mut out, tag);
            }
            Token::Single(tag) => {
                new_line(&mut out, stack.len());
                push_visible(&mut out, tag);
            }
            Token::Text(t) => {
                let t = t.trim();
                if !t.is_empty() {
                    new_line(&mut out, stack.len());
                    push_visible(&mut out, t);
                }
            }
        }
        i += 1;
    }
    (cut || stack.is_empty()).then_some((out, used))
}

/// Valid JSON (checked by the caller), or the start of it, laid out like
/// `serde_json::to_string_pretty` but streaming: no tree is built, members stay in their
/// order and numbers and strings as written. Returns the text and how many bytes it shows.
fn pretty_json(json: &str) -> (String, usize) {
    let bytes = json.as_bytes();
    let mut out = String::with_capacity(json.len() + json.len() / 4);
    let mut depth = 0usize;
    let mut at = 0;
    while at < bytes.len() && out.len() < MAX_PRETTY_BYTES {
        match bytes[at] {
            b'"' => {
                let end = string_end(bytes, at + 1).map_or(bytes.len(), |e| e + 1);
                push_visible(&mut out, &json[at..end]);
                at = end;
            }
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                let next = skip_ws(bytes, at + 1);
                out.push(open as char);
                if bytes.get(next) == Some(&close) {
                    out.push(close as char);
                    at = next + 1;
                } else {
                    depth += 1;
                    new_line(&mut out, depth);
                    at += 1;
                }
            }
            close @ (b'}' | b']') => {
                depth = depth.saturating_sub(1);
                new_line(&mut out, depth);
                out.push(close as char);
                at += 1;
            }
            b',' => {
                out.push(',');
                new_line(&mut out, depth);
                at += 1;
            }
            b':' => {
                out.push_str(": ");
                at += 1;
            }
            c if c.is_ascii_whitespace() => at += 1,
            _ => {
                // A number or a literal: up to the next structural character or space.
                let len = bytes[at..]
                    .iter()
                    .position(|c| b"{}[],:\" \t\r\n".contains(c))
                    .unwrap_or(bytes.len() - at);
                push_visible(&mut out, &json[at..at + len]);
                at += len;
            }
        }
    }
    (out, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTIFICATION: &str = "<xml><appid><![CDATA[wx2421b1c4370ec43b]]></appid>\
        <openid><![CDATA[oUpF8uMuAJO_M2pxb1Q9zNjWeS6o]]></openid>\
        <sign><![CDATA[B552ED6B279343CB493C5DD0D78AB241]]></sign>\
        <sub_openid>o-sub-123</sub_openid><total_fee>1</total_fee>\
        <attach><![CDATA[13800138000 北京]]></attach>\
        <sign_type><![CDATA[MD5]]></sign_type>\
        <req_info><![CDATA[T87GAHG17TGAHG1TGHAHAHA1Y1CIOA9UGJH1GAHV871HAGAGQYQQPOOJMXNBCXBVNMNMAJAA]]></req_info></xml>";

    fn pretty_pair(body: &str) -> (String, BodyFormat) {
        let p = pretty(body);
        (p.text, p.format)
    }

    #[test]
    fn sanitize_masks_who_paid_and_the_signature_and_nothing_else() {
        let clean = sanitize(NOTIFICATION);
        for secret in [
            "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
            "B552ED6B279343CB493C5DD0D78AB241",
            "o-sub-123",
            "13800138000",
        ] {
            assert!(!clean.contains(secret), "{secret} in {clean}");
        }
        assert!(
            clean.contains("<openid><![CDATA[***]]></openid>"),
            "{clean}"
        );
        assert!(clean.contains("<sub_openid>***</sub_openid>"), "{clean}");
        assert!(clean.contains("<sign><![CDATA[***]]></sign>"), "{clean}");
        // Neighbours with similar names and the encrypted req_info are kept.
        assert!(
            clean.contains("<sign_type><![CDATA[MD5]]></sign_type>"),
            "{clean}"
        );
        assert!(
            clean.contains("T87GAHG17TGAHG1TGHAHAHA1Y1CIOA9UGJH1"),
            "{clean}"
        );
        assert!(clean.contains("<total_fee>1</total_fee>"), "{clean}");
        assert!(clean.contains("wx2421b1c4370ec43b"), "{clean}");
    }

    #[test]
    fn sanitize_masks_json_members_and_leaves_other_text_alone() {
        let json = r#"{"openid": "o\"x\"y", "session_key":"abc", "unionid":"u1"}"#;
        assert_eq!(
            sanitize(json),
            r#"{"openid": "***", "session_key":"***", "unionid":"u1"}"#
        );
        // A member name without a string value, and text that is neither: unchanged.
        for text in [r#"{"openid": 12}"#, "openid=oAbc&sign=X", r#""sign" "x""#] {
            assert_eq!(sanitize(text), text);
        }
        assert_eq!(sanitize("<sign></sign>"), "<sign>***</sign>");
    }

    #[test]
    fn a_masked_value_cut_short_is_masked_to_the_end() {
        // A body stored cut (over the size limit) must not let the value out either.
        assert_eq!(
            sanitize("<a>1</a><openid>oAbc<b>2</b>"),
            "<a>1</a><openid>***"
        );
        assert_eq!(sanitize("<openid><![CDATA[oAbc"), "<openid><![CDATA[***]]>");
        assert_eq!(
            sanitize(r#"{"a":1,"openid":"oAb"#),
            r#"{"a":1,"openid":"***"#
        );
        // Many unclosed masked tags: one pass, masked from the first on.
        let junk = "<sign>".repeat(100_000);
        assert_eq!(sanitize(&junk), "<sign>***");
    }

    #[test]
    fn xml_is_indented_with_leaves_on_one_line() {
        let p = pretty("<xml><a><![CDATA[x < y]]></a><b>2</b><c/><d></d></xml>");
        assert_eq!(p.format, BodyFormat::Xml);
        assert_eq!(
            p.text,
            "<xml>\n  <a><![CDATA[x < y]]></a>\n  <b>2</b>\n  <c/>\n  <d></d>\n</xml>"
        );
        assert!(!p.is_cut());
        let (nested, _) = pretty_pair("<?xml version=\"1.0\"?>\n<r><s><t>1</t></s></r>\n");
        assert_eq!(
            nested,
            "<?xml version=\"1.0\"?>\n<r>\n  <s>\n    <t>1</t>\n  </s>\n</r>"
        );
    }

    #[test]
    fn indentation_stops_at_the_depth_cap() {
        let depth = 6_000;
        let body = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        let p = pretty(&body);
        assert_eq!(p.format, BodyFormat::Xml);
        let widest = p.text.lines().map(str::len).max().unwrap();
        // The innermost leaf, `<a></a>`, at the deepest indentation.
        assert_eq!(widest, 2 * MAX_INDENT_DEPTH + "<a></a>".len());
        assert!(!p.is_cut());
        assert!(p.text.len() < 6 * body.len(), "{}", p.text.len());
    }

    #[test]
    fn anything_else_is_text_or_json() {
        for text in ["not xml", "<xml><a>1</b></xml>", "<xml><a>", "<<>", ""] {
            assert_eq!(
                pretty_pair(text),
                (text.to_owned(), BodyFormat::Text),
                "{text}"
            );
        }
        let (json, format) = pretty_pair(r#"{"errcode":0,"openid":"o1"}"#);
        assert_eq!(format, BodyFormat::Json);
        assert_eq!(json, "{\n  \"errcode\": 0,\n  \"openid\": \"o1\"\n}");
    }

    #[test]
    fn json_is_laid_out_like_serde_json_without_a_tree() {
        let body = r#" {"b": [1, 2.5, {}], "a" : {"x":[ ], "y":"q\"{[,:"}, "c":null} "#;
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        let p = pretty(body);
        assert_eq!(p.format, BodyFormat::Json);
        // The same layout; members in the body's order.
        let expected = serde_json::to_string_pretty(&value).unwrap();
        let mut ours: Vec<&str> = p.text.lines().collect();
        let mut theirs: Vec<&str> = expected.lines().collect();
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs, "{}", p.text);
        assert!(p
            .text
            .starts_with("{\n  \"b\": [\n    1,\n    2.5,\n    {}\n  ],"));
        assert_eq!(p.shown, body.len());
        // Nesting of any depth is laid out (no tree, no recursion), indented up to the cap.
        let deep = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
        let p = pretty(&deep);
        assert_eq!(p.format, BodyFormat::Json);
        let widest = p.text.lines().map(str::len).max().unwrap();
        assert_eq!(widest, 2 * MAX_INDENT_DEPTH + 1);
    }

    #[test]
    fn a_long_body_is_shown_up_to_the_cap_and_says_so() {
        let body = format!("<xml>{}</xml>", "<a>1</a>".repeat(20_000));
        let p = pretty(&body);
        assert_eq!(p.format, BodyFormat::Xml);
        assert!(p.is_cut());
        assert!(
            p.shown <= SHOW_BYTES && p.shown > SHOW_BYTES - 16,
            "{}",
            p.shown
        );
        assert_eq!(p.total, body.len());
        assert!(
            p.text.starts_with("<xml>\n  <a>1</a>\n  <a>1</a>"),
            "{}",
            &p.text[..40]
        );
        assert!(p.text.lines().count() > 8_000);
        let text = "x".repeat(3 * SHOW_BYTES);
        let p = pretty(&text);
        assert_eq!(
            (p.format, p.shown, p.text.len()),
            (BodyFormat::Text, SHOW_BYTES, SHOW_BYTES)
        );
        // Cut in the middle of a multi-byte character: cut before it.
        let han = "北".repeat(SHOW_BYTES);
        assert_eq!(pretty(&han).shown, SHOW_BYTES - SHOW_BYTES % 3);
    }

    #[test]
    fn control_characters_are_shown_visibly() {
        let p = pretty("a\u{0}b\u{1}c\u{7f}d\u{202e}e\u{85}f\tg\nh");
        assert_eq!(p.text, "a␀b␁c␡d[U+202E]e[U+0085]f\tg\nh");
        assert_eq!(
            pretty("<xml><a>\u{1b}[2J</a></xml>").text,
            "<xml>\n  <a>␛[2J</a>\n</xml>"
        );
        assert_eq!(clip("o\u{0}k"), "o␀k");
        let long = clip(&"z".repeat(5000));
        assert_eq!(long.len(), FIELD_BYTES + '…'.len_utf8());
        assert!(long.ends_with('…'));
    }

    #[test]
    fn a_doctype_is_shown_not_expanded() {
        let body = "<!DOCTYPE xml [<!ENTITY x \"boom\">]><xml><a>&x;</a></xml>";
        let (text, _) = pretty_pair(body);
        assert!(text.contains("&x;"), "{text}");
        assert!(!text.contains("boom</a>"), "{text}");
    }

    /// The worst shapes at 1 MiB all come back, with output bounded by the caps (no timing
    /// assertion: a quadratic layout would not come back on this machine in any time).
    #[test]
    fn one_mebibyte_of_the_worst_shapes_comes_back_bounded() {
        const MIB: usize = 1024 * 1024;
        let fill = |unit: &str| unit.repeat(MIB / unit.len());
        let nested = |open: &str, close: &str| {
            let n = MIB / (open.len() + close.len());
            format!("{}{}", open.repeat(n), close.repeat(n))
        };
        let shapes = [
            nested("<a>", "</a>"),
            nested("[", "]"),
            format!("[{}1]", "[".repeat(120)) + &"]".repeat(120),
            fill("<sign>"),
            fill("<openid><![CDATA["),
            fill("\"openid\":\""),
            fill("<a/>"),
            fill("[1],"),
            fill("\u{0}\u{1}\u{85}"),
            "x".repeat(MIB),
            format!("[{}1]", "1,".repeat(MIB / 2)),
            format!("<xml>{}</xml>", "<a>x<!>".repeat(MIB / 8)),
        ];
        for body in &shapes {
            let p = pretty(body);
            assert!(p.shown <= SHOW_BYTES, "{}", p.shown);
            assert!(
                p.text.len() <= MAX_PRETTY_BYTES + 4 * SHOW_BYTES,
                "{} bytes laid out",
                p.text.len()
            );
            let clean = sanitize(body);
            assert!(
                clean.len() <= body.len() + body.len() / 2 + 16,
                "{}",
                clean.len()
            );
            assert!(clip(body).len() <= FIELD_BYTES + 16);
        }
    }
}
