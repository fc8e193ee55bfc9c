//! Typed reading of parsed parameters. Values stay strings until after verification (§4.2
//! rule 8); these helpers convert them for the typed views.

use time::OffsetDateTime;

use crate::{wxtime, Error, Params};

/// A field's value, `None` when absent or empty.
pub(crate) fn opt<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// An owned optional field.
pub(crate) fn opt_string(p: &Params, name: &str) -> Option<String> {
    opt(p, name).map(str::to_owned)
}

/// A required, non-empty field.
pub(crate) fn req<'a>(p: &'a Params, name: &str) -> Result<&'a str, Error> {
    opt(p, name).ok_or_else(|| Error::MissingField {
        field: name.to_owned(),
    })
}

/// A required field, owned.
pub(crate) fn req_string(p: &Params, name: &str) -> Result<String, Error> {
    req(p, name).map(str::to_owned)
}

/// Strict non-negative integer (digits only; amounts are integer fen, §9).
pub(crate) fn parse_int(name: &str, v: &str) -> Result<i64, Error> {
    if v.is_empty() || v.len() > 18 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidField {
            field: name.to_owned(),
            value: v.to_owned(),
            reason: "expected a non-negative integer",
        });
    }
    v.parse().map_err(|_| Error::InvalidField {
        field: name.to_owned(),
        value: v.to_owned(),
        reason: "expected a non-negative integer",
    })
}

pub(crate) fn req_int(p: &Params, name: &str) -> Result<i64, Error> {
    parse_int(name, req(p, name)?)
}

pub(crate) fn opt_int(p: &Params, name: &str) -> Result<Option<i64>, Error> {
    opt(p, name).map(|v| parse_int(name, v)).transpose()
}

/// Optional `yyyyMMddHHmmss` (UTC+8) field.
pub(crate) fn opt_compact_time(p: &Params, name: &str) -> Result<Option<OffsetDateTime>, Error> {
    opt(p, name)
        .map(|v| {
            wxtime::parse_compact(v).map_err(|_| Error::InvalidField {
                field: name.to_owned(),
                value: v.to_owned(),
                reason: "expected yyyyMMddHHmmss",
            })
        })
        .transpose()
}

/// Optional `yyyy-MM-dd HH:mm:ss` (UTC+8) field.
pub(crate) fn opt_display_time(p: &Params, name: &str) -> Result<Option<OffsetDateTime>, Error> {
    opt(p, name)
        .map(|v| {
            wxtime::parse_display(v).map_err(|_| Error::InvalidField {
                field: name.to_owned(),
                value: v.to_owned(),
                reason: "expected yyyy-MM-dd HH:mm:ss",
            })
        })
        .transpose()
}
