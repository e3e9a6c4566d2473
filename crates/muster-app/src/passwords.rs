//! Password hashing: argon2id on a small fixed set of threads.
//!
//! Off the async runtime, so a burst of sign-ins queues here instead of
//! starving other requests. Each thread owns one argon2 memory buffer (19 MiB
//! with the default parameters) and reuses it: allocating it per hash makes
//! glibc raise its mmap threshold and keep every freed buffer, which we saw
//! grow the server to 400 MB after a thousand hashes.

use crate::{AppError, Result};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use rand::Rng;
use subtle::ConstantTimeEq;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

#[derive(Clone)]
pub struct Hasher {
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// A hash of nothing anyone knows, checked when there is no account, so
    /// that an unknown address costs exactly what a known one does.
    decoy: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

const OUTPUT_LEN: usize = 32;

fn default_params() -> Params {
    Params::DEFAULT
}

impl Hasher {
    pub fn new(threads: usize) -> Self {
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(4096);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("muster-hash-{i}"))
                .spawn(move || {
                    // Sized by the first hash, so a process that never hashes
                    // (the CLI's import, say) never holds the 19 MiB per thread.
                    let mut memory: Vec<Block> = Vec::new();
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => return, // every sender is gone: shut down
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Self {
            jobs,
            decoy: std::sync::Arc::default(),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |m| {
            let _ = tx.send(f(m));
        });
        // Queued without leaving the task while there is room (every hash
        // handed to a blocking thread first cost each sign-in two more
        // thread wake-ups); only a full queue (4096 hashes) is waited on,
        // and off the runtime.
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(job)) => {
                let jobs = self.jobs.clone();
                tokio::task::spawn_blocking(move || jobs.send(job))
                    .await
                    .ok()?
                    .ok()?;
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return None,
        }
        rx.await.ok()
    }

    /// A PHC string: `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`.
    pub async fn hash(&self, pw: String) -> Result<String> {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        self.run(move |memory| {
            let params = default_params();
            if memory.len() < params.block_count() {
                memory.resize(params.block_count(), Block::default());
            }
            let mut out = [0u8; OUTPUT_LEN];
            let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
            let blocks = memory.get_mut(..params.block_count())?;
            a.hash_password_into_with_memory(pw.as_bytes(), &salt, &mut out, blocks)
                .ok()?;
            Some(format!(
                "$argon2id$v=19$m={},t={},p={}${}${}",
                params.m_cost(),
                params.t_cost(),
                params.p_cost(),
                B64.encode(salt),
                B64.encode(out)
            ))
        })
        .await
        .flatten()
        .ok_or_else(|| AppError::Refused("could not hash the password".into()))
    }

    /// Checks `pw` against the account's hash, or — when there is no account
    /// or no password — against a decoy with the same parameters, and fails.
    pub async fn verify_or_decoy(&self, pw: String, phc: Option<String>) -> bool {
        match phc {
            Some(phc) => self.verify(pw, phc).await,
            None => {
                let decoy = self
                    .decoy
                    .get_or_try_init(|| self.hash(crate::secrets::random_secret()))
                    .await;
                if let Ok(d) = decoy {
                    let _ = self.verify(pw, d.clone()).await;
                }
                false
            }
        }
    }

    /// Checks `pw` against a PHC string; any malformed hash is simply a mismatch.
    pub async fn verify(&self, pw: String, phc: String) -> bool {
        self.run(move |memory| verify_with(&pw, &phc, memory).unwrap_or(false))
            .await
            .unwrap_or(false)
    }
}

fn verify_with(pw: &str, phc: &str, memory: &mut Vec<Block>) -> Option<bool> {
    let mut parts = phc.split('$');
    let (_, alg, ver, params, salt, hash) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if alg != "argon2id" || ver != "v=19" || parts.next().is_some() {
        return None;
    }
    let mut m = None;
    let mut t = None;
    let mut p = None;
    for kv in params.split(',') {
        let (k, v) = kv.split_once('=')?;
        let v: u32 = v.parse().ok()?;
        match k {
            "m" => m = Some(v),
            "t" => t = Some(v),
            "p" => p = Some(v),
            _ => return None,
        }
    }
    let salt = B64.decode(salt).ok()?;
    let expected = B64.decode(hash).ok()?;
    let params = Params::new(m?, t?, p?, Some(expected.len())).ok()?;
    if memory.len() < params.block_count() {
        // Hashed with other parameters than ours: a one-off buffer.
        memory.resize(params.block_count(), Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let blocks = memory.get_mut(..params.block_count())?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(pw.as_bytes(), &salt, &mut out, blocks)
        .ok()?;
    Some(out.ct_eq(&expected).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2id_hashes_verify_and_refuse_the_wrong_password() {
        let hasher = Hasher::new(1);
        let h = hasher.hash("Str0ng!pass".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(hasher.verify("Str0ng!pass".into(), h.clone()).await);
        assert!(!hasher.verify("Str0ng!pasS".into(), h.clone()).await);
        let other = hasher.hash("Str0ng!pass".into()).await.unwrap();
        assert_ne!(h, other, "salted");
    }

    #[tokio::test]
    async fn hashes_from_the_argon2_crate_verify_too() {
        use argon2::PasswordHasher;
        let h = Argon2::default()
            .hash_password(b"Str0ng!pass")
            .unwrap()
            .to_string();
        let hasher = Hasher::new(1);
        assert!(hasher.verify("Str0ng!pass".into(), h.clone()).await);
        assert!(!hasher.verify("nope".into(), h).await);
        assert!(!hasher.verify("x".into(), "$argon2id$garbage".into()).await);
    }
}
