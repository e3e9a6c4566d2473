//! The OpenID Connect relying party, spoken over HTTP to any provider:
//! discovery (OpenID Connect Discovery 1.0 §4), the authorization request
//! with PKCE (OIDC Core 1.0 §3.1.2.1, RFC 7636 §4), the token request (Core
//! §3.1.3.1, client authentication of RFC 6749 §2.3.1) and ID token
//! validation (Core §3.1.3.7).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use url::Url;

/// What a relying party is registered as at one provider.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

/// Why a federated sign-in was refused, in words safe to show and to audit
/// (never a token, a secret or the provider's raw answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

type Outcome<T> = std::result::Result<T, Refusal>;

fn refuse<T>(why: impl Into<String>) -> Outcome<T> {
    Err(Refusal(why.into()))
}

/// The provider metadata Muster uses (Discovery §3).
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Absent means `client_secret_basic` (Discovery §3).
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

impl Metadata {
    /// `client_secret_basic` unless the provider supports only `client_secret_post`.
    fn wants_post(&self) -> bool {
        let m = &self.token_endpoint_auth_methods_supported;
        !m.is_empty()
            && !m.iter().any(|x| x == "client_secret_basic")
            && m.iter().any(|x| x == "client_secret_post")
    }
}

/// The claims of an ID token Muster reads (Core §2, §5.1).
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub azp: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// A boolean; some providers send the string `"true"`.
    #[serde(default)]
    pub email_verified: Option<serde_json::Value>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub preferred_username: Option<String>,
}

impl Claims {
    pub fn email_verified(&self) -> Option<bool> {
        match &self.email_verified {
            Some(serde_json::Value::Bool(b)) => Some(*b),
            Some(serde_json::Value::String(s)) => Some(s.eq_ignore_ascii_case("true")),
            _ => None,
        }
    }
}

/// `aud` is one string or an array of them (Core §2).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn values(&self) -> Vec<&str> {
        match self {
            Self::One(a) => vec![a.as_str()],
            Self::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// Signature algorithms accepted for ID tokens: asymmetric only. `none` and
/// the HMAC family are refused whatever the token or the metadata says — an
/// HMAC "signed" with a public key is the classic forgery.
const ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Clock skew tolerated on `exp` and `iat`.
const LEEWAY_S: i64 = 60;
/// Metadata and keys are re-read this often; keys also when a token names an
/// unknown one (a rotation), but not more than once a minute.
const CACHE_FOR: Duration = Duration::from_secs(3600);
const REFETCH_AFTER: Duration = Duration::from_secs(60);
/// No provider document Muster reads is anywhere near this.
const MAX_BODY: usize = 512 * 1024;

struct Cached {
    meta: Arc<Metadata>,
    keys: Arc<JwkSet>,
    fetched: Instant,
}

/// The HTTP client and the per-issuer cache of metadata and keys.
pub struct Oidc {
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Arc<Cached>>>,
}

impl Default for Oidc {
    fn default() -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            // A provider's endpoints are taken from its metadata, never from a redirect.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Muster")
            .build()
            .unwrap_or_default();
        Self {
            http,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

/// An issuer or endpoint Muster will call: https, or http on a loopback host
/// (development and tests); no credentials, query or fragment in an issuer.
pub fn check_url(raw: &str, what: &str) -> Outcome<Url> {
    let u = Url::parse(raw).or_else(|_| refuse(format!("the {what} is not a URL")))?;
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => return refuse(format!("the {what} has no host")),
    };
    if !(u.scheme() == "https" || (u.scheme() == "http" && loopback)) {
        return refuse(format!(
            "the {what} must use https (http only on localhost)"
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return refuse(format!("the {what} must not carry credentials"));
    }
    Ok(u)
}

/// PKCE S256 (RFC 7636 §4.2): the challenge is BASE64URL(SHA256(verifier)).
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Oidc {
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str, what: &str) -> Outcome<T> {
        check_url(url, what)?;
        let unreachable = |e: reqwest::Error| {
            tracing::warn!(error = %e, url, "OIDC provider unreachable");
            Refusal(format!("the identity provider's {what} could not be read"))
        };
        let res = self.http.get(url).send().await.map_err(unreachable)?;
        if !res.status().is_success() {
            return refuse(format!(
                "the identity provider answered {} for its {what}",
                res.status().as_u16()
            ));
        }
        let body = read_bounded(res).await.map_err(unreachable)?;
        serde_json::from_slice(&body)
            .or_else(|_| refuse(format!("the identity provider's {what} is not valid")))
    }

    async fn fetch(&self, issuer: &str) -> Outcome<Arc<Cached>> {
        check_url(issuer, "issuer")?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let meta: Metadata = self.get_json(&url, "discovery document").await?;
        // Discovery §4.3: the issuer in the document is exactly the one asked for.
        if meta.issuer != issuer {
            return refuse("the discovery document names another issuer");
        }
        for (u, what) in [
            (&meta.authorization_endpoint, "authorization endpoint"),
            (&meta.token_endpoint, "token endpoint"),
            (&meta.jwks_uri, "key set address"),
        ] {
            check_url(u, what)?;
        }
        let keys: JwkSet = self.get_json(&meta.jwks_uri, "key set").await?;
        let c = Arc::new(Cached {
            meta: Arc::new(meta),
            keys: Arc::new(keys),
            fetched: Instant::now(),
        });
        if let Ok(mut m) = self.cache.lock() {
            m.insert(issuer.to_owned(), c.clone());
        }
        Ok(c)
    }

    async fn provider(&self, issuer: &str, refresh_after: Duration) -> Outcome<Arc<Cached>> {
        let hit = self
            .cache
            .lock()
            .ok()
            .and_then(|m| m.get(issuer).cloned())
            .filter(|c| c.fetched.elapsed() < refresh_after);
        match hit {
            Some(c) => Ok(c),
            None => self.fetch(issuer).await,
        }
    }

    /// The provider's metadata, read now when not cached (also the check an
    /// administrator's new connection gets).
    pub async fn metadata(&self, issuer: &str) -> Outcome<Arc<Metadata>> {
        Ok(self.provider(issuer, CACHE_FOR).await?.meta.clone())
    }

    /// The URL that sends the browser to the provider (Core §3.1.2.1).
    pub async fn authorization_url(
        &self,
        client: &ClientConfig,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> Outcome<String> {
        let meta = self.metadata(&client.issuer).await?;
        let mut u = check_url(&meta.authorization_endpoint, "authorization endpoint")?;
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", "openid email profile")
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &challenge(verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(u.into())
    }

    /// Trades the authorization code for an ID token and validates it.
    pub async fn redeem(
        &self,
        client: &ClientConfig,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        nonce: &str,
        now_s: i64,
    ) -> Outcome<Claims> {
        let p = self.provider(&client.issuer, CACHE_FOR).await?;
        let id_token = self
            .token_request(&p.meta, client, code, redirect_uri, verifier)
            .await?;
        match validate(&id_token, &p, client, nonce, now_s) {
            Err(Invalid::KeyMiss) if p.fetched.elapsed() >= REFETCH_AFTER => {
                let fresh = self.provider(&client.issuer, REFETCH_AFTER).await?;
                validate(&id_token, &fresh, client, nonce, now_s).map_err(Into::into)
            }
            r => r.map_err(Into::into),
        }
    }

    async fn token_request(
        &self,
        meta: &Metadata,
        client: &ClientConfig,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Outcome<String> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let mut req = self.http.post(&meta.token_endpoint);
        if meta.wants_post() {
            // RFC 6749 §2.3.1: the credentials in the body.
            form.push(("client_id", &client.client_id));
            form.push(("client_secret", client.client_secret.expose_secret()));
        } else {
            // RFC 6749 §2.3.1: id and secret are form-encoded, then Basic.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            req = req.basic_auth(
                enc(&client.client_id),
                Some(enc(client.client_secret.expose_secret())),
            );
        }
        let res = req.form(&form).send().await.map_err(|e| {
            tracing::warn!(error = %e, "OIDC token endpoint unreachable");
            Refusal("the identity provider's token endpoint could not be reached".into())
        })?;
        let status = res.status();
        let body = read_bounded(res)
            .await
            .map_err(|_| Refusal("the identity provider's token answer was cut short".into()))?;
        #[derive(Deserialize)]
        struct TokenAnswer {
            id_token: Option<String>,
            error: Option<String>,
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
            Refusal(format!(
                "the identity provider's token endpoint answered {} without JSON",
                status.as_u16()
            ))
        })?;
        match (status.is_success(), answer.id_token, answer.error) {
            (true, Some(t), _) => Ok(t),
            (true, None, _) => refuse("the identity provider returned no ID token"),
            (false, _, e) => refuse(format!(
                "the identity provider refused the code ({})",
                printable(e.as_deref().unwrap_or("no reason given"))
            )),
        }
    }
}

enum Invalid {
    /// A token's key is not in the key set (perhaps rotated): worth one refetch.
    KeyMiss,
    Refused(Refusal),
}

impl From<Refusal> for Invalid {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

impl From<Invalid> for Refusal {
    fn from(i: Invalid) -> Self {
        match i {
            Invalid::KeyMiss => {
                Refusal("the ID token is signed with a key the provider does not publish".into())
            }
            Invalid::Refused(r) => r,
        }
    }
}

/// ID token validation, OIDC Core §3.1.3.7: signature by a published key
/// with an accepted algorithm (6–8), issuer (2), audience and authorized
/// party (3–5), expiry and issue time (9–10), nonce (11).
fn validate(
    token: &str,
    p: &Cached,
    client: &ClientConfig,
    nonce: &str,
    now_s: i64,
) -> std::result::Result<Claims, Invalid> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| Refusal("the ID token is not a signed JWT".into()))?;
    let alg_name = format!("{:?}", header.alg);
    if !ALGORITHMS.contains(&header.alg)
        || (!p.meta.id_token_signing_alg_values_supported.is_empty()
            && !p
                .meta
                .id_token_signing_alg_values_supported
                .contains(&alg_name))
    {
        return Err(Refusal(format!(
            "the ID token's algorithm {alg_name} is not accepted"
        ))
        .into());
    }
    let jwk = signing_key(&p.keys, header.kid.as_deref(), header.alg).ok_or(Invalid::KeyMiss)?;
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|_| Refusal("the provider's signing key cannot be read".into()))?;
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[client.issuer.as_str()]);
    v.set_audience(&[client.client_id.as_str()]);
    v.set_required_spec_claims(&["iss", "aud", "sub", "exp"]);
    // Times are checked below against Muster's clock, not the library's.
    v.validate_exp = false;
    v.validate_nbf = false;
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &v)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            Refusal(
                match e.kind() {
                    K::InvalidSignature => "the ID token's signature does not verify",
                    K::InvalidIssuer => "the ID token comes from another issuer",
                    K::InvalidAudience => "the ID token is meant for another application",
                    K::InvalidAlgorithm => "the ID token's algorithm does not match its key",
                    K::MissingRequiredClaim(_) => "the ID token lacks a required claim",
                    _ => "the ID token is not valid",
                }
                .into(),
            )
        })?
        .claims;
    let aud = claims.aud.values();
    if aud.len() > 1 && claims.azp.as_deref() != Some(client.client_id.as_str()) {
        return Err(Refusal("the ID token was issued to another party".into()).into());
    }
    if now_s >= claims.exp + LEEWAY_S {
        return Err(Refusal("the ID token has expired".into()).into());
    }
    if claims.iat > now_s + LEEWAY_S {
        return Err(Refusal("the ID token is issued in the future".into()).into());
    }
    let same_nonce = claims
        .nonce
        .as_deref()
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(nonce.as_bytes())));
    if !same_nonce {
        return Err(Refusal("the ID token's nonce is not this sign-in's".into()).into());
    }
    if claims.sub.is_empty() || claims.sub.len() > 255 {
        return Err(Refusal("the ID token's subject is not valid".into()).into());
    }
    Ok(claims)
}

/// The published key that signed: by `kid`, or the only signing key when the
/// token names none; its declared algorithm, if any, must be the token's.
fn signing_key<'a>(set: &'a JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<&'a Jwk> {
    let usable = |k: &&Jwk| {
        !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption))
            && k.common
                .key_algorithm
                .is_none_or(|a| format!("{a:?}") == format!("{alg:?}"))
    };
    match kid {
        Some(kid) => set
            .keys
            .iter()
            .filter(usable)
            .find(|k| k.common.key_id.as_deref() == Some(kid)),
        None => {
            let mut it = set.keys.iter().filter(usable);
            match (it.next(), it.next()) {
                (Some(k), None) => Some(k),
                _ => None,
            }
        }
    }
}

async fn read_bounded(mut res: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        if out.len() + chunk.len() > MAX_BODY {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A provider's error code, shown only as printable ASCII and short.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_follows_rfc_7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn only_https_or_loopback_http_urls_are_called() {
        assert!(check_url("https://accounts.google.com", "issuer").is_ok());
        assert!(check_url("http://127.0.0.1:8080/x", "issuer").is_ok());
        assert!(check_url("http://localhost:1", "issuer").is_ok());
        assert!(check_url("http://idp.example.com", "issuer").is_err());
        assert!(check_url("https://u:p@idp.example.com", "issuer").is_err());
        assert!(check_url("file:///etc/passwd", "issuer").is_err());
        assert!(check_url("not a url", "issuer").is_err());
    }
}
