//! Bounded cost for every stored input: over generated hostile bodies — deep XML and JSON
//! nesting, one enormous line, very many tiny elements, unclosed tags, masked-field open
//! tags that never close, invalid UTF-8, NUL and other control characters, and random
//! mixtures of all of them — what the dashboard does with a stored body (pretty-print,
//! mask, explain the signature) writes at most a small constant times the input plus a
//! constant, and never more than the display caps.
//!
//! Sizes are scaled so the whole file runs in seconds; a layout that is quadratic in the
//! depth or the element count fails the size assertions long before it gets slow.

use paydesk_core::bodies::{self, MAX_PRETTY_BYTES, SHOW_BYTES};
use proptest::prelude::*;
use wxpay::explain::MAX_DEBUG_BODY;
use wxpay::ApiKey;

/// Output bytes per input byte that a layout may write (two spaces per level up to the
/// depth cap, one line per tag, control characters made visible).
const PRETTY_PER_BYTE: usize = 12;

/// Pieces the mixtures are made of: every construct the layout, the masking and the
/// parser treat specially, and some that only look special.
const PIECES: &[&str] = &[
    "<",
    ">",
    "</",
    "/>",
    "<a>",
    "</a>",
    "<b/>",
    "<xml>",
    "</xml>",
    "<sign>",
    "</sign>",
    "<openid>",
    "</openid>",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<!DOCTYPE x>",
    "<?xml?>",
    "\"openid\"",
    "\"sign\":\"",
    "\"",
    "\\",
    ":",
    "{",
    "}",
    "[",
    "]",
    ",",
    "1",
    "null",
    " ",
    "\n",
    "\r",
    "\t",
    "\0",
    "\u{1}",
    "\u{1b}[2J",
    "\u{7f}",
    "\u{85}",
    "\u{202e}",
    "\u{feff}",
    "\u{fffd}",
    "x",
    "北",
    "&amp;",
    "&x;",
];

/// A body of `n` repetitions of `unit`.
fn repeated(unit: &'static str, max: usize) -> impl Strategy<Value = String> {
    (0..=max).prop_map(move |n| unit.repeat(n))
}

/// Hostile bodies, as text (what the dashboard reads back from the database).
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        // Deep nesting: XML tags, JSON arrays and objects (balanced or not).
        (0..20_000usize).prop_map(|n| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n))),
        (0..20_000usize).prop_map(|n| "<a>".repeat(n)),
        (0..200usize, 0..20_000usize).prop_map(|(depth, n)| format!(
            "{}{}1{}",
            "[".repeat(depth),
            "1,".repeat(n),
            "]".repeat(depth)
        )),
        (0..130usize, 0..5_000usize).prop_map(|(depth, n)| format!(
            "{}{}{}",
            "{\"a\":".repeat(depth),
            "[[],{},[1]],".repeat(n) + "0",
            "}".repeat(depth)
        )),
        // One enormous line, and very many tiny elements.
        repeated("x", 300_000),
        repeated("<a/>", 100_000),
        repeated("[1],", 100_000).prop_map(|s| format!("[{s}1]")),
        repeated("<a>x<!>", 40_000).prop_map(|s| format!("<xml>{s}</xml>")),
        // Masked fields that never close.
        repeated("<sign>", 50_000),
        repeated("<openid><![CDATA[", 20_000),
        repeated("\"openid\":\"", 30_000),
        repeated("<sign>x</sign", 20_000),
        // Invalid UTF-8 (decoded as the database stores it) and control characters.
        prop::collection::vec(any::<u8>(), 0..100_000)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        repeated("\0\u{1}\u{85}\u{202e}", 50_000),
        // Mixtures of everything.
        prop::collection::vec(prop::sample::select(PIECES), 0..20_000).prop_map(|p| p.concat()),
        prop::collection::vec(prop::sample::select(PIECES), 0..200).prop_map(|p| p.concat()),
    ]
}

/// Flat messages the strict parser accepts (so the debugger does all its work): many
/// fields, empty and whitespace values, long values.
fn parseable() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        3 => Just(String::new()),
        3 => Just(" ".to_owned()),
        3 => "[ a-z0-9]{0,40}",
        1 => (0..10_000usize).prop_map(|n| "v".repeat(n)),
    ];
    prop::collection::btree_map("[a-z][a-z0-9_]{0,30}", value, 0..300).prop_map(|fields| {
        let mut body = String::from("<xml>");
        for (name, value) in fields {
            body.push_str(&format!("<{name}>{value}</{name}>"));
        }
        body + "<sign>00000000000000000000000000000000</sign></xml>"
    })
}

fn check_pretty(body: &str) -> Result<(), TestCaseError> {
    let p = bodies::pretty(body);
    prop_assert!(
        p.text.len() <= PRETTY_PER_BYTE * body.len() + 64,
        "{} bytes laid out from {}",
        p.text.len(),
        body.len()
    );
    prop_assert!(p.text.len() <= MAX_PRETTY_BYTES + 4 * SHOW_BYTES + 64);
    prop_assert!(p.shown <= p.total && p.total == body.len());
    prop_assert!(p.shown == body.len() || p.shown <= SHOW_BYTES);
    let hidden = ['\0', '\u{202e}'];
    prop_assert!(
        !p.text.contains(hidden),
        "a control character is not shown visibly"
    );
    Ok(())
}

fn check_sanitize(body: &str) -> Result<(), TestCaseError> {
    let clean = bodies::sanitize(body);
    prop_assert!(
        clean.len() <= body.len() + body.len() / 2 + 16,
        "{} bytes masked from {}",
        clean.len(),
        body.len()
    );
    let p = bodies::pretty(&clean);
    prop_assert!(p.text.len() <= PRETTY_PER_BYTE * clean.len() + 64);
    prop_assert!(bodies::clip(body).len() <= bodies::FIELD_BYTES + 16);
    Ok(())
}

/// Everything the debugger says, as the command line prints it and as the page gets it.
fn check_explain(body: &[u8]) -> Result<(), TestCaseError> {
    let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
    let e = wxpay::explain(body, &key, None);
    let printed = e.to_string().len();
    let sent = serde_json::to_string(&e).unwrap().len();
    let bound = 8 * body.len().min(MAX_DEBUG_BODY) + 8 * 1024;
    prop_assert!(
        printed <= bound,
        "{printed} bytes printed from {}",
        body.len()
    );
    prop_assert!(sent <= bound, "{sent} bytes sent from {}", body.len());
    if body.len() > MAX_DEBUG_BODY {
        prop_assert!(
            e.diagnosis.starts_with("too large to debug"),
            "{}",
            e.diagnosis
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn laying_out_and_masking_a_hostile_body_is_bounded_by_its_size(body in hostile()) {
        check_pretty(&body)?;
        check_sanitize(&body)?;
    }

    #[test]
    fn explaining_a_hostile_body_is_bounded_by_its_size(body in hostile()) {
        check_explain(body.as_bytes())?;
    }

    #[test]
    fn explaining_a_message_with_many_fields_is_bounded_by_its_size(body in parseable()) {
        check_explain(body.as_bytes())?;
        check_pretty(&body)?;
        check_sanitize(&body)?;
    }

    #[test]
    fn raw_bytes_are_explained_within_bounds(body in prop::collection::vec(any::<u8>(), 0..50_000)) {
        check_explain(&body)?;
    }
}

/// The worst shapes at 1 MiB come back, bounded (no timing assertion: asserting on the
/// output is enough, a quadratic layout would not return on this machine).
#[test]
fn one_mebibyte_of_each_worst_shape_returns_bounded() {
    const MIB: usize = 1024 * 1024;
    let fields: String = (0..MIB / 16)
        .map(|i| format!("<f{i:x}> </f{i:x}>"))
        .collect();
    let shapes = [
        format!("{}{}", "<a>".repeat(MIB / 7), "</a>".repeat(MIB / 7)),
        format!(
            "{}{}1{}",
            "[".repeat(127),
            "1,".repeat(MIB / 2),
            "]".repeat(127)
        ),
        "<sign>".repeat(MIB / 6),
        "x".repeat(MIB),
        "<a/>".repeat(MIB / 4),
        format!("<xml>{fields}</xml>"),
        String::from_utf8_lossy(&(0..MIB).map(|i| (i * 31 % 256) as u8).collect::<Vec<_>>())
            .into_owned(),
    ];
    for body in &shapes {
        check_pretty(body).unwrap();
        check_sanitize(body).unwrap();
        check_explain(body.as_bytes()).unwrap();
    }
}
