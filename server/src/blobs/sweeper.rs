//! The sweep of attachment bytes nobody needs: unfinished uploads that
//! expired and blobs no request references after a grace period, as a
//! deployment's [`BlobRetention`] says (see [`super`]).

use crate::storage::{BlobRetention, Storage};

/// Sweeps unfinished uploads and unreferenced blobs every `every`, as
/// `policy` says, until the server stops (a task of its own; a failed
/// sweep is logged and tried again at the next tick).
pub async fn run(
    storage: std::sync::Arc<dyn Storage>,
    policy: BlobRetention,
    every: std::time::Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let storage = storage.clone();
        let swept = tokio::task::spawn_blocking(move || storage.sweep_blobs(now(), &policy)).await;
        match swept {
            Ok(Ok(s)) if s.uploads + s.blobs > 0 => {
                tracing::info!(
                    uploads = s.uploads,
                    blobs = s.blobs,
                    "expired uploads and unreferenced attachments removed"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the attachment sweep failed"),
            Err(_) => tracing::warn!("the attachment sweep stopped unexpectedly"),
        }
    }
}

/// Unix seconds (every time of blobs is in seconds).
fn now() -> i64 {
    sambung_core::Timestamp::now().as_millis() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sweeper task sweeps by itself: an unfinished upload older than
    /// its policy disappears without anyone calling the sweep.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sweeper_removes_expired_uploads_on_its_own() {
        use crate::storage::{SqliteStorage, Uploader};
        let dir = tempfile::tempdir().unwrap();
        let storage: std::sync::Arc<dyn Storage> =
            std::sync::Arc::new(SqliteStorage::open(dir.path()).unwrap());
        let data = [7u8; 100];
        let sha: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, &data)
            .as_ref()
            .try_into()
            .unwrap();
        let uploader = Uploader {
            account: "warga-1".into(),
            device: [1; 16],
        };
        let held =
            crate::blobs::append_chunk(&*storage, &sha, &uploader, 100, 0, &data[..40], now() - 10)
                .unwrap();
        assert_eq!((held.received, held.complete), (40, false));
        assert_eq!(
            storage.blob_missing(&sha, 100, &uploader).unwrap(),
            Some(40)
        );
        let policy = BlobRetention {
            upload_max_age: 5,
            unreferenced_grace: 5,
        };
        let task = tokio::spawn(run(
            storage.clone(),
            policy,
            std::time::Duration::from_millis(20),
        ));
        let mut left = Some(40);
        for _ in 0..100 {
            left = storage.blob_missing(&sha, 100, &uploader).unwrap();
            if left == Some(0) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        task.abort();
        assert_eq!(left, Some(0), "the expired upload was swept");
    }
}
