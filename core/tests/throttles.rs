//! Throttles that hold (issue 15): sign-in and password-change attempts are counted before
//! the password hash runs, hashing is bounded, and the last active admin survives two admins
//! acting at once. Every test runs on SQLite and, when configured, PostgreSQL.

use paydesk_core::audit::{self, action, Actor};
use paydesk_core::auth::{self, LoginError, USER_LIMIT};
use paydesk_core::error::ConflictReason;
use paydesk_core::testing::{assert_invalid, databases, user};
use paydesk_core::users;
use paydesk_core::{CoreError, Db, Role};
use secrecy::SecretString;

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

async fn audited(db: &Db, act: &str) -> usize {
    audit::list(db, None, Some(act), 1000).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_reach_the_hash_at_most_the_limit_times() {
    const ATTEMPTS: usize = 16;
    for t in databases().await {
        // Arrange
        user(&t.db, "alice", "alice password 1", Role::Staff).await;

        // Act: every spelling the lookup resolves to alice, all at once.
        let spellings = ["alice", "Alice", " ALICE", "alice "];
        let tasks: Vec<_> = (0..ATTEMPTS)
            .map(|i| {
                let db = t.db.clone();
                let input = spellings[i % spellings.len()];
                tokio::spawn(async move {
                    auth::authenticate(&db, input, pw("wrong password"), None).await
                })
            })
            .collect();
        let mut refused = 0;
        let mut throttled = 0;
        for task in tasks {
            match task.await.unwrap() {
                Err(LoginError::InvalidCredentials) => refused += 1,
                Err(LoginError::Throttled { minutes }) => {
                    assert!((1..=15).contains(&minutes), "{minutes}");
                    throttled += 1;
                }
                other => panic!("{}: {other:?}", t.label),
            }
        }

        // Assert: each attempt that reached the hash left a failure in the audit log.
        let hashed = audited(&t.db, action::LOGIN_FAILURE).await;
        assert_eq!(hashed, refused, "{}", t.label);
        // At most the limit; a burst whose rows all land before any count may pass none
        // (every attempt sees the whole burst): refused, never hashed.
        assert!(
            hashed <= USER_LIMIT as usize,
            "{}: {hashed} of {ATTEMPTS} parallel attempts reached the hash (limit {USER_LIMIT})",
            t.label
        );
        assert_eq!(refused + throttled, ATTEMPTS, "{}", t.label);
        // Throttled attempts are audited once per account a window (racing ones may each
        // write theirs before seeing another's), never one row per request.
        let throttled_rows = audited(&t.db, action::LOGIN_THROTTLED).await;
        assert!(
            throttled_rows <= throttled && (throttled == 0) == (throttled_rows == 0),
            "{}: {throttled_rows} audit rows for {throttled} throttled attempts",
            t.label
        );
        // And the count goes on from there: the failures left make up the limit, then even
        // the right password is refused.
        for _ in hashed..USER_LIMIT as usize {
            assert!(
                matches!(
                    auth::authenticate(&t.db, "alice", pw("wrong password"), None).await,
                    Err(LoginError::InvalidCredentials)
                ),
                "{}",
                t.label
            );
        }
        assert!(
            matches!(
                auth::authenticate(&t.db, "alice", pw("alice password 1"), None).await,
                Err(LoginError::Throttled { .. })
            ),
            "{}",
            t.label
        );
    }
}

#[tokio::test]
async fn input_that_is_not_a_username_is_refused_before_any_work() {
    for t in databases().await {
        // Arrange: no hashing can happen while the test holds every slot.
        let held = t.db.hash_slots().hold_all().await;

        // Act / Assert: refused at once, the same answer as a wrong password.
        for input in [
            "",
            "a",
            "admin\u{200b}",
            "ad min",
            &"x".repeat(10_000),
            "管理员",
        ] {
            let err = auth::authenticate(&t.db, input, pw("whatever pw"), Some("10.0.0.9".into()))
                .await
                .unwrap_err();
            assert!(
                matches!(err, LoginError::InvalidCredentials),
                "{}: {input:?} → {err:?}",
                t.label
            );
        }
        drop(held);
        assert_eq!(
            audited(&t.db, action::LOGIN_FAILURE).await,
            0,
            "{}",
            t.label
        );
    }
}

#[tokio::test]
async fn with_every_hash_slot_taken_sign_in_is_busy_and_the_attempt_does_not_count() {
    for t in databases().await {
        // Arrange
        user(&t.db, "bob", "bob password 12", Role::Staff).await;
        let held = t.db.hash_slots().hold_all().await;

        // Act
        let busy = auth::authenticate(&t.db, "bob", pw("bob password 12"), None).await;
        drop(held);

        // Assert: a typed "busy", and the account's full allowance is still there.
        assert!(
            matches!(busy, Err(LoginError::Core(CoreError::Busy))),
            "{}: {busy:?}",
            t.label
        );
        for _ in 0..USER_LIMIT - 1 {
            assert!(matches!(
                auth::authenticate(&t.db, "bob", pw("wrong password"), None).await,
                Err(LoginError::InvalidCredentials)
            ));
        }
        auth::authenticate(&t.db, "bob", pw("bob password 12"), None)
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", t.label));
    }
}

#[tokio::test]
async fn changing_ones_own_password_is_throttled_in_the_sign_in_count() {
    for t in databases().await {
        // Arrange
        let carol = user(&t.db, "carol", "carol password 1", Role::Support).await;

        // Act: guess the current password until refused.
        for _ in 0..USER_LIMIT {
            let err = users::change_own_password(
                &t.db,
                &carol,
                Some("10.0.0.3".into()),
                pw("a guess at it"),
                pw("new password 123"),
            )
            .await
            .unwrap_err();
            assert_invalid(&err, "current_password", t.label);
        }
        let right = users::change_own_password(
            &t.db,
            &carol,
            Some("10.0.0.3".into()),
            pw("carol password 1"),
            pw("new password 123"),
        )
        .await;

        // Assert: refused even with the right password, and sign-in shares the count.
        assert!(
            matches!(right, Err(CoreError::Throttled { minutes }) if (1..=15).contains(&minutes)),
            "{}: {right:?}",
            t.label
        );
        assert!(matches!(
            auth::authenticate(&t.db, "carol", pw("carol password 1"), None).await,
            Err(LoginError::Throttled { .. })
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_removing_each_other_at_once_leave_an_active_admin() {
    for t in databases().await {
        for round in 0..6 {
            // Arrange: exactly two active admins.
            let a = user(
                &t.db,
                &format!("root-a{round}"),
                "root password 1",
                Role::Admin,
            )
            .await;
            let b = user(
                &t.db,
                &format!("root-b{round}"),
                "root password 2",
                Role::Admin,
            )
            .await;
            for other in users::list(&t.db).await.unwrap() {
                if other.role == Role::Admin && other.id != a.id && other.id != b.id {
                    users::set_role(&t.db, &Actor::cli(), other.id, Role::Staff)
                        .await
                        .unwrap();
                }
            }

            // Act: each takes the other's admin rights away (demote or disable) at once.
            let (db1, db2) = (t.db.clone(), t.db.clone());
            let (a2, b2) = (a.clone(), b.clone());
            let one = tokio::spawn(async move {
                if round % 2 == 0 {
                    users::set_role(&db1, &a2.actor(None), b2.id, Role::Staff).await
                } else {
                    users::set_disabled(&db1, &a2.actor(None), b2.id, true).await
                }
            });
            let two = tokio::spawn(async move {
                users::set_role(&db2, &b.actor(None), a.id, Role::Manager).await
            });
            let results = [one.await.unwrap(), two.await.unwrap()];

            // Assert
            let active_admins = users::list(&t.db)
                .await
                .unwrap()
                .into_iter()
                .filter(|u| u.role == Role::Admin && u.is_active())
                .count();
            assert_eq!(active_admins, 1, "{} round {round}: {results:?}", t.label);
            let refused = results
                .iter()
                .filter(|r| matches!(r, Err(CoreError::Conflict(ConflictReason::LastActiveAdmin))))
                .count();
            assert_eq!(refused, 1, "{} round {round}: {results:?}", t.label);
            // The survivor: admins from the next round on are new; demote this one.
            let survivor = users::list(&t.db)
                .await
                .unwrap()
                .into_iter()
                .find(|u| u.role == Role::Admin && u.is_active())
                .unwrap();
            let next = user(
                &t.db,
                &format!("keeper{round}"),
                "keeper password",
                Role::Admin,
            )
            .await;
            users::set_role(&t.db, &next.actor(None), survivor.id, Role::Staff)
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn hammering_a_throttled_account_adds_one_audit_row_a_window_not_one_a_request() {
    for t in databases().await {
        // Arrange: the account's failures make up the limit
        user(&t.db, "bob", "bob password 1", Role::Staff).await;
        for _ in 0..USER_LIMIT {
            let out = auth::authenticate(&t.db, "bob", pw("wrong password"), None).await;
            assert!(
                matches!(out, Err(LoginError::InvalidCredentials)),
                "{out:?}"
            );
        }

        // Act: fifty more, from one address and then from fifty
        for k in 0..50 {
            let ip = Some(format!("203.0.113.{}", if k < 25 { 1 } else { k }));
            let out = auth::authenticate(&t.db, "bob", pw("wrong password"), ip).await;
            assert!(matches!(out, Err(LoginError::Throttled { .. })), "{out:?}");
        }

        // Assert
        assert_eq!(
            audited(&t.db, action::LOGIN_THROTTLED).await,
            1,
            "{}",
            t.label
        );
    }
}
