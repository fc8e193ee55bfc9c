//! `testing::postgres` drops the databases earlier test runs left behind (its own process
//! in this file alone, since the sweep runs once per process, before its first database).

use paydesk_core::testing::{self, POSTGRES_ENV};
use sqlx::{Connection as _, Executor as _};

#[tokio::test]
async fn a_test_run_drops_the_databases_old_runs_left_and_keeps_recent_ones() {
    let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
        eprintln!("skipped: {POSTGRES_ENV} is not set");
        return;
    };
    // Arrange: one database from a run long ago, one from a run a minute ago
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&admin_url).await.unwrap();
    let now = paydesk_core::now_ms();
    let old = format!("t_1_{}_0", now - 7 * 3600 * 1000);
    let recent = format!("t_1_{}_0", now - 60 * 1000);
    for name in [&old, &recent] {
        admin
            .execute(format!(r#"create database "{name}""#).as_str())
            .await
            .unwrap();
    }

    // Act
    let fresh = testing::postgres()
        .await
        .unwrap()
        .expect("a PostgreSQL database");

    // Assert
    let left: Vec<String> =
        sqlx::query_scalar(r"select datname::text from pg_database where datname like 't\_1\_%'")
            .fetch_all(&mut admin)
            .await
            .unwrap();
    assert!(
        !left.contains(&old),
        "the old run's database is still there: {left:?}"
    );
    assert!(
        left.contains(&recent),
        "a recent run's database was dropped: {left:?}"
    );
    assert!(fresh.db.migrate().await.is_ok(), "the new database works");
    admin
        .execute(format!(r#"drop database if exists "{recent}""#).as_str())
        .await
        .unwrap();
}
