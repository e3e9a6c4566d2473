//! A real OpenID Connect provider on loopback, standing in for Google or an
//! organization's IdP: discovery document, JWKS, authorization and token
//! endpoints (with PKCE and client authentication checked as a provider
//! does), and ID tokens signed with RSA and EC keys made here. Muster talks to
//! it over HTTP through its production code; only the issuer URL differs.
//!
//! The person "signed in at the provider" is set by the test (`sign_in_as`);
//! `tamper` makes the next ID token wrong in one chosen way.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use muster_core::clock::{Clock, ManualClock};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Who the provider says signed in.
#[derive(Debug, Clone)]
pub struct Person {
    pub sub: String,
    pub email: Option<String>,
    /// `None` leaves the claim out (as Entra ID does).
    pub email_verified: Option<bool>,
    pub name: Option<String>,
}

impl Person {
    pub fn new(sub: &str, email: &str) -> Self {
        Self {
            sub: sub.into(),
            email: Some(email.into()),
            email_verified: Some(true),
            name: Some("Test Person".into()),
        }
    }
}

/// One way to make the next ID token wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    None,
    WrongAudience,
    WrongIssuer,
    /// `alg: none`, no signature.
    AlgNone,
    /// HS256 with the client secret as the key.
    Hs256,
    /// A valid token with one byte of its signature changed.
    BadSignature,
    /// Signed by a key the JWKS does not publish.
    UnknownKey,
    Expired,
    WrongNonce,
}

struct Grant {
    client_id: String,
    redirect_uri: String,
    nonce: Option<String>,
    challenge: String,
    person: Person,
}

struct Keys {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    stranger: EcdsaKeyPair,
}

/// Keys are made once per test process (RSA generation is the slow part).
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa: RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key"),
        ec: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("EC key"),
        stranger: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("EC key"),
    })
}

struct Inner {
    issuer: String,
    client_id: String,
    client_secret: String,
    clock: Arc<ManualClock>,
    person: Option<Person>,
    deny: bool,
    tamper: Tamper,
    /// `RS256` (as Google) or `ES256`.
    alg: &'static str,
    /// Client authentication by `client_secret_post` only (else `_basic` only).
    post: bool,
    codes: HashMap<String, Grant>,
    /// The query of every authorization request, for tests to inspect.
    requests: Vec<HashMap<String, String>>,
}

#[derive(Clone)]
pub struct OidcProvider {
    inner: Arc<Mutex<Inner>>,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
}

impl OidcProvider {
    /// Starts a provider whose tokens are dated by `clock` (the app's).
    pub async fn start(clock: Arc<ManualClock>, client_id: &str, client_secret: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let issuer = format!("http://{}", listener.local_addr().expect("address"));
        let inner = Arc::new(Mutex::new(Inner {
            issuer: issuer.clone(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            clock,
            person: None,
            deny: false,
            tamper: Tamper::None,
            alg: "RS256",
            post: false,
            codes: HashMap::new(),
            requests: Vec::new(),
        }));
        let router = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            inner,
            issuer,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        }
    }

    pub fn sign_in_as(&self, p: Person) {
        self.inner.lock().unwrap().person = Some(p);
    }

    /// The next authorization request is answered `error=access_denied`.
    pub fn deny_next(&self) {
        self.inner.lock().unwrap().deny = true;
    }

    pub fn tamper(&self, t: Tamper) {
        self.inner.lock().unwrap().tamper = t;
    }

    /// Sign with ES256 instead of RS256 from now on.
    pub fn use_es256(&self) {
        self.inner.lock().unwrap().alg = "ES256";
    }

    /// Accept the client's credentials in the token request's body only
    /// (`client_secret_post`), and say so in the discovery document.
    pub fn use_client_secret_post(&self) {
        self.inner.lock().unwrap().post = true;
    }

    pub fn requests(&self) -> Vec<HashMap<String, String>> {
        self.inner.lock().unwrap().requests.clone()
    }
}

type Shared = State<Arc<Mutex<Inner>>>;

async fn discovery(State(s): Shared) -> Response {
    let i = s.lock().unwrap();
    axum::Json(json!({
        "issuer": i.issuer,
        "authorization_endpoint": format!("{}/authorize", i.issuer),
        "token_endpoint": format!("{}/token", i.issuer),
        "jwks_uri": format!("{}/jwks", i.issuer),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported":
            [if i.post { "client_secret_post" } else { "client_secret_basic" }],
    }))
    .into_response()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn jwks() -> Response {
    let k = keys();
    let rsa = k.rsa.public_key();
    let ec = k.ec.public_key().as_ref();
    // An uncompressed P-256 point: 0x04, then x and y of 32 bytes each.
    let (x, y) = ec[1..].split_at(32);
    axum::Json(json!({"keys": [
        {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
         "n": b64(rsa.modulus().big_endian_without_leading_zero()),
         "e": b64(rsa.exponent().big_endian_without_leading_zero())},
        {"kty": "EC", "kid": "ec-1", "use": "sig", "alg": "ES256", "crv": "P-256",
         "x": b64(x), "y": b64(y)},
    ]}))
    .into_response()
}

fn bad(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(json!({"error": error}))).into_response()
}

async fn authorize(State(s): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut i = s.lock().unwrap();
    i.requests.push(q.clone());
    let (Some(redirect), Some(client)) = (q.get("redirect_uri"), q.get("client_id")) else {
        return bad(StatusCode::BAD_REQUEST, "invalid_request");
    };
    if *client != i.client_id {
        return bad(StatusCode::BAD_REQUEST, "unauthorized_client");
    }
    let state = q.get("state").cloned().unwrap_or_default();
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let back = if std::mem::take(&mut i.deny) {
        format!("{redirect}{sep}error=access_denied&state={}", enc(&state))
    } else {
        let ok = q.get("response_type").map(String::as_str) == Some("code")
            && q.get("code_challenge_method").map(String::as_str) == Some("S256")
            && q.get("scope")
                .is_some_and(|s| s.split(' ').any(|x| x == "openid"));
        let (true, Some(challenge), Some(person)) = (ok, q.get("code_challenge"), i.person.clone())
        else {
            return bad(StatusCode::BAD_REQUEST, "invalid_request");
        };
        let code = muster_app::secrets::random_secret();
        i.codes.insert(
            code.clone(),
            Grant {
                client_id: client.clone(),
                redirect_uri: redirect.clone(),
                nonce: q.get("nonce").cloned(),
                challenge: challenge.clone(),
                person,
            },
        );
        format!("{redirect}{sep}code={code}&state={}", enc(&state))
    };
    (StatusCode::FOUND, [(header::LOCATION, back)]).into_response()
}

/// RFC 6749 §2.3.1 client_secret_basic: form-encoded id and secret.
fn client_of(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let raw = STANDARD.decode(v.strip_prefix("Basic ")?).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((dec(id)?, dec(secret)?))
}

async fn token(
    State(s): Shared,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let mut i = s.lock().unwrap();
    let client = if i.post {
        f.get("client_id")
            .cloned()
            .zip(f.get("client_secret").cloned())
    } else {
        client_of(&headers)
    };
    if client != Some((i.client_id.clone(), i.client_secret.clone())) {
        return bad(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if f.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return bad(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    // A code works once.
    let Some(g) = f.get("code").and_then(|c| i.codes.remove(c)) else {
        return bad(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let verifier_ok = f
        .get("code_verifier")
        .is_some_and(|v| b64(&Sha256::digest(v.as_bytes())) == g.challenge);
    if g.client_id != i.client_id || f.get("redirect_uri") != Some(&g.redirect_uri) || !verifier_ok
    {
        return bad(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let id_token = sign(&i, &g);
    i.tamper = Tamper::None;
    axum::Json(json!({
        "access_token": muster_app::secrets::random_secret(),
        "token_type": "Bearer",
        "expires_in": 3600,
        "id_token": id_token,
    }))
    .into_response()
}

fn sign(i: &Inner, g: &Grant) -> String {
    let now = i.clock.now().unix_timestamp();
    let t = i.tamper;
    let mut claims = json!({
        "iss": if t == Tamper::WrongIssuer { "https://evil.example".to_owned() } else { i.issuer.clone() },
        "sub": g.person.sub,
        "aud": if t == Tamper::WrongAudience { "someone-else".to_owned() } else { g.client_id.clone() },
        "iat": now,
        "exp": if t == Tamper::Expired { now - 600 } else { now + 300 },
        "nonce": if t == Tamper::WrongNonce { Some("not-the-nonce".to_owned()) } else { g.nonce.clone() },
    });
    let obj = claims.as_object_mut().unwrap();
    if let Some(e) = &g.person.email {
        obj.insert("email".into(), json!(e));
    }
    if let Some(v) = g.person.email_verified {
        obj.insert("email_verified".into(), json!(v));
    }
    if let Some(n) = &g.person.name {
        obj.insert("name".into(), json!(n));
    }
    let (alg, kid) = match (t, i.alg) {
        (Tamper::AlgNone, _) => ("none", "rsa-1"),
        (Tamper::Hs256, _) => ("HS256", "rsa-1"),
        (Tamper::UnknownKey, _) => ("ES256", "ec-unpublished"),
        (_, "ES256") => ("ES256", "ec-1"),
        _ => ("RS256", "rsa-1"),
    };
    let header = json!({"alg": alg, "kid": kid, "typ": "JWT"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let k = keys();
    let rng = SystemRandom::new();
    let mut sig = match (t, alg) {
        (Tamper::AlgNone, _) => Vec::new(),
        (Tamper::Hs256, _) => {
            let key =
                aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, i.client_secret.as_bytes());
            aws_lc_rs::hmac::sign(&key, input.as_bytes())
                .as_ref()
                .to_vec()
        }
        (Tamper::UnknownKey, _) => k
            .stranger
            .sign(&rng, input.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec(),
        (_, "ES256") => k.ec.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
        _ => {
            let mut sig = vec![0u8; k.rsa.public_modulus_len()];
            k.rsa
                .sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                .unwrap();
            sig
        }
    };
    if t == Tamper::BadSignature
        && let Some(b) = sig.get_mut(10)
    {
        *b ^= 0x01;
    }
    format!("{input}.{}", b64(&sig))
}

/// What a browser ends with after a federated sign-in through the in-process
/// router: the last answer from Muster, and the cookies it set on the way.
#[derive(Debug)]
pub struct Landing {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: Value,
    /// `name=value` of every cookie Muster set (the flow binding, the session).
    pub cookies: HashMap<String, String>,
}

impl Landing {
    pub fn session(&self) -> Option<&str> {
        self.cookies.get("muster_session").map(String::as_str)
    }
}

fn set_cookies(h: &HeaderMap, jar: &mut HashMap<String, String>) {
    for v in h.get_all(header::SET_COOKIE) {
        if let Some((k, rest)) = v.to_str().unwrap_or("").split_once('=') {
            let value = rest.split(';').next().unwrap_or("").to_owned();
            jar.insert(k.to_owned(), value);
        }
    }
}

fn cookie_header(jar: &HashMap<String, String>) -> String {
    jar.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl crate::TestApp {
    /// Plays a browser through a federated sign-in: GET `start` on Muster,
    /// follow it to the provider's authorization endpoint (over HTTP), then
    /// bring the provider's redirect back to Muster's callback with the
    /// cookies Muster set. Returns the callback's answer.
    pub async fn federated(&self, start: &str) -> Landing {
        let (landing, callback) = self.federated_parts(start).await;
        match callback {
            Some(path) => self.follow(&path, landing.cookies).await,
            None => landing,
        }
    }

    /// The first two legs of `federated`: Muster's answer to `start` (with
    /// the cookies set so far) and the callback path the provider sent back.
    pub async fn federated_parts(&self, start: &str) -> (Landing, Option<String>) {
        let mut jar = HashMap::new();
        let (status, h, body) = self.call_with("GET", start, &[], None).await;
        set_cookies(&h, &mut jar);
        let location = h
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let first = Landing {
            status,
            location: location.clone(),
            body,
            cookies: jar,
        };
        let Some(to_provider) = location.filter(|l| l.starts_with("http://127.0.0.1")) else {
            return (first, None);
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let res = http
            .get(&to_provider)
            .send()
            .await
            .expect("provider answers");
        let back = res
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let path = back.map(|b| {
            b.strip_prefix(&self.public_url)
                .map(str::to_owned)
                .unwrap_or(b)
        });
        (first, path)
    }

    /// GET `path` on Muster with the cookies of `jar`; the answer's cookies join it.
    pub async fn follow(&self, path: &str, mut jar: HashMap<String, String>) -> Landing {
        let cookie = cookie_header(&jar);
        let headers: Vec<(&str, &str)> = if cookie.is_empty() {
            vec![]
        } else {
            vec![("cookie", cookie.as_str())]
        };
        let (status, h, body) = self.call_with("GET", path, &headers, None).await;
        set_cookies(&h, &mut jar);
        Landing {
            status,
            location: h
                .get(header::LOCATION)
                .map(|v| v.to_str().unwrap().to_owned()),
            body,
            cookies: jar,
        }
    }
}
