//! Operations endpoints: health, readiness, metrics, request ids.

use crate::*;
use axum::body::Body;
use axum::http::Request;

async fn health_readiness_and_metrics_answer(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    assert_eq!(
        t.call("GET", "/healthz", None, None).await,
        (axum::http::StatusCode::OK, json!("ok"))
    );
    assert_eq!(t.call("GET", "/readyz", None, None).await.0, 200);
    let (_, u) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/users",
            Some(&owner),
            Some(json!({"email": "m@acme.example"})),
        )
        .await;
    t.call(
        "POST",
        &format!(
            "/api/v1/orgs/acme/users/{}/deactivate",
            u["id"].as_str().unwrap()
        ),
        Some(&owner),
        None,
    )
    .await;
    let (s, text) = t.call("GET", "/metrics", None, None).await;
    assert_eq!(s, 200);
    let text = text.as_str().unwrap().to_owned();
    assert!(text.contains(r#"muster_http_requests_total{method="POST",route="/api/v1/orgs/{org}/users",status="201"}"#), "{text}");
    assert!(
        text.contains("muster_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"muster_lifecycle_transitions_total{event="deactivate"}"#),
        "{text}"
    );
}
both!(health_readiness_and_metrics_answer);

async fn responses_carry_the_request_id(t: TestApp) {
    let req = Request::get("/api/v1/me")
        .header("x-request-id", "trace-me-42")
        .body(Body::empty())
        .unwrap();
    let res = tower::ServiceExt::oneshot(t.router.clone(), req)
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["x-request-id"], "trace-me-42");
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = tower::ServiceExt::oneshot(
        t.router.clone(),
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    assert!(
        res.headers().contains_key("x-request-id"),
        "one is made when none is sent"
    );
}
both!(responses_carry_the_request_id);

async fn readiness_fails_when_the_database_is_gone(t: TestApp) {
    t.app.db.close().await;
    let (s, body) = t.call("GET", "/readyz", None, None).await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(t.call("GET", "/healthz", None, None).await.0, 200);
}
both!(readiness_fails_when_the_database_is_gone);
