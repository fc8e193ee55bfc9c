use crate::callbacks::post_notification;
use crate::helpers::{spawn_apps, spawn_apps_with, TestApp};

const METRICS_TOKEN: &str = "metrics-token-for-tests";

/// `GET /metrics`, with `token` as the bearer token when there is one.
async fn metrics(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let req = app.client().get(app.url("/metrics"));
    let req = match token {
        Some(token) => req.bearer_auth(token),
        None => req,
    };
    req.send().await.unwrap()
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    for app in spawn_apps_with(serde_json::json!({ "metrics_token": METRICS_TOKEN })).await {
        let client = app.client();
        let health = client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let ready = client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{}", app.db.label);
        // WeChat Pay's callbacks skip the dashboard's layers, not the metrics.
        let (callback, _) = post_notification(&app.base, "not xml").await;
        assert_eq!(callback, 200, "{}", app.db.label);

        let metrics = metrics(&app, Some(METRICS_TOKEN)).await;
        assert_eq!(metrics.status(), 200);
        assert!(metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        let text = metrics.text().await.unwrap();
        assert!(
            text.contains(
                "paydesk_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"2xx\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("route=\"/readyz\""));
        assert!(
            text.contains(
                "paydesk_http_requests_total{route=\"/wxpay/notify/payment\",method=\"POST\",status=\"2xx\"} 1"
            ),
            "{text}"
        );
    }
}

#[tokio::test]
async fn metrics_need_the_bearer_token_and_without_one_configured_do_not_exist() {
    for app in spawn_apps_with(serde_json::json!({ "metrics_token": METRICS_TOKEN })).await {
        let client = app.client();
        // Arrange: a request of each kind, so the text has something to leak.
        client.get(app.url("/healthz")).send().await.unwrap();

        // Act / Assert
        let missing = metrics(&app, None).await;
        assert_eq!(missing.status(), 401, "{}", app.db.label);
        assert!(!missing.text().await.unwrap().contains("paydesk_http"));
        for wrong in [
            "",
            "metrics-token-for-test",
            "metrics-token-for-tests2",
            "x",
        ] {
            let res = metrics(&app, Some(wrong)).await;
            assert_eq!(res.status(), 401, "{wrong:?} on {}", app.db.label);
        }
        let basic = client
            .get(app.url("/metrics"))
            .basic_auth(METRICS_TOKEN, Some(METRICS_TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), 401, "{}", app.db.label);
        let right = metrics(&app, Some(METRICS_TOKEN)).await;
        assert_eq!(right.status(), 200, "{}", app.db.label);
        assert!(right.text().await.unwrap().contains("paydesk_http"));
    }
    for app in spawn_apps().await {
        let res = metrics(&app, Some(METRICS_TOKEN)).await;
        assert_eq!(res.status(), 404, "{}", app.db.label);
    }
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = spawn_apps().await.remove(0);
    app.app_db.close().await;
    let res = app.client().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let res = app.client().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200, "alive even when not ready");
}

#[tokio::test]
async fn unknown_pages_answer_404() {
    let app = spawn_apps().await.remove(0);
    let res = app
        .client()
        .get(app.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
