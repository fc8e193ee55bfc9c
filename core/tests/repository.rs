//! Repository tests: every test runs on SQLite and, when configured, PostgreSQL.

use paydesk_core::audit::{self, action, Actor};
use paydesk_core::auth::{self, LoginError, USER_LIMIT};
use paydesk_core::error::{ConflictReason, ForbiddenReason};
use paydesk_core::sessions::DbSessionStore;
use paydesk_core::testing::{self, assert_invalid, databases};
use paydesk_core::users::{self, FirstAdmin};
use paydesk_core::{CoreError, Role, Username};
use secrecy::{ExposeSecret, SecretString};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{ExpiredDeletion, SessionStore};

fn name(s: &str) -> Username {
    Username::parse(s).unwrap()
}

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

#[tokio::test]
async fn first_start_creates_one_admin_with_a_generated_password_that_signs_in() {
    for t in databases().await {
        // Arrange / Act
        let first = users::ensure_first_admin(&t.db, None).await.unwrap();
        let again = users::ensure_first_admin(&t.db, None).await.unwrap();

        // Assert
        let FirstAdmin::Generated(password) = first else {
            panic!("{}: expected a generated password", t.label)
        };
        assert!(matches!(again, FirstAdmin::AlreadySetUp), "{}", t.label);
        assert_eq!(password.expose_secret().len(), 20);
        let user = auth::authenticate(&t.db, "admin", password, Some("127.0.0.1".into()))
            .await
            .unwrap();
        assert_eq!(user.role, Role::Admin, "{}", t.label);
        assert!(user.last_login_at.is_some());
        assert_eq!(users::count(&t.db).await.unwrap(), 1);
    }
}

#[tokio::test]
async fn unknown_user_wrong_password_and_disabled_account_get_the_same_error() {
    for t in databases().await {
        let admin = testing::user(&t.db, "boss", "boss password 1", Role::Admin).await;
        let clerk = testing::user(&t.db, "clerk", "clerk password 1", Role::Staff).await;
        users::set_disabled(&t.db, &admin.actor(None), clerk.id, true)
            .await
            .unwrap();

        let unknown = auth::authenticate(&t.db, "nobody", pw("whatever pw"), None)
            .await
            .unwrap_err();
        let wrong = auth::authenticate(&t.db, "boss", pw("not the password"), None)
            .await
            .unwrap_err();
        let disabled = auth::authenticate(&t.db, "clerk", pw("clerk password 1"), None)
            .await
            .unwrap_err();

        for err in [unknown, wrong, disabled] {
            assert!(
                matches!(err, LoginError::InvalidCredentials),
                "{}: {err:?}",
                t.label
            );
        }
        let failures = audit::list(&t.db, None, Some(action::LOGIN_FAILURE), 10)
            .await
            .unwrap();
        let reasons: Vec<_> = failures.iter().filter_map(|f| f.detail.clone()).collect();
        assert!(
            reasons.contains(&"unknown user".to_string()),
            "{}: {reasons:?}",
            t.label
        );
        assert!(reasons.contains(&"wrong password".to_string()));
        assert!(reasons.contains(&"account disabled".to_string()));
    }
}

#[tokio::test]
async fn five_failures_throttle_the_username_even_with_the_right_password() {
    for t in databases().await {
        testing::user(&t.db, "alice", "alice password 1", Role::Staff).await;
        for _ in 0..USER_LIMIT {
            let err =
                auth::authenticate(&t.db, "Alice", pw("bad password"), Some("10.0.0.1".into()))
                    .await;
            assert!(
                matches!(err, Err(LoginError::InvalidCredentials)),
                "{}",
                t.label
            );
        }
        let err = auth::authenticate(
            &t.db,
            "alice",
            pw("alice password 1"),
            Some("10.0.0.2".into()),
        )
        .await
        .unwrap_err();
        match err {
            LoginError::Throttled { minutes } => assert!((1..=15).contains(&minutes), "{minutes}"),
            other => panic!("{}: expected throttling, got {other:?}", t.label),
        }
        // Another username from the same address is not affected by alice's lock.
        testing::user(&t.db, "bob", "bob password 12", Role::Staff).await;
        auth::authenticate(&t.db, "bob", pw("bob password 12"), Some("10.0.0.1".into()))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn usernames_are_unique_case_insensitively() {
    for t in databases().await {
        testing::user(&t.db, "Carol", "carol password", Role::Staff).await;
        let err = users::create(
            &t.db,
            &Actor::cli(),
            &name("carol"),
            pw("carol password"),
            Role::Admin,
        )
        .await
        .unwrap_err();
        assert_invalid(&err, "username", t.label);
    }
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_demoted_or_disabled_and_nobody_edits_themselves() {
    for t in databases().await {
        let a = testing::user(&t.db, "root1", "root password 1", Role::Admin).await;
        let m = testing::user(&t.db, "mgr", "mgr password 12", Role::Manager).await;

        assert!(matches!(
            users::set_role(&t.db, &Actor::cli(), a.id, Role::Staff).await,
            Err(CoreError::Conflict(ConflictReason::LastActiveAdmin))
        ));
        assert!(matches!(
            users::set_disabled(&t.db, &Actor::cli(), a.id, true).await,
            Err(CoreError::Conflict(ConflictReason::LastActiveAdmin))
        ));
        assert!(matches!(
            users::set_role(&t.db, &a.actor(None), a.id, Role::Staff).await,
            Err(CoreError::Forbidden(ForbiddenReason::OwnAccount))
        ));

        let promoted = users::set_role(&t.db, &a.actor(None), m.id, Role::Admin)
            .await
            .unwrap();
        assert_eq!(promoted.role, Role::Admin);
        // Now there are two admins: the first may be demoted by the second.
        let demoted = users::set_role(&t.db, &promoted.actor(None), a.id, Role::Support)
            .await
            .unwrap();
        assert_eq!(demoted.role, Role::Support, "{}", t.label);

        let log = audit::list(&t.db, None, Some(action::USER_ROLE), 10)
            .await
            .unwrap();
        assert_eq!(log.len(), 2, "{}", t.label);
        assert_eq!(log[0].detail.as_deref(), Some("admin -> support"));
        assert_eq!(log[0].actor, "mgr");
    }
}

#[tokio::test]
async fn changing_ones_own_password_needs_the_current_one() {
    for t in databases().await {
        let u = testing::user(&t.db, "dave", "dave password 1", Role::Support).await;
        let err = users::change_own_password(
            &t.db,
            &u,
            None,
            pw("wrong current"),
            pw("new password 123"),
        )
        .await
        .unwrap_err();
        assert_invalid(&err, "current_password", t.label);
        let err = users::change_own_password(&t.db, &u, None, pw("dave password 1"), pw("short"))
            .await
            .unwrap_err();
        assert_invalid(&err, "password", t.label);
        users::change_own_password(
            &t.db,
            &u,
            None,
            pw("dave password 1"),
            pw("new password 123"),
        )
        .await
        .unwrap();
        assert!(
            auth::authenticate(&t.db, "dave", pw("dave password 1"), None)
                .await
                .is_err()
        );
        auth::authenticate(&t.db, "dave", pw("new password 123"), None)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn sessions_round_trip_expire_and_never_take_over_an_existing_id() {
    for t in databases().await {
        let store = DbSessionStore::new(t.db.clone());
        let mut record = Record {
            id: Id::default(),
            data: [("user_id".to_string(), serde_json::json!(7))]
                .into_iter()
                .collect(),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        store.create(&mut record).await.unwrap();
        let loaded = store
            .load(&record.id)
            .await
            .unwrap()
            .expect("stored session");
        assert_eq!(loaded.data, record.data, "{}", t.label);

        // A second create with the same id must not overwrite the first session.
        let mut clash = Record {
            id: record.id,
            data: Default::default(),
            expiry_date: record.expiry_date,
        };
        store.create(&mut clash).await.unwrap();
        assert_ne!(clash.id, record.id);
        assert_eq!(
            store.load(&record.id).await.unwrap().unwrap().data,
            record.data
        );

        let mut old = Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: time::OffsetDateTime::now_utc() - time::Duration::minutes(1),
        };
        store.create(&mut old).await.unwrap();
        assert!(
            store.load(&old.id).await.unwrap().is_none(),
            "expired sessions do not load"
        );
        store.delete_expired().await.unwrap();
        store.delete(&record.id).await.unwrap();
        assert!(store.load(&record.id).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn sqlite_commits_are_durable_before_anything_is_answered() {
    for t in databases().await {
        if t.db.backend() != paydesk_core::Backend::Sqlite {
            continue;
        }
        // `synchronous = full` (2) in WAL mode: every commit syncs the log, so what was
        // answered SUCCESS survives a power cut. Checked on the writer and a reader (the
        // pragma is per connection).
        for pool in [t.db.writer(), t.db.reader()] {
            let level: i64 = sqlx::query_scalar("pragma synchronous")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(level, 2, "{}", t.label);
        }
    }
}
