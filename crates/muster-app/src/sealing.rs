//! The server key: secrets Muster must read back later (an organization's
//! OIDC client secret, a sign-in flow's PKCE verifier; TOTP seeds later) are
//! sealed with AES-256-GCM under it before they are stored.
//!
//! The key lives in `<data dir>/server.key`, made on first start. Every
//! instance sharing one database must use the same file.

use crate::{AppError, Result};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use std::path::Path;

/// Sealed values start with this, so a later key or cipher can be told apart.
const VERSION: &str = "v1.";

pub struct ServerKey {
    key: LessSafeKey,
    /// For values that must be stable and unguessable (not secret-bearing):
    /// a key derived from the same bytes, never used for sealing.
    mac: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(..)")
    }
}

impl ServerKey {
    fn from_bytes(bytes: &[u8; 32]) -> Self {
        // AES-256 takes any 32 bytes: the only error is a wrong length.
        let unbound =
            UnboundKey::new(&AES_256_GCM, bytes).unwrap_or_else(|_| unreachable_key_length());
        let derived = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, bytes),
            b"muster mac key",
        );
        Self {
            key: LessSafeKey::new(unbound),
            mac: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, derived.as_ref()),
        }
    }

    /// HMAC-SHA-256 of `data` under `context`: the same input always gives
    /// the same bytes, which no one without the server key can compute.
    pub fn mac(&self, context: &str, data: &str) -> Vec<u8> {
        aws_lc_rs::hmac::sign(&self.mac, format!("{context}\0{data}").as_bytes())
            .as_ref()
            .to_vec()
    }

    /// The Ed25519 key that signs audit checkpoints, derived from the server
    /// key: every instance that shares the key signs alike, and the public
    /// half (`muster audit verify` prints it) lets anyone check an archive.
    pub fn checkpoint_signer(&self) -> Option<aws_lc_rs::signature::Ed25519KeyPair> {
        let seed = self.mac("audit-checkpoint-ed25519", "");
        aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed).ok()
    }

    /// A key that lives as long as the process (tests, and the CLI's
    /// commands that seal nothing).
    pub fn ephemeral() -> Self {
        let mut b = [0u8; 32];
        rand::rng().fill_bytes(&mut b);
        Self::from_bytes(&b)
    }

    /// Reads the key file, or makes it (readable by the owner only) when absent.
    pub fn load_or_create(path: &Path) -> std::result::Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = URL_SAFE_NO_PAD
                    .decode(text.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| format!("{} is not a Muster server key", path.display()))?;
                Ok(Self::from_bytes(&bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = [0u8; 32];
                rand::rng().fill_bytes(&mut b);
                write_private(path, &URL_SAFE_NO_PAD.encode(b))
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Ok(Self::from_bytes(&b))
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Seals `plain`, bound to `context` (say `sso:<org id>`): a sealed value
    /// copied to another row does not open there.
    pub fn seal(&self, context: &str, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut buf = plain.as_bytes().to_vec();
        // Sealing fails only for inputs over 64 GiB.
        if self
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .is_err()
        {
            buf.clear();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("{VERSION}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens what `seal` made under the same key and context.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String> {
        let broken = || {
            tracing::error!(
                context,
                "a sealed secret does not open with this server key"
            );
            AppError::Refused(
                "a stored secret cannot be read with this server's key; set it again".into(),
            )
        };
        let raw = sealed
            .strip_prefix(VERSION)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .ok_or_else(broken)?;
        let (nonce, body) = raw.split_at_checked(NONCE_LEN).ok_or_else(broken)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| broken())?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
            .map_err(|_| broken())?;
        String::from_utf8(plain.to_vec()).map_err(|_| broken())
    }
}

fn unreachable_key_length() -> UnboundKey {
    // 32 bytes is AES-256's key length; aws-lc refuses only other lengths.
    #[allow(clippy::panic)]
    {
        panic!("AES-256 key of 32 bytes refused")
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let k = ServerKey::ephemeral();
        let s = k.seal("sso:o1", "client-secret");
        assert!(s.starts_with("v1.") && !s.contains("client-secret"));
        assert_eq!(k.open("sso:o1", &s).unwrap(), "client-secret");
        assert_ne!(
            s,
            k.seal("sso:o1", "client-secret"),
            "a fresh nonce each time"
        );
        assert!(k.open("sso:o2", &s).is_err(), "another row's context");
        assert!(
            ServerKey::ephemeral().open("sso:o1", &s).is_err(),
            "another key"
        );
        let mut tampered = s.clone();
        tampered.pop();
        tampered.push(if s.ends_with('A') { 'B' } else { 'A' });
        assert!(k.open("sso:o1", &tampered).is_err());
        assert!(k.open("sso:o1", "v1.").is_err() && k.open("sso:o1", "plain").is_err());
    }

    #[test]
    fn the_key_file_is_made_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("muster-key-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.key");
        let a = ServerKey::load_or_create(&path).unwrap();
        let b = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(b.open("c", &a.seal("c", "x")).unwrap(), "x");
        std::fs::write(&path, "not a key").unwrap();
        assert!(ServerKey::load_or_create(&path).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
