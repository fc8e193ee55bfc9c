use crate::helpers::{spawn_apps, ADMIN_PASSWORD};

#[tokio::test]
async fn staff_calling_the_users_server_functions_directly_gets_403_not_data() {
    for app in spawn_apps().await {
        // Arrange
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        app.add_user(&admin, "clerk", "clerk password 1", "staff")
            .await;
        let staff = app.signed_in("clerk", "clerk password 1").await;

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
            let res = app.call(&staff, endpoint, &form).await;
            assert_eq!(res.status(), 403, "{endpoint} on {}", app.db.label);
            let body = res.text().await.unwrap();
            assert!(!body.contains("admin\""), "{endpoint} leaked data: {body}");
        }
        let users = paydesk_core::users::list(&app.db.db).await.unwrap();
        assert_eq!(users.len(), 2, "nothing was created");
        assert!(users.iter().all(|u| u.username.as_str() != "mallory"));

        // Signed out: 401.
        let res = app.call(&app.client(), "users/list", &[]).await;
        assert_eq!(res.status(), 401);
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

        let res = app
            .call(
                &admin,
                "users/set_active",
                &[("id", &id), ("active", "true")],
            )
            .await;
        assert_eq!(res.status(), 200);
        let generated: serde_json::Value = app
            .call(&admin, "users/reset_password", &[("id", &id)])
            .await
            .json()
            .await
            .unwrap();
        let new_password = generated["password"].as_str().unwrap();
        app.signed_in("sue", new_password).await;

        // A bad role and a taken username are 422 with the field named.
        let res = app
            .call(&admin, "users/set_role", &[("id", &id), ("role", "root")])
            .await;
        assert_eq!(res.status(), 422);
        let res = app
            .call(
                &admin,
                "users/add",
                &[
                    ("username", "sue"),
                    ("password", "another password"),
                    ("role", "staff"),
                ],
            )
            .await;
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains("username"));

        // The admin cannot demote or disable themselves.
        let res = app
            .call(
                &admin,
                "users/set_active",
                &[("id", "1"), ("active", "false")],
            )
            .await;
        assert_eq!(res.status(), 403, "{}", app.db.label);

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
        let res = app
            .call(
                &admin,
                "account/change_password",
                &[
                    ("current", ADMIN_PASSWORD),
                    ("new", "brand new password"),
                    ("confirm", "different"),
                ],
            )
            .await;
        assert_eq!(res.status(), 422);
        let res = app
            .call(
                &admin,
                "account/change_password",
                &[
                    ("current", "not it"),
                    ("new", "brand new password"),
                    ("confirm", "brand new password"),
                ],
            )
            .await;
        assert_eq!(res.status(), 422);
        let res = app
            .call(
                &admin,
                "account/change_password",
                &[
                    ("current", ADMIN_PASSWORD),
                    ("new", "brand new password"),
                    ("confirm", "brand new password"),
                ],
            )
            .await;
        assert_eq!(res.status(), 200, "{}", app.db.label);
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
        let res = app.call(&phone, "account/activity", &[]).await;
        assert_eq!(res.status(), 401, "{}", app.db.label);
        let res = phone.get(app.url("/api/events")).send().await.unwrap();
        assert_eq!(res.status(), 401, "{}", app.db.label);
        let res = app.call(&laptop, "account/activity", &[]).await;
        assert_eq!(res.status(), 200, "{}", app.db.label);

        // Act: an admin resets the clerk's password
        let res = app
            .call(
                &admin,
                "users/reset_password",
                &[("id", &clerk.id.to_string())],
            )
            .await;
        assert_eq!(res.status(), 200, "{}", app.db.label);

        // Assert: now the laptop's session is over too, the admin's is not
        let res = app.call(&laptop, "account/activity", &[]).await;
        assert_eq!(res.status(), 401, "{}", app.db.label);
        let res = app.call(&admin, "account/activity", &[]).await;
        assert_eq!(res.status(), 200, "{}", app.db.label);
    }
}
