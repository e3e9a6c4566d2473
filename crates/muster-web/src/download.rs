//! Downloads written a part at a time (the audit export, the console's user
//! export): a task makes the parts and the response body sends each as the
//! client takes it, at most a few waiting, so a large export is never held
//! in memory and the download starts at once.

use axum::body::Body;
use std::future::Future;

/// Where the task sends the parts; a failed send means the client went away.
pub(crate) type Parts = tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>;

/// A body fed by `fill`, run as its own task. When `fill` fails, the body
/// ends with an error, so the client sees a broken download rather than a
/// short file that looks whole; `what` names the export in the log.
pub(crate) fn streamed<F, Fut, E>(what: &'static str, fill: F) -> Body
where
    F: FnOnce(Parts) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let filling = fill(tx.clone());
    tokio::spawn(async move {
        if let Err(e) = filling.await {
            tracing::warn!(error = %e, export = what, "an export stopped early");
            let _ = tx
                .send(Err(std::io::Error::other("the export stopped early")))
                .await;
        }
    });
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|part| (part, rx))
    }))
}
