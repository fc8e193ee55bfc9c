//! Who may call what, checked on the server: every server function and every dashboard
//! route, called as each role and signed out (issue "dashboard": a table-driven role test).
//!
//! The table below must name every server function the binary registers: a new function
//! without a row fails [`every_server_function_has_a_row`], so nobody can add an endpoint
//! and forget to decide who may call it.

use std::collections::BTreeSet;

use paydesk_types::Role;
use reqwest::redirect::Policy;
use reqwest::Client;

use crate::helpers::{
    header, spawn_apps, TestApp, ADMIN_PASSWORD, API_CALLS_LIST_FORM, NOTIFICATIONS_LIST_FORM,
    ORDERS_LIST_FORM,
};

/// Who may call an endpoint or open a page.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// Anyone, signed in or not (sign-in, sign-out, "who am I").
    Public,
    /// Signed in with at least this role.
    AtLeast(Role),
}

/// One server function: its endpoint under `/api/`, a well-formed argument set that would
/// do no harm (unknown ids, wrong passwords), and who may call it.
struct Call {
    endpoint: &'static str,
    form: &'static [(&'static str, &'static str)],
    access: Access,
}

const fn call(
    endpoint: &'static str,
    form: &'static [(&'static str, &'static str)],
    access: Access,
) -> Call {
    Call {
        endpoint,
        form,
        access,
    }
}

use Access::{AtLeast, Public};
use Role::{Admin, Manager, Staff, Support};

/// Every server function. Arguments point at things that do not exist, so an allowed call
/// answers 2xx or a domain error (404, 422, 502), never 401/403; a refused one answers
/// 401 signed out and 403 for a lower role. Public ones never answer 403.
const CALLS: &[Call] = &[
    call(
        "auth/login",
        &[
            ("username", "nobody"),
            ("password", "wrong password"),
            ("next", "/"),
        ],
        Public,
    ),
    call("auth/logout", &[], Public),
    call("auth/me", &[], Public),
    call(
        "account/change_password",
        &[
            ("current", "not my password"),
            ("new", "another password 1"),
            ("confirm", "another password 1"),
        ],
        AtLeast(Staff),
    ),
    call("account/activity", &[], AtLeast(Staff)),
    call("account/openids", &[], AtLeast(Staff)),
    call(
        "account/add_openid",
        &[("openid", "not an openid!")],
        AtLeast(Staff),
    ),
    call(
        "account/remove_openid",
        &[("openid", "oNeverRecorded")],
        AtLeast(Staff),
    ),
    call("home/stats", &[], AtLeast(Staff)),
    call(
        "logs/notifications",
        NOTIFICATIONS_LIST_FORM,
        AtLeast(Staff),
    ),
    call("logs/notification", &[("id", "999999")], AtLeast(Staff)),
    call("logs/failures", &[("window", "24h")], AtLeast(Support)),
    call(
        "logs/lookup",
        &[("text", "NO-SUCH-ORDER")],
        AtLeast(Support),
    ),
    call("logs/api_calls", API_CALLS_LIST_FORM, AtLeast(Support)),
    call("logs/api_call", &[("id", "999999")], AtLeast(Support)),
    call("audit/list", &[], AtLeast(Admin)),
    call("settings/get", &[], AtLeast(Admin)),
    call("settings/doctor", &[], AtLeast(Admin)),
    call("orders/list", ORDERS_LIST_FORM, AtLeast(Staff)),
    call(
        "orders/detail",
        &[("out_trade_no", "NO-SUCH-ORDER")],
        AtLeast(Staff),
    ),
    call(
        "orders/sync",
        &[("out_trade_no", "NO-SUCH-ORDER")],
        AtLeast(Support),
    ),
    call(
        "orders/close",
        &[("out_trade_no", "NO-SUCH-ORDER")],
        AtLeast(Support),
    ),
    call("products/list", &[], AtLeast(Admin)),
    call(
        "products/add",
        &[("name", ""), ("price", "1.00")],
        AtLeast(Admin),
    ),
    call(
        "products/update",
        &[
            ("id", "999999"),
            ("name", "x"),
            ("price", "1.00"),
            ("active", "true"),
        ],
        AtLeast(Admin),
    ),
    call("exceptions/list", &[], AtLeast(Support)),
    call("exceptions/count", &[], AtLeast(Support)),
    call(
        "exceptions/close",
        &[("id", "999999"), ("note", "role test")],
        AtLeast(Support),
    ),
    call("reconciliation/calendar", &[], AtLeast(Manager)),
    call(
        "reconciliation/day",
        &[("day", "2001-01-01")],
        AtLeast(Manager),
    ),
    call(
        "reconciliation/run",
        &[("day", "2001-01-01")],
        AtLeast(Manager),
    ),
    call("reconciliation/sync", &[("id", "999999")], AtLeast(Manager)),
    call(
        "reconciliation/resolve",
        &[("id", "999999"), ("note", "role test")],
        AtLeast(Manager),
    ),
    call("refunds/list", &[], AtLeast(Support)),
    call(
        "refunds/request",
        &[
            ("out_trade_no", "NO-SUCH-ORDER"),
            ("amount", ""),
            ("reason", "role test"),
        ],
        AtLeast(Support),
    ),
    call(
        "refunds/approve",
        &[("id", "999999"), ("reason", "role test")],
        AtLeast(Manager),
    ),
    call(
        "refunds/reject",
        &[("id", "999999"), ("reason", "role test")],
        AtLeast(Manager),
    ),
    call("refunds/check_channel", &[], AtLeast(Manager)),
    call("users/list", &[], AtLeast(Admin)),
    call(
        "users/add",
        &[("username", "x"), ("password", "short"), ("role", "staff")],
        AtLeast(Admin),
    ),
    call(
        "users/set_role",
        &[("id", "999999"), ("role", "staff")],
        AtLeast(Admin),
    ),
    call(
        "users/set_active",
        &[("id", "999999"), ("active", "false")],
        AtLeast(Admin),
    ),
    call("users/reset_password", &[("id", "999999")], AtLeast(Admin)),
];

/// Every dashboard page (GET), and who may see its content.
const PAGES: &[(&str, Access)] = &[
    ("/", AtLeast(Staff)),
    ("/", AtLeast(Staff)),
    ("/account", AtLeast(Staff)),
    ("/audit", AtLeast(Admin)),
    ("/notifications", AtLeast(Staff)),
    (
        "/notifications?kind=payment&verdict=bad_signature",
        AtLeast(Staff),
    ),
    ("/failures", AtLeast(Support)),
    ("/lookup", AtLeast(Support)),
    ("/api-calls", AtLeast(Support)),
    ("/settings", AtLeast(Admin)),
    ("/audit", AtLeast(Admin)),
    ("/settings", AtLeast(Admin)),
    ("/orders?all", AtLeast(Staff)),
    ("/orders?status=PAID&from=2026-01-01", AtLeast(Staff)),
    ("/refunds", AtLeast(Support)),
    ("/reconciliation", AtLeast(Manager)),
    ("/exceptions", AtLeast(Support)),
    ("/products", AtLeast(Admin)),
    ("/users", AtLeast(Admin)),
];

/// Plain routes outside the server functions (GET), and who may use them.
const ROUTES: &[(&str, Access)] = &[
    ("/api/events", AtLeast(Staff)),
    ("/orders/export.csv", AtLeast(Manager)),
    (
        "/reconciliation/differences.csv?day=2026-12-01",
        AtLeast(Manager),
    ),
    ("/orders/export.csv?status=PAID", AtLeast(Manager)),
];

fn allowed(access: Access, who: Option<Role>) -> bool {
    match (access, who) {
        (Public, _) => true,
        (AtLeast(_), None) => false,
        (AtLeast(min), Some(role)) => role.includes(min),
    }
}

/// A client signed out, then one per role from lowest to highest.
async fn clients(app: &TestApp) -> Vec<(Option<Role>, Client)> {
    let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
    let mut out = vec![(None, no_redirects())];
    for role in [Staff, Support, Manager] {
        let name = format!("role-{}", role.as_str());
        out.push((
            Some(role),
            app.new_user_signed_in(&admin, &name, role.as_str()).await,
        ));
    }
    out.push((Some(Admin), admin));
    out
}

fn no_redirects() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

#[test]
fn every_server_function_has_a_row() {
    // The registry fills when the app's server functions are linked in; touching the
    // router makes sure they are.
    let registered: BTreeSet<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.trim_start_matches("/api/").to_owned())
        .collect();
    let listed: BTreeSet<String> = CALLS.iter().map(|c| c.endpoint.to_owned()).collect();
    assert!(!registered.is_empty(), "no server functions registered");
    let missing: Vec<_> = registered.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&registered).collect();
    assert!(
        missing.is_empty(),
        "server functions without a row in roles.rs CALLS: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "rows for server functions that no longer exist: {stale:?}"
    );
}

#[tokio::test]
async fn every_server_function_refuses_whom_it_must() {
    for app in spawn_apps().await {
        let clients = clients(&app).await;
        let mut wrong = Vec::new();
        // Sign-out last: it ends the sessions the other rows need.
        let mut calls: Vec<&Call> = CALLS.iter().collect();
        calls.sort_by_key(|c| c.endpoint == "auth/logout");
        for c in calls {
            for (who, client) in &clients {
                let status = app.call(client, c.endpoint, c.form).await.status().as_u16();
                let ok = if matches!(c.access, Public) {
                    // (a wrong password is a 401 from sign-in itself)
                    status != 403 && status < 500
                } else if allowed(c.access, *who) {
                    status != 401 && status != 403 && status < 500 || status == 502
                } else if who.is_none() {
                    status == 401
                } else {
                    status == 403
                };
                if !ok {
                    wrong.push(format!("{} as {:?}: {status}", c.endpoint, who));
                }
            }
        }
        assert!(wrong.is_empty(), "{}: {wrong:#?}", app.db.label);
    }
}

#[tokio::test]
async fn every_page_and_route_refuses_whom_it_must() {
    for app in spawn_apps().await {
        let clients = clients(&app).await;
        let mut wrong = Vec::new();
        for (path, access) in PAGES {
            for (who, client) in &clients {
                let res = client
                    .get(app.url(path))
                    .header("accept", "text/html")
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let location = header(&res, "location");
                let body = res.text().await.unwrap();
                let refused = body.contains("data-testid=\"refused\"");
                let ok = match (who, allowed(*access, *who)) {
                    (None, _) => status == 302 && location.starts_with("/login?next="),
                    (Some(_), true) => status == 200 && !refused,
                    (Some(_), false) => refused || status == 403,
                };
                if !ok {
                    wrong.push(format!("{path} as {who:?}: {status} refused={refused}"));
                }
            }
        }
        for (path, access) in ROUTES {
            for (who, client) in &clients {
                let status = client
                    .get(app.url(path))
                    .timeout(std::time::Duration::from_secs(5))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                let ok = match (who, allowed(*access, *who)) {
                    (_, true) => status == 200,
                    (None, false) => status == 401 || status == 302,
                    (Some(_), false) => status == 403,
                };
                if !ok {
                    wrong.push(format!("{path} as {who:?}: {status}"));
                }
            }
        }
        assert!(wrong.is_empty(), "{}: {wrong:#?}", app.db.label);
    }
}
