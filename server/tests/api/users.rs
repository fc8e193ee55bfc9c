use crate::helpers::{spawn_apps, ADMIN_PASSWORD};

#[tokio::test]
async fn staff_calling_the_users_server_functions_directly_gets_403_not_data() {
    for app in spawn_apps().await {
        // Arrange
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        let staff = app.new_user_signed_in(&admin, "clerk", "staff").await;

        // Act / Assert: every users function refuses, and nothing leaks in the body.
        for (endpoint, form) in [
            ("users/list", vec![]),
            (
                "users/add",
                vec![
                    ("username", "mallory"),
                    ("password", "mallory password"),
                    ("role", "admin"),
                ],
            ),
            ("users/set_role", vec![("id", "2"), ("role", "admin")]),
            ("users/set_active", vec![("id", "1"), ("active", "false")]),
            ("users/reset_password", vec![("id", "1")]),
        ] {
            let res = app.call_expect(&staff, endpoint, &form, 403).await;
            let body = res.text().await.unwrap();
            assert!(!body.contains("admin\""), "{endpoint} leaked data: {body}");
        }
        let users = paydesk_core::users::list(&app.db.db).await.unwrap();
        assert_eq!(users.len(), 2, "nothing was created");
        assert!(users.iter().all(|u| u.username.as_str() != "mallory"));

        // Signed out: 401.
        app.call_expect(&app.client(), "users/list", &[], 401).await;
    }
}

#[tokio::test]
async fn admin_adds_changes_role_disables_and_resets_through_server_functions() {
    for app in spawn_apps().await {
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        app.add_user(&admin, "Sue", "support password", "support")
            .await;

        let list: serde_json::Value = app
            .call(&admin, "users/list", &[])
            .await
            .json()
            .await
            .unwrap();
        let sue = list
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == "sue")
            .expect("sue listed")
            .clone();
        assert_eq!(sue["role"], "support");
        let id = sue["id"].to_string();

        let res = app
            .call(
                &admin,
                "users/set_role",
                &[("id", &id), ("role", "manager")],
            )
            .await;
        assert_eq!(
            res.json::<serde_json::Value>().await.unwrap()["role"],
            "manager"
        );

        let sue_client = app.signed_in("sue", "support password").await;
        let res = app
            .call(
                &admin,
                "users/set_active",
                &[("id", &id), ("active", "false")],
            )
            .await;
        assert_eq!(
            res.json::<serde_json::Value>().await.unwrap()["active"],
            false
        );
        // Her open session stops working at once.
        assert_eq!(
            app.call(&sue_client, "auth/me", &[])
                .await
                .text()
                .await
                .unwrap(),
            "null"
        );

        app.call_expect(
            &admin,
            "users/set_active",
            &[("id", &id), ("active", "true")],
            200,
        )
        .await;
        let generated: serde_json::Value = app
            .call(&admin, "users/reset_password", &[("id", &id)])
            .await
            .json()
            .await
            .unwrap();
        let new_password = generated["password"].as_str().unwrap();
        app.signed_in("sue", new_password).await;

        // A bad role and a taken username are 422 with the field named.
        app.call_expect(
            &admin,
            "users/set_role",
            &[("id", &id), ("role", "root")],
            422,
        )
        .await;
        let res = app
            .call_expect(
                &admin,
                "users/add",
                &[
                    ("username", "sue"),
                    ("password", "another password"),
                    ("role", "staff"),
                ],
                422,
            )
            .await;
        assert!(res.text().await.unwrap().contains("username"));

        // The admin cannot demote or disable themselves.
        app.call_expect(
            &admin,
            "users/set_active",
            &[("id", "1"), ("active", "false")],
            403,
        )
        .await;

        let actions: Vec<String> = paydesk_core::audit::list(&app.db.db, None, None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        for expected in [
            "user.create",
            "user.role",
            "user.disable",
            "user.enable",
            "user.password_reset",
            "login.success",
        ] {
            assert!(
                actions.iter().any(|a| a == expected),
                "{expected} missing from {actions:?}"
            );
        }
    }
}

#[tokio::test]
async fn changing_my_password_needs_the_current_one_and_a_matching_confirmation() {
    for app in spawn_apps().await {
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        app.call_expect(
            &admin,
            "account/change_password",
            &[
                ("current", ADMIN_PASSWORD),
                ("new", "brand new password"),
                ("confirm", "different"),
            ],
            422,
        )
        .await;
        app.call_expect(
            &admin,
            "account/change_password",
            &[
                ("current", "not it"),
                ("new", "brand new password"),
                ("confirm", "brand new password"),
            ],
            422,
        )
        .await;
        app.call_expect(
            &admin,
            "account/change_password",
            &[
                ("current", ADMIN_PASSWORD),
                ("new", "brand new password"),
                ("confirm", "brand new password"),
            ],
            200,
        )
        .await;
        app.signed_in("admin", "brand new password").await;

        let activity: serde_json::Value = app
            .call(&admin, "account/activity", &[])
            .await
            .json()
            .await
            .unwrap();
        let actions: Vec<_> = activity
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            actions.contains(&"account.password_change".to_owned()),
            "{actions:?}"
        );
    }
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_and_a_reset_ends_them_all() {
    for app in spawn_apps().await {
        // Arrange: the clerk is signed in on two devices
        let (admin, laptop, phone) = app.clerk_on_two_devices().await;
        let clerk = paydesk_core::users::find(
            &app.app_db,
            &paydesk_types::Username::parse("clerk").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();

        // Act: the clerk changes the password on the laptop
        app.change_password(&laptop, "clerk password 1", "clerk password 2")
            .await;

        // Assert: the phone's session is over everywhere, the laptop's goes on
        app.call_expect(&phone, "account/activity", &[], 401).await;
        let res = phone.get(app.url("/api/events")).send().await.unwrap();
        assert_eq!(res.status(), 401, "{}", app.db.label);
        app.call_expect(&laptop, "account/activity", &[], 200).await;

        // Act: an admin resets the clerk's password
        app.call_expect(
            &admin,
            "users/reset_password",
            &[("id", &clerk.id.to_string())],
            200,
        )
        .await;

        // Assert: now the laptop's session is over too, the admin's is not
        app.call_expect(&laptop, "account/activity", &[], 401).await;
        app.call_expect(&admin, "account/activity", &[], 200).await;
    }
}
