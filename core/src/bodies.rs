//! Raw message bodies for people: pretty-printing (XML indented, JSON laid out) and masking
//! the personal or secret fields before a body is shared (a support ticket, a chat with
//! WeChat Pay's helpdesk).
//!
//! Both are pure text transformations, run on the server so the two views the dashboard
//! shows are the ones tested here. Neither interprets the XML beyond its tags: a body we
//! refused (malformed, a DOCTYPE) is still shown, as text, never expanded.

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

/// The body with every [`MASKED_FIELDS`] value replaced by [`MASK`]: XML elements
/// (`<openid><![CDATA[…]]></openid>` keeps its CDATA wrapper) and JSON string members
/// (`"openid":"…"`). Everything else is left byte for byte as it was.
pub fn sanitize(body: &str) -> String {
    let mut out = body.to_owned();
    for name in MASKED_FIELDS {
        out = mask_xml_element(&out, name);
        out = mask_json_member(&out, name);
    }
    out
}

fn mask_xml_element(body: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find(&open) {
        let inner_start = start + open.len();
        let Some(len) = rest[inner_start..].find(&close) else {
            break;
        };
        let inner = &rest[inner_start..inner_start + len];
        out.push_str(&rest[..inner_start]);
        if inner.trim().starts_with("<![CDATA[") {
            out.push_str("<![CDATA[");
            out.push_str(MASK);
            out.push_str("]]>");
        } else {
            out.push_str(MASK);
        }
        out.push_str(&close);
        rest = &rest[inner_start + len + close.len()..];
    }
    out.push_str(rest);
    out
}

fn mask_json_member(body: &str, name: &str) -> String {
    let quoted = format!("\"{name}\"");
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find(&quoted) {
        let after_name = start + quoted.len();
        let tail = &rest[after_name..];
        let colon = tail.len() - tail.trim_start().len();
        let value_at = tail[colon..]
            .strip_prefix(':')
            .map(|v| after_name + colon + 1 + (v.len() - v.trim_start().len()));
        let Some(value_at) = value_at.filter(|&i| rest[i..].starts_with('"')) else {
            out.push_str(&rest[..after_name]);
            rest = &rest[after_name..];
            continue;
        };
        // Find the closing quote, skipping escaped characters.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in rest[value_at + 1..].char_indices() {
            match (c, escaped) {
                (_, true) => escaped = false,
                ('\\', false) => escaped = true,
                ('"', false) => {
                    end = Some(value_at + 1 + i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        out.push_str(&rest[..=value_at]);
        out.push_str(MASK);
        out.push('"');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
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

/// The body laid out for reading, and what it was taken for. XML is indented two spaces per
/// level with each leaf element on one line; JSON is pretty-printed; anything else (or XML
/// whose tags do not balance) comes back unchanged as [`BodyFormat::Text`]. The result is
/// text: the page escapes it like any other.
pub fn pretty(body: &str) -> (String, BodyFormat) {
    let trimmed = body.trim();
    if trimmed.starts_with('<') {
        if let Some(xml) = pretty_xml(trimmed) {
            return (xml, BodyFormat::Xml);
        }
    } else if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(trimmed) {
            if let Ok(text) = serde_json::to_string_pretty(&value) {
                return (text, BodyFormat::Json);
            }
        }
    }
    (body.to_owned(), BodyFormat::Text)
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

fn tokenize<'a>(xml: &'a str) -> Option<Vec<Token<'a>>> {
    let mut tokens = Vec::new();
    let mut rest = xml;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let end = after.find("]]>")? + "<![CDATA[".len() + "]]>".len();
            tokens.push(Token::Text(&rest[..end]));
            rest = &rest[end..];
        } else if rest.starts_with("<!--") {
            let end = rest.find("-->")? + 3;
            tokens.push(Token::Single(&rest[..end]));
            rest = &rest[end..];
        } else if rest.starts_with('<') {
            let end = rest.find('>')? + 1;
            let tag = &rest[..end];
            let name_of = |s: &'a str| -> &'a str {
                s.split(|c: char| c.is_whitespace() || c == '/' || c == '>')
                    .next()
                    .unwrap_or("")
            };
            if let Some(inner) = tag.strip_prefix("</") {
                tokens.push(Token::Close(tag, name_of(inner)));
            } else if tag.starts_with("<?") || tag.starts_with("<!") || tag.ends_with("/>") {
                tokens.push(Token::Single(tag));
            } else {
                let name = name_of(&tag[1..]);
                if name.is_empty() {
                    return None;
                }
                tokens.push(Token::Open(tag, name));
            }
            rest = &rest[end..];
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            tokens.push(Token::Text(&rest[..end]));
            rest = &rest[end..];
        }
    }
    Some(tokens)
}

fn pretty_xml(xml: &str) -> Option<String> {
    let tokens = tokenize(xml)?;
    let mut out = String::with_capacity(xml.len() + xml.len() / 4);
    let mut stack: Vec<&str> = Vec::new();
    let indent = |out: &mut String, depth: usize| {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&"  ".repeat(depth));
    };
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i] {
            Token::Open(tag, name) => {
                indent(&mut out, stack.len());
                out.push_str(tag);
                // A leaf: text (or nothing) then its own close tag stays on one line.
                let (text, next) = match tokens.get(i + 1) {
                    Some(Token::Text(t)) => (Some(*t), i + 2),
                    _ => (None, i + 1),
                };
                if let Some(Token::Close(close, n)) = tokens.get(next) {
                    if *n == name {
                        out.push_str(text.unwrap_or(""));
                        out.push_str(close);
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
                indent(&mut out, stack.len());
                out.push_str(tag);
            }
            Token::Single(tag) => {
                indent(&mut out, stack.len());
                out.push_str(tag);
            }
            Token::Text(t) => {
                let t = t.trim();
                if !t.is_empty() {
                    indent(&mut out, stack.len());
                    out.push_str(t);
                }
            }
        }
        i += 1;
    }
    stack.is_empty().then_some(out)
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
    fn sanitize_masks_json_members_and_leaves_unbalanced_text_alone() {
        let json = r#"{"openid": "o\"x\"y", "session_key":"abc", "unionid":"u1"}"#;
        assert_eq!(
            sanitize(json),
            r#"{"openid": "***", "session_key":"***", "unionid":"u1"}"#
        );
        // An element that never closes, and a member name without a value: unchanged.
        for text in ["<openid>oAbc", r#"{"openid": 12}"#, "openid=oAbc&sign=X"] {
            assert_eq!(sanitize(text), text);
        }
        assert_eq!(sanitize("<sign></sign>"), "<sign>***</sign>");
    }

    #[test]
    fn xml_is_indented_with_leaves_on_one_line() {
        let (text, format) = pretty("<xml><a><![CDATA[x < y]]></a><b>2</b><c/><d></d></xml>");
        assert_eq!(format, BodyFormat::Xml);
        assert_eq!(
            text,
            "<xml>\n  <a><![CDATA[x < y]]></a>\n  <b>2</b>\n  <c/>\n  <d></d>\n</xml>"
        );
        let (nested, _) = pretty("<?xml version=\"1.0\"?>\n<r><s><t>1</t></s></r>");
        assert_eq!(
            nested,
            "<?xml version=\"1.0\"?>\n<r>\n  <s>\n    <t>1</t>\n  </s>\n</r>"
        );
    }

    #[test]
    fn anything_else_is_text_or_json() {
        for text in ["not xml", "<xml><a>1</b></xml>", "<xml><a>", "<<>", ""] {
            assert_eq!(pretty(text), (text.to_owned(), BodyFormat::Text), "{text}");
        }
        let (json, format) = pretty(r#"{"errcode":0,"openid":"o1"}"#);
        assert_eq!(format, BodyFormat::Json);
        assert_eq!(json, "{\n  \"errcode\": 0,\n  \"openid\": \"o1\"\n}");
    }

    #[test]
    fn a_doctype_is_shown_not_expanded() {
        let body = "<!DOCTYPE xml [<!ENTITY x \"boom\">]><xml><a>&x;</a></xml>";
        let (text, _) = pretty(body);
        assert!(text.contains("&x;"), "{text}");
        assert!(!text.contains("boom</a>"), "{text}");
    }
}
