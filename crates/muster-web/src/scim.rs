//! `/scim/v2`: the SCIM 2.0 service provider (RFC 7644). The bearer SCIM
//! token selects the organization. Requests may be `application/scim+json` or
//! `application/json`; responses are `application/scim+json` (§3.1), with
//! `ETag` (§3.14) and, on create, `Location` (§3.3). Errors, including
//! unknown paths and methods, are SCIM error documents.

use crate::AppState;
use crate::error::{ScimApiError, scim_error};
use crate::extract::context;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use muster_app::scim::{self as app, ListParams, Preconditions};
use muster_app::{AppError, Caller};
use muster_scim::project::Projection;
use muster_scim::schema::{self, Resource};
use muster_scim::{ScimError, discovery};
use serde_json::Value;

/// The authenticated SCIM token.
pub struct ScimAuth(pub Caller);

impl FromRequestParts<AppState> for ScimAuth {
    type Rejection = ScimApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        s: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.get(..7)
                    .filter(|p| p.eq_ignore_ascii_case("bearer "))
                    .and_then(|_| v.get(7..))
            })
            .ok_or(AppError::Unauthenticated)?;
        Ok(Self(
            app::tokens::authenticate(&s.app, token.trim(), context(parts)).await?,
        ))
    }
}

/// RFC 7644 §3.1: a body is `application/scim+json`; `application/json` is
/// accepted too, as IdPs send it. No content type at all is let through.
pub(crate) fn check_content_type(h: &HeaderMap) -> Result<()> {
    let ct = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    if !essence.is_empty() && essence != "application/scim+json" && essence != "application/json" {
        return Err(ScimError::syntax(format!(
            "send the body as application/scim+json or application/json, not {essence}"
        ))
        .into());
    }
    Ok(())
}

/// A JSON body sent as `application/scim+json` or `application/json`.
pub struct ScimJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimJson {
    type Rejection = ScimApiError;

    async fn from_request(req: Request, state: &S) -> std::result::Result<Self, Self::Rejection> {
        check_content_type(req.headers())?;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ScimError::status(413, "the request body is too large"))?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ScimError::syntax(format!(
                "the body is not valid JSON: {}",
                muster_app::users::clean_serde(&e.to_string())
            ))
        })?;
        Ok(Self(v))
    }
}

/// Query parameters; a malformed one (`count=abc`) is a SCIM error.
pub struct ScimQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ScimQuery<T> {
    type Rejection = ScimApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e| {
                ScimError::value(format!(
                    "a query parameter is invalid: {}",
                    muster_app::users::clean_serde(&e.body_text())
                ))
                .into()
            })
    }
}

/// A SCIM JSON answer with the headers the RFC asks for.
pub(crate) struct Scim {
    status: StatusCode,
    body: Option<Value>,
    location: bool,
}

impl Scim {
    pub(crate) fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
            location: false,
        }
    }
    fn created(body: Value) -> Self {
        Self {
            status: StatusCode::CREATED,
            body: Some(body),
            location: true,
        }
    }
}

impl IntoResponse for Scim {
    fn into_response(self) -> Response {
        let Some(body) = self.body else {
            return self.status.into_response();
        };
        let etag = body
            .pointer("/meta/version")
            .unwrap_or(&Value::Null)
            .as_str()
            .map(str::to_owned);
        let location = body
            .pointer("/meta/location")
            .unwrap_or(&Value::Null)
            .as_str()
            .map(str::to_owned);
        let mut res = (self.status, axum::Json(body)).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(muster_scim::MEDIA_TYPE),
        );
        if let Some(v) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
            h.insert(header::ETAG, v);
        }
        if self.location
            && let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok())
        {
            h.insert(header::LOCATION, v);
        }
        res
    }
}

pub(crate) fn base(s: &AppState) -> String {
    format!("{}/scim/v2", s.public_url.trim_end_matches('/'))
}

fn preconditions(h: &HeaderMap) -> Preconditions {
    let get = |n: header::HeaderName| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    Preconditions {
        if_match: get(header::IF_MATCH),
        if_none_match: get(header::IF_NONE_MATCH),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ProjectionParams {
    attributes: Option<String>,
    excluded_attributes: Option<String>,
}

type Result<T> = std::result::Result<T, ScimApiError>;

async fn spc(State(s): State<AppState>) -> Scim {
    Scim::ok(discovery::service_provider_config(&base(&s), true))
}

async fn resource_types(State(s): State<AppState>) -> Scim {
    let b = base(&s);
    Scim::ok(discovery::list(vec![
        discovery::resource_type(Resource::User, &b),
        discovery::resource_type(Resource::Group, &b),
    ]))
}

async fn resource_type(State(s): State<AppState>, Path(id): Path<String>) -> Result<Scim> {
    let res = match id.as_str() {
        "User" => Resource::User,
        "Group" => Resource::Group,
        _ => return Err(ScimError::status(404, format!("no resource type '{id}'")).into()),
    };
    Ok(Scim::ok(discovery::resource_type(res, &base(&s))))
}

async fn schemas(State(s): State<AppState>) -> Scim {
    let b = base(&s);
    Scim::ok(discovery::list(
        schema::SCHEMA_URNS
            .iter()
            .filter_map(|id| schema::schema_json(id, &b))
            .collect(),
    ))
}

async fn schema_by_id(State(s): State<AppState>, Path(id): Path<String>) -> Result<Scim> {
    schema::schema_json(&id, &base(&s))
        .map(Scim::ok)
        .ok_or_else(|| ScimError::status(404, format!("no schema '{id}'")).into())
}

fn resource_of(kind: &str) -> Resource {
    if kind == "Groups" {
        Resource::Group
    } else {
        Resource::User
    }
}

async fn list(
    State(s): State<AppState>,
    ScimAuth(c): ScimAuth,
    Path(kind): Path<String>,
    ScimQuery(q): ScimQuery<ListParams>,
) -> Result<Scim> {
    let b = base(&s);
    Ok(Scim::ok(match resource_of(&kind) {
        Resource::User => app::users::list(&s.app, &c, &b, &q).await?,
        Resource::Group => app::groups::list(&s.app, &c, &b, &q).await?,
    }))
}

/// `POST /.search` (RFC 7644 §3.4.3): the same query in a body.
async fn search(
    State(s): State<AppState>,
    ScimAuth(c): ScimAuth,
    Path(kind): Path<String>,
    ScimJson(mut body): ScimJson,
) -> Result<Scim> {
    // A SearchRequest lists `attributes` as an array (RFC 7644 §3.4.3).
    if let Some(o) = body.as_object_mut() {
        o.remove("schemas");
        for key in ["attributes", "excludedAttributes"] {
            if let Some(Value::Array(a)) = o.get(key) {
                let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                let joined = names.join(",");
                o.insert(key.into(), Value::String(joined));
            }
        }
    }
    let q: ListParams = serde_json::from_value(body)
        .map_err(|e| ScimError::syntax(muster_app::users::clean_serde(&e.to_string())))?;
    list(State(s), ScimAuth(c), Path(kind), ScimQuery(q)).await
}

async fn create(
    State(s): State<AppState>,
    ScimAuth(c): ScimAuth,
    Path(kind): Path<String>,
    ScimJson(body): ScimJson,
) -> Result<Scim> {
    let b = base(&s);
    Ok(Scim::created(match resource_of(&kind) {
        Resource::User => app::users::create(&s.app, &c, &b, body).await?,
        Resource::Group => app::groups::create(&s.app, &c, &b, body).await?,
    }))
}

async fn get_one(
    State(s): State<AppState>,
    ScimAuth(c): ScimAuth,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    ScimQuery(q): ScimQuery<ProjectionParams>,
) -> Result<Response> {
    let p = Projection::parse(q.attributes.as_deref(), q.excluded_attributes.as_deref())?;
    let b = base(&s);
    let doc = match resource_of(&kind) {
        Resource::User => app::users::get(&s.app, &c, &b, &id, &p).await?,
        Resource::Group => app::groups::get(&s.app, &c, &b, &id, &p).await?,
    };
    // If-None-Match on a read: 304 when the client's copy is current.
    let version = doc
        .pointer("/meta/version")
        .unwrap_or(&Value::Null)
        .as_str()
        .unwrap_or("");
    let fresh = preconditions(&headers).if_none_match.is_some_and(|m| {
        m.split(',').any(|t| {
            t.trim() == "*" || t.trim().trim_start_matches("W/") == version.trim_start_matches("W/")
        })
    });
    if fresh {
        let mut res = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(version) {
            res.headers_mut().insert(header::ETAG, v);
        }
        return Ok(res);
    }
    Ok(Scim::ok(doc).into_response())
}

async fn replace(
    State(s): State<AppState>,
    ScimAuth(c): ScimAuth,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<Scim> {
    let b = base(&s);
    let pre = preconditions(&headers);
    Ok(Scim::ok(match resource_of(&kind) {
        Resource::User => app::users::replace(&s.app, &c, &b, &id, body, &pre).await?,
        Resource::Group => app::groups::replace(&s.app, &c, &b, &id, body, &pre).await?,
    }))
}

async fn patch(
    State(s): State<AppState>,
    ScimAuth(c): ScimAuth,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<Scim> {
    let b = base(&s);
    let pre = preconditions(&headers);
    match resource_of(&kind) {
        Resource::User => Ok(Scim::ok(
            app::users::patch(&s.app, &c, &b, &id, body, &pre).await?,
        )),
        Resource::Group => match app::groups::patch(&s.app, &c, &b, &id, body, &pre).await? {
            Some((doc, _)) => Ok(Scim::ok(doc)),
            None => Ok(Scim {
                status: StatusCode::NO_CONTENT,
                body: None,
                location: false,
            }),
        },
    }
}

async fn delete(
    State(s): State<AppState>,
    ScimAuth(c): ScimAuth,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let pre = preconditions(&headers);
    match resource_of(&kind) {
        Resource::User => app::users::delete(&s.app, &c, &id, &pre).await?,
        Resource::Group => app::groups::delete(&s.app, &c, &id, &pre).await?,
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Only `Users` and `Groups` are collections here; anything else is 404.
async fn only_known(req: Request, next: middleware::Next) -> Response {
    let path = req.uri().path().to_owned();
    let known = ["/Users", "/Groups"]
        .iter()
        .any(|k| path == *k || path.starts_with(&format!("{k}/")));
    if !known {
        return not_found().await;
    }
    next.run(req).await
}

/// `POST /.search` at the root would search several resource types at once
/// (RFC 7644 §3.4.3); search `/Users/.search` or `/Groups/.search` instead.
async fn root_search() -> Response {
    scim_error(&ScimError::status(
        501,
        "searching several resource types at once is not supported: use /Users/.search or /Groups/.search",
    ))
}

/// `/scim/v1/…` and the like: RFC 7644 §3.13 `invalidVers`.
pub async fn wrong_version() -> Response {
    scim_error(&ScimError::new(
        muster_scim::ScimType::InvalidVers,
        "only SCIM 2.0 is served, at /scim/v2",
    ))
}

async fn not_found() -> Response {
    scim_error(&ScimError::status(404, "no such SCIM endpoint"))
}

async fn method_not_allowed(method: Method) -> Response {
    scim_error(&ScimError::status(
        405,
        format!("{method} is not supported here"),
    ))
}

pub fn router() -> Router<AppState> {
    let resources = Router::new()
        .route(
            "/{kind}",
            get(list).post(create).fallback(method_not_allowed),
        )
        .route("/{kind}/.search", post(search).fallback(method_not_allowed))
        .route(
            "/{kind}/{id}",
            get(get_one)
                .put(replace)
                .patch(patch)
                .delete(delete)
                .fallback(method_not_allowed),
        )
        .route_layer(middleware::from_fn(only_known));
    Router::new()
        .route(
            "/ServiceProviderConfig",
            get(spc).fallback(method_not_allowed),
        )
        .route(
            "/ResourceTypes",
            get(resource_types).fallback(method_not_allowed),
        )
        .route(
            "/ResourceTypes/{id}",
            get(resource_type).fallback(method_not_allowed),
        )
        .route("/Schemas", get(schemas).fallback(method_not_allowed))
        .route(
            "/Schemas/{id}",
            get(schema_by_id).fallback(method_not_allowed),
        )
        .route("/.search", post(root_search).fallback(method_not_allowed))
        .route(
            "/Bulk",
            post(crate::scim_bulk::bulk)
                .fallback(method_not_allowed)
                // Read up to twice the advertised limit, so that a body over
                // it gets the SCIM 413 rather than being cut off unread.
                .layer(axum::extract::DefaultBodyLimit::max(
                    2 * discovery::BULK_MAX_PAYLOAD,
                )),
        )
        .merge(resources)
        .fallback(not_found)
}
