//! The catalogue: demo products on a fresh sandbox database, admin-only management through
//! the dashboard's server functions, prices in exact fen, every change audited, and what the
//! mini program sees.

use paydesk_core::audit;

use crate::helpers::{spawn_apps, ADMIN_PASSWORD};

#[tokio::test]
async fn admins_add_reprice_and_withdraw_products_and_the_mini_program_follows() {
    for app in spawn_apps().await {
        // Arrange
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;

        // Act
        let added = app
            .call(
                &admin,
                "products/add",
                &[("name", "桂花拿铁"), ("price", "¥19.90")],
            )
            .await;
        assert_eq!(added.status(), 200, "{}", app.db.label);
        let added: serde_json::Value = added.json().await.unwrap();
        let id = added["id"].as_i64().unwrap();
        let id_text = id.to_string();
        let updated = app
            .call(
                &admin,
                "products/update",
                &[
                    ("id", id_text.as_str()),
                    ("name", "桂花拿铁 大杯"),
                    ("price", "21.5"),
                    ("active", "false"),
                ],
            )
            .await;
        let bad_price = app
            .call(&admin, "products/add", &[("name", "x"), ("price", "1.234")])
            .await;

        // Assert
        assert_eq!(added["price_fen"], 1990);
        assert_eq!(updated.status(), 200);
        let updated: serde_json::Value = updated.json().await.unwrap();
        assert_eq!(updated["price_fen"], 2150);
        assert_eq!(updated["active"], false);
        assert_eq!(bad_price.status(), 422);
        let catalogue: serde_json::Value = reqwest::get(app.url("/api/mp/products"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let listed: Vec<i64> = catalogue["products"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        assert_eq!(
            listed.len(),
            paydesk_core::products::DEMO_PRODUCTS.len(),
            "{}",
            app.db.label
        );
        assert!(!listed.contains(&id), "a withdrawn product is not sold");
        let log = audit::list(&app.db.db, None, None, 20).await.unwrap();
        assert!(log
            .iter()
            .any(|e| e.action == audit::action::PRODUCT_CREATE && e.actor == "admin"));
        assert!(log.iter().any(|e| e.action == audit::action::PRODUCT_UPDATE
            && e.detail.as_deref().is_some_and(|d| d.contains("¥21.50"))));
    }
}

#[tokio::test]
async fn only_admins_may_read_or_change_the_catalogue() {
    for app in spawn_apps().await {
        // Arrange
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        let manager = app.new_user_signed_in(&admin, "manager1", "manager").await;
        let anonymous = app.client();

        // Act + Assert
        for (client, want) in [(&manager, 403), (&anonymous, 401)] {
            for (endpoint, form) in [
                ("products/list", vec![]),
                ("products/add", vec![("name", "x"), ("price", "1.00")]),
                (
                    "products/update",
                    vec![
                        ("id", "1"),
                        ("name", "x"),
                        ("price", "1.00"),
                        ("active", "true"),
                    ],
                ),
            ] {
                let res = app.call(client, endpoint, &form).await;
                assert_eq!(res.status(), want, "{endpoint} {}", app.db.label);
            }
        }
        let untouched = paydesk_core::products::find(&app.db.db, 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(untouched.name, paydesk_core::products::DEMO_PRODUCTS[0].0);
    }
}
