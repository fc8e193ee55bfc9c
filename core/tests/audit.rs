//! Repository tests for the audit page's query (paydesk_core::audit::search), on SQLite and
//! (when configured) PostgreSQL: newest first, keyset pages that cover every match exactly
//! once (entries at the same millisecond included), and the action, actor and time filters.

use paydesk_core::audit::{search, AuditFilter};
use paydesk_core::testing::databases;
use paydesk_core::Db;

const T0: i64 = 1_795_336_200_000;

async fn entry(db: &Db, at: i64, actor: &str, action: &str, target: &str) {
    sqlx::query(
        r#"insert into audit_log (created_at, actor, action, target, detail, ip)
           values ($1, $2, $3, $4, 'detail', '127.0.0.1')"#,
    )
    .bind(at)
    .bind(actor)
    .bind(action)
    .bind(target)
    .execute(db.writer())
    .await
    .unwrap();
}

/// Every page of `filter`, two at a time: the targets in order.
async fn all_pages(db: &Db, filter: &AuditFilter) -> Vec<String> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = search(db, filter, after, 2).await.unwrap();
        assert!(page.entries.len() <= 2);
        out.extend(page.entries.iter().map(|e| e.target.clone().unwrap()));
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

#[tokio::test]
async fn audit_pages_are_newest_first_and_filter_by_action_actor_and_time() {
    for t in databases().await {
        let db = &t.db;
        // Three entries share one millisecond, so the id decides among them.
        entry(db, T0, "admin", "login.success", "e1").await;
        entry(db, T0 + 1, "mgr", "refund.approve", "e2").await;
        entry(db, T0 + 1, "admin", "user.create", "e3").await;
        entry(db, T0 + 1, "mgr", "refund.reject", "e4").await;
        entry(db, T0 + 2, "admin", "login.success", "e5").await;
        entry(db, T0 + 3, "system", "user.create", "e6").await;

        let everything = all_pages(db, &AuditFilter::default()).await;
        assert_eq!(
            everything,
            ["e6", "e5", "e4", "e3", "e2", "e1"],
            "{}",
            t.label
        );

        let logins = AuditFilter {
            action: Some("login.success".into()),
            ..Default::default()
        };
        assert_eq!(all_pages(db, &logins).await, ["e5", "e1"], "{}", t.label);

        let mgr = AuditFilter {
            actor: Some("mgr".into()),
            ..Default::default()
        };
        assert_eq!(all_pages(db, &mgr).await, ["e4", "e2"], "{}", t.label);

        let window = AuditFilter {
            from: Some(T0 + 1),
            to: Some(T0 + 3),
            ..Default::default()
        };
        assert_eq!(
            all_pages(db, &window).await,
            ["e5", "e4", "e3", "e2"],
            "{}: from inclusive, to exclusive",
            t.label
        );

        let admin_creates = AuditFilter {
            action: Some("user.create".into()),
            actor: Some("admin".into()),
            ..Default::default()
        };
        assert_eq!(all_pages(db, &admin_creates).await, ["e3"], "{}", t.label);

        let first = search(db, &AuditFilter::default(), None, 2).await.unwrap();
        let e = &first.entries[0];
        assert_eq!(
            (e.actor.as_str(), e.action.as_str(), e.ip.as_deref()),
            ("system", "user.create", Some("127.0.0.1"))
        );
    }
}
