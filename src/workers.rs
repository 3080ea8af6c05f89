//! The data plane's threads. With `--threads N` (N > 1) N worker threads each run a
//! current-thread runtime and accept on every listener (`proxy/accept/spread.rs`), so a
//! connection lives its whole life on the thread that accepted it: no work stealing, no
//! cross-thread wake-up on the request path, and upstream connections pooled per worker. The
//! control plane (Marathon, the admin port, health checks) stays on the main thread's runtime.
//! With one thread (and in in-process tests, which start no workers) everything runs on the
//! caller's runtime.

use std::cell::Cell;
use std::sync::OnceLock;

use tokio::runtime::Handle;

/// The workers' runtimes, once started.
static WORKERS: OnceLock<Vec<Handle>> = OnceLock::new();

thread_local! {
    /// This thread's place among the workers (0 on any other thread).
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// Starts `count` worker threads (none when `count` is 1: the caller's runtime serves). Call
/// once, before any listener is opened.
pub fn start(count: usize) -> std::io::Result<()> {
    if count <= 1 || WORKERS.get().is_some() {
        return Ok(());
    }
    let mut handles = Vec::with_capacity(count);
    for index in 0..count {
        let (sent, handle) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name(format!("switchyard-worker-{index}"))
            .spawn(move || {
                INDEX.with(|i| i.set(index));
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = sent.send(Err(err));
                        return;
                    }
                };
                let _ = sent.send(Ok(runtime.handle().clone()));
                // Runs what listeners spawn here until the process exits.
                runtime.block_on(std::future::pending::<()>());
            })?;
        let handle = handle
            .recv()
            .map_err(|_| std::io::Error::other("a worker thread ended at start"))??;
        handles.push(handle);
    }
    let _ = WORKERS.set(handles);
    Ok(())
}

/// How many workers serve connections (1 without worker threads).
pub fn count() -> usize {
    WORKERS.get().map_or(1, Vec::len)
}

/// This thread's worker (0 outside worker threads): what per-worker state is indexed by.
pub fn index() -> usize {
    INDEX.with(Cell::get)
}

/// The workers' runtimes (none without worker threads: the caller's runtime serves).
pub fn handles() -> &'static [Handle] {
    WORKERS.get().map_or(&[], Vec::as_slice)
}
