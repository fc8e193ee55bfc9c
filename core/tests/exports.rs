//! The orders CSV export never hands a spreadsheet a formula (issue 15 "exports"), on SQLite
//! and (when configured) PostgreSQL.

use paydesk_core::now_ms;
use paydesk_core::orders::export::export_csv;
use paydesk_core::orders::filter::OrderFilter;
use paydesk_core::testing::databases;

/// OWASP's formula lead characters, written out here rather than taken from the code under
/// test, so that dropping one there fails this test.
const FORMULA_LEADS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

#[tokio::test]
async fn csv_export_neutralises_every_formula_lead_character() {
    for t in databases().await {
        // Arrange: one order per lead character, in the description and the bank type.
        let now = now_ms();
        for (i, lead) in FORMULA_LEADS.iter().enumerate() {
            let i = i as i64;
            sqlx::query(
                r#"insert into orders (out_trade_no, openid, description, total_fee, status,
                       sign_type, transaction_id, paid_at, bank_type, created_at, updated_at)
                   values ($1, 'oFormulaTest', $2, 100, 'PAID', 'MD5', $3, $4, $5, $4, $4)"#,
            )
            .bind(format!("F{i:04}"))
            .bind(format!("{lead}HYPERLINK(\"https://evil.example\")"))
            .bind(format!("42000000{i:020}"))
            .bind(now - i)
            .bind(format!("{lead}1+1"))
            .execute(t.db.writer())
            .await
            .unwrap();
        }

        // Act
        let mut out: Vec<u8> = Vec::new();
        let rows = export_csv(&t.db, &OrderFilter::default(), &mut out)
            .await
            .unwrap();

        // Assert: every cell that began with a lead character now begins with `'` (inside
        // the quotes when the cell needed quoting).
        assert_eq!(rows, FORMULA_LEADS.len() as u64, "{}", t.label);
        let text = String::from_utf8(out).unwrap();
        for (i, lead) in FORMULA_LEADS.iter().enumerate() {
            let start = text
                .find(&format!("F{i:04},"))
                .unwrap_or_else(|| panic!("{}: F{i:04} missing", t.label));
            let line = &text[start..];
            for cell in [
                format!("{lead}HYPERLINK(\"\"https://evil.example\"\")"),
                format!("{lead}1+1"),
            ] {
                let defused_plain = format!(",'{cell},");
                let defused_quoted = format!(",\"'{cell}\"");
                let defused_last = format!(",'{cell}\r\n");
                assert!(
                    line.contains(&defused_quoted)
                        || line.contains(&defused_plain)
                        || line.contains(&defused_last),
                    "{}: {lead:?} not defused in {:?}",
                    t.label,
                    &line[..line.len().min(300)]
                );
                let bare = format!(",{cell}");
                let bare_quoted = format!(",\"{cell}");
                assert!(
                    !line[..line.find("\r\nF").unwrap_or(line.len())].contains(&bare)
                        && !line[..line.find("\r\nF").unwrap_or(line.len())].contains(&bare_quoted),
                    "{}: {lead:?} left bare",
                    t.label
                );
            }
        }
    }
}
