//! Muster's HTTP surfaces: the admin REST API under `/api/v1`, the SCIM 2.0
//! service provider under `/scim/v2`, and the operations endpoints. Handlers are thin: extract, call one `muster_app`
//! function, answer. Errors become HTTP in `error.rs` and nowhere else.

pub mod api;
mod client;
mod cookies;
mod download;
mod error;
mod extract;
mod limits;
mod ops;
mod pages;
mod scim;
mod scim_bulk;

pub use error::ApiError;
pub use limits::Limiter;
pub use ops::metrics_handle;

use axum::Router;
use muster_app::App;
use std::time::Duration;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Request bodies above this are refused with 413 before they are read in full.
pub const BODY_LIMIT: usize = 256 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Where clients reach this server (`MUSTER_PUBLIC_URL`): the base of
    /// SCIM `Location` and `$ref` values.
    pub public_url: String,
    /// The per-address limit on public sign-up, reset and sign-in starts.
    pub limiter: std::sync::Arc<Limiter>,
    /// Peers whose `X-Forwarded-For` is believed (`MUSTER_TRUSTED_PROXIES`).
    pub trusted_proxies: std::sync::Arc<Vec<ipnet::IpNet>>,
}

pub fn router(state: AppState) -> Router {
    let (api, _) = api::v1::router().split_for_parts();
    Router::new()
        .nest("/api/v1", api)
        .nest("/scim/v2", scim::router())
        .route(
            "/scim/{version}/{*rest}",
            axum::routing::any(scim::wrong_version),
        )
        .merge(ops::router())
        .merge(pages::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::middleware,
        ))
        // Outermost of the two: the limit and every handler see the client.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            client::middleware,
        ))
        .with_state(state)
        .layer(axum::middleware::from_fn(ops::track))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(ops::span))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}
