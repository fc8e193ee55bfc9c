//! Orders and notifications made before the server starts (`--prepare DIR`), and read back
//! by the run that follows (`--prepared DIR`) or by `wrk` (`scripts/wrk-notify.lua`).
//!
//! The production-shaped scenario of docs/benchmarks.md: the database already holds a
//! million orders when paydesk starts, so the orders to pay are created by another process
//! before it starts too, and the server's own caches hold none of them.
//!
//! A scenario's files in DIR: `<tag>.prefix` (the `out_trade_no` prefix its checks select
//! by) and `<tag>.bodies` (one signed notification per line, in order; the XML has no line
//! breaks).

use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::path::Path;

use anyhow::{ensure, Context as _};
use bytes::Bytes;
use paydesk_core::Db;

/// Writes one scenario's prefix and bodies.
pub fn write(dir: &Path, tag: char, prefix: &str, bodies: &[Bytes]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join(format!("{tag}.prefix")), prefix)?;
    let path = dir.join(format!("{tag}.bodies"));
    let mut out = BufWriter::new(
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
    );
    for body in bodies {
        ensure!(
            !body.contains(&b'\n'),
            "a notification body holds a line break; it cannot go one per line"
        );
        out.write_all(body)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Reads one scenario back: its prefix and bodies.
pub fn read(dir: &Path, tag: char) -> anyhow::Result<(String, Vec<Bytes>)> {
    let prefix_path = dir.join(format!("{tag}.prefix"));
    let prefix = std::fs::read_to_string(&prefix_path)
        .with_context(|| format!("reading {} (run --prepare first)", prefix_path.display()))?;
    let path = dir.join(format!("{tag}.bodies"));
    let file = std::fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
    let bodies = BufReader::new(file)
        .lines()
        .map(|line| line.map(Bytes::from))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((prefix.trim().to_owned(), bodies))
}

/// The check after `wrk`: it stops after `answered` SUCCESS replies, with up to
/// `connections` more requests in flight that the server may or may not have applied. So
/// between `answered` and `answered + connections` of the scenario's orders are `PAID`,
/// each with exactly one `applied` notification carrying its `transaction_id`; every other
/// order is still `NOTPAY` with no notification; no other verdict exists.
pub async fn exactly_once_open_ended(
    db: &Db,
    prefix: &str,
    answered: usize,
    connections: usize,
) -> anyhow::Result<usize> {
    let like = format!("{prefix}%");
    let (paid, other): (i64, i64) = sqlx::query_as(
        r#"select coalesce(sum(case when status = 'PAID' then 1 else 0 end), 0),
                  coalesce(sum(case when status not in ('PAID', 'NOTPAY') then 1 else 0 end), 0)
           from orders where out_trade_no like $1"#,
    )
    .bind(&like)
    .fetch_one(db.reader())
    .await?;
    let paid = paid as usize;
    ensure!(
        other == 0,
        "{prefix}: {other} orders neither PAID nor NOTPAY"
    );
    ensure!(
        (answered..=answered + connections).contains(&paid),
        "{prefix}: {paid} orders PAID after {answered} SUCCESS replies on {connections} connections"
    );
    let verdicts: Vec<(String, i64)> = sqlx::query_as(
        "select verdict, count(*) from notifications where out_trade_no like $1 \
         group by verdict order by verdict",
    )
    .bind(&like)
    .fetch_all(db.reader())
    .await?;
    ensure!(
        verdicts.len() == 1 && verdicts[0].0 == "applied" && verdicts[0].1 as usize == paid,
        "{prefix}: verdicts {verdicts:?} for {paid} PAID orders (expected only `applied`, one each)"
    );
    let unmatched = crate::verify::without_one_applied(db, &like, true).await?;
    ensure!(
        unmatched == 0,
        "{prefix}: {unmatched} PAID orders without exactly one matching applied notification"
    );
    Ok(paid)
}
