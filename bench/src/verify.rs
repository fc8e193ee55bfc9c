//! The checks afterwards, in the database itself: every order of a scenario is `PAID` with
//! exactly one `applied` notification, and every other copy sent is a `duplicate` row.

use anyhow::ensure;
use paydesk_core::Db;

/// Checks the orders whose `out_trade_no` starts with `prefix`: `orders` were created,
/// each was notified `copies` times. With `forgeries`, refused rows that verified nothing
/// (no order matched: forged notifications naming these orders, as the abuse scenario
/// sends) are left out of the verdict counts.
pub async fn exactly_once(
    db: &Db,
    prefix: &str,
    orders: usize,
    copies: usize,
    forgeries: bool,
) -> anyhow::Result<()> {
    let like = format!("{prefix}%");
    let (total, paid): (i64, i64) = sqlx::query_as(
        r#"select count(*), coalesce(sum(case when status = 'PAID' then 1 else 0 end), 0)
           from orders where out_trade_no like $1"#,
    )
    .bind(&like)
    .fetch_one(db.reader())
    .await?;
    ensure!(
        total as usize == orders,
        "{prefix}: {total} orders, expected {orders}"
    );
    ensure!(
        paid == total,
        "{prefix}: only {paid} of {total} orders are PAID"
    );

    let verdicts: Vec<(String, i64)> = sqlx::query_as(&format!(
        "select verdict, count(*) from notifications where out_trade_no like $1{} \
             group by verdict order by verdict",
        if forgeries {
            " and not (reply = 'FAIL' and order_id is null)"
        } else {
            ""
        }
    ))
    .bind(&like)
    .fetch_all(db.reader())
    .await?;
    let count = |v: &str| {
        verdicts
            .iter()
            .find(|(name, _)| name == v)
            .map_or(0, |(_, n)| *n as usize)
    };
    ensure!(
        verdicts
            .iter()
            .all(|(v, _)| v == "applied" || v == "duplicate"),
        "{prefix}: unexpected verdicts {verdicts:?}"
    );
    ensure!(
        count("applied") == orders,
        "{prefix}: {} applied rows for {orders} orders ({verdicts:?})",
        count("applied")
    );
    ensure!(
        count("duplicate") == orders * (copies - 1),
        "{prefix}: {} duplicate rows, expected {} ({verdicts:?})",
        count("duplicate"),
        orders * (copies - 1)
    );

    let unmatched = without_one_applied(db, &like, false).await?;
    ensure!(
        unmatched == 0,
        "{prefix}: {unmatched} orders without exactly one matching applied notification"
    );
    Ok(())
}

/// How many orders matching `like` (only the `PAID` ones with `paid_only`) lack exactly one
/// `applied` notification pointing at them with the order's `transaction_id`.
pub async fn without_one_applied(db: &Db, like: &str, paid_only: bool) -> anyhow::Result<i64> {
    let (unmatched,): (i64,) = sqlx::query_as(&format!(
        r#"select count(*) from orders o
           where o.out_trade_no like $1{}
             and (select count(*) from notifications n
                  where n.order_id = o.id and n.verdict = 'applied'
                    and n.transaction_id = o.transaction_id) <> 1"#,
        if paid_only {
            " and o.status = 'PAID'"
        } else {
            ""
        }
    ))
    .bind(like)
    .fetch_one(db.reader())
    .await?;
    Ok(unmatched)
}
