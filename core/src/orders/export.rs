//! The managers' CSV export of the orders a filter matches, and its audit record.

use paydesk_types::format_shanghai;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use wxpay::money::fen_to_yuan;

use super::filter::OrderFilter;
use super::list::{list_by, Walk};
use crate::audit::{self, action, Actor};
use crate::{CoreError, Db};

/// The CSV export's header: Chinese and English names, as managers read both.
pub const CSV_HEADER: [&str; 9] = [
    "商户订单号 out_trade_no",
    "微信支付单号 transaction_id",
    "用户 openid",
    "商品 description",
    "金额(元) amount_yuan",
    "状态 status",
    "下单时间 created_at",
    "支付时间 paid_at",
    "付款银行 bank_type",
];

/// How many orders the export reads per query.
const EXPORT_BATCH: i64 = 500;

/// Writes the orders matching `filter` as CSV to `out`, newest first, and returns how many
/// rows it wrote. Reads them in keyset pages of [`EXPORT_BATCH`], so memory stays flat at a
/// million orders and a slow client only slows the export down.
///
/// UTF-8 with a byte-order mark (Excel on a Chinese Windows opens a BOM-less file as GBK),
/// CRLF line ends (RFC 4180), amounts as yuan text (`12.34`), times in Asia/Shanghai
/// (`YYYY-MM-DD HH:MM:SS`). Text that a spreadsheet would run as a formula (any of
/// [`FORMULA_LEADS`] first) is prefixed with `'`.
pub async fn export_csv<W>(db: &Db, filter: &OrderFilter, out: &mut W) -> Result<u64, CoreError>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = String::from("\u{feff}");
    push_csv_row(&mut buf, CSV_HEADER.iter().map(|s| s.to_string()));
    write(out, &mut buf).await?;
    let mut after = None;
    let mut rows = 0u64;
    // The same way in for every batch: it depends on the filter and the batch size only.
    let walk = Walk::choose(db, filter, None, EXPORT_BATCH).await?;
    loop {
        let page = list_by(db, filter, after.as_ref(), EXPORT_BATCH, walk).await?;
        for o in &page.orders {
            push_csv_row(
                &mut buf,
                [
                    o.out_trade_no.clone(),
                    o.transaction_id.clone().unwrap_or_default(),
                    o.openid.clone(),
                    o.description.clone(),
                    fen_to_yuan(o.total_fee),
                    o.status.as_str().to_owned(),
                    format_shanghai(o.created_at),
                    o.paid_at.map(format_shanghai).unwrap_or_default(),
                    o.bank_type.clone().unwrap_or_default(),
                ]
                .into_iter(),
            );
            rows += 1;
        }
        write(out, &mut buf).await?;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    out.flush()
        .await
        .map_err(|e| CoreError::Internal(e.into()))?;
    Ok(rows)
}

async fn write<W: AsyncWrite + Unpin + ?Sized>(
    out: &mut W,
    buf: &mut String,
) -> Result<(), CoreError> {
    out.write_all(buf.as_bytes())
        .await
        .map_err(|e| CoreError::Internal(anyhow::Error::new(e).context("writing the export")))?;
    buf.clear();
    Ok(())
}

/// The first characters that make a spreadsheet read a cell as a formula (OWASP "CSV
/// Injection"): `=`, `+`, `-`, `@`, and tab and carriage return, which Excel and LibreOffice
/// skip before looking for the others.
pub const FORMULA_LEADS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One CSV row (RFC 4180 quoting, formulas defused; see [`export_csv`]).
pub(crate) fn push_csv_row(buf: &mut String, fields: impl Iterator<Item = String>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            buf.push(',');
        }
        let field = if field.starts_with(FORMULA_LEADS) {
            format!("'{field}")
        } else {
            field
        };
        if field.contains([',', '"', '\n', '\r']) {
            buf.push('"');
            buf.push_str(&field.replace('"', "\"\""));
            buf.push('"');
        } else {
            buf.push_str(&field);
        }
    }
    buf.push_str("\r\n");
}

/// Records an export in the audit log (action `order.export`), with the filter in the
/// detail. The export route calls it before it starts streaming.
pub async fn record_export(db: &Db, actor: &Actor, filter: &OrderFilter) -> Result<(), CoreError> {
    let detail = describe_filter(filter);
    audit::record(
        db.writer(),
        audit::Entry {
            actor,
            action: action::ORDER_EXPORT,
            target: None,
            detail: Some(&detail),
        },
    )
    .await
}

/// The filter in words, for the audit log.
fn describe_filter(f: &OrderFilter) -> String {
    let mut parts = Vec::new();
    if !f.statuses.is_empty() {
        let names: Vec<&str> = f.distinct_statuses().iter().map(|s| s.as_str()).collect();
        parts.push(format!("status {}", names.join("|")));
    }
    if let Some(from) = f.created_from {
        parts.push(format!("from {}", format_shanghai(from)));
    }
    if let Some(to) = f.created_to {
        parts.push(format!("before {}", format_shanghai(to)));
    }
    if let Some(min) = f.min_fee {
        parts.push(format!("amount ≥ {}", fen_to_yuan(min)));
    }
    if let Some(max) = f.max_fee {
        parts.push(format!("amount ≤ {}", fen_to_yuan(max)));
    }
    if let Some(openid) = &f.openid {
        parts.push(format!("openid {openid}"));
    }
    if parts.is_empty() {
        "all orders".into()
    } else {
        format!("orders: {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let mut buf = String::new();
        push_csv_row(
            &mut buf,
            ["a,b", "say \"hi\"", "=1+1", "plain"]
                .into_iter()
                .map(String::from),
        );
        assert_eq!(buf, "\"a,b\",\"say \"\"hi\"\"\",'=1+1,plain\r\n");
    }

    #[test]
    fn every_formula_lead_character_is_defused() {
        for lead in ['=', '+', '-', '@', '\t', '\r'] {
            let mut buf = String::new();
            push_csv_row(&mut buf, [format!("{lead}cmd|' /C calc'!A0")].into_iter());
            let cell = buf.trim_end_matches("\r\n").trim_start_matches('"');
            assert!(cell.starts_with('\''), "{lead:?}: {buf:?}");
        }
    }
}
