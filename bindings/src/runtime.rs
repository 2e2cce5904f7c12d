//! The library's own tokio runtime. Exported async calls hand their work to
//! it and await the result, so they run the same from Kotlin coroutines,
//! Swift async and Python asyncio, on no runtime of the caller's; blocking
//! store work goes to its blocking pool, never to the caller's thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::error::SambungError;

pub(crate) fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            // A phone has few cores; sync is I/O bound.
            .worker_threads(2)
            .thread_name("sambung")
            .enable_all()
            .build()
            // Without threads nothing here can work; there is no error to
            // return from a static initialiser. Caught by `guard` as internal.
            .expect("the sambung runtime could not start")
    })
}

/// A task on the library's runtime, aborted when its handle is dropped: a
/// caller that cancels (a Kotlin coroutine, a Swift task, an asyncio task)
/// stops the work, not just the wait.
pub(crate) struct Task<T>(JoinHandle<T>);

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for Task<Result<T, SambungError>> {
    type Output = Result<T, SambungError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.0).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(r)) => Poll::Ready(r),
            Poll::Ready(Err(e)) if e.is_cancelled() => Poll::Ready(Err(SambungError::Cancelled)),
            Poll::Ready(Err(_)) => Poll::Ready(Err(SambungError::internal())),
        }
    }
}

/// Runs blocking work (SQLite, cryptography) on the runtime's blocking pool.
pub(crate) fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SambungError> + Send + 'static,
) -> Task<Result<T, SambungError>> {
    Task(runtime().spawn_blocking(move || crate::error::guard(f)))
}

/// Runs async work (the network) on the runtime.
pub(crate) fn spawn<T: Send + 'static>(
    f: impl Future<Output = Result<T, SambungError>> + Send + 'static,
) -> Task<Result<T, SambungError>> {
    Task(runtime().spawn(f))
}
