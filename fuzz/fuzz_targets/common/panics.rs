//! The panic policy of every target that hands hostile bytes to Automerge.

/// Installs a panic hook that aborts (so libFuzzer reports a crash) on any
/// panic outside the `automerge` crate. Automerge panics on some hostile
/// bytes; the server catches those per document and refuses it, and the
/// targets catch them the same way, so only those are let through. Any
/// other panic — in our code — aborts the run.
pub fn abort_unless_in_automerge() {
    std::panic::set_hook(Box::new(|info| {
        let in_automerge = info
            .location()
            .is_some_and(|l| l.file().contains("/automerge-"));
        eprintln!("panic: {info}");
        if !in_automerge {
            std::process::abort();
        }
    }));
}
