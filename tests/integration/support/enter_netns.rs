//! Entering a network namespace from a test: one thread at a time, never the whole test process.
//! Kept apart (no other support module used) so that the fake API, which the benches include too,
//! can listen inside a namespace.

use std::os::fd::AsRawFd;

/// Runs `body` on a thread that has entered the network namespace `name` (made by `ip netns add`):
/// the sockets it opens live there and stay there, whichever thread uses them later. The test process
/// itself never leaves its own namespace.
pub fn in_netns<T: Send>(name: &str, body: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let namespace = std::fs::File::open(format!("/run/netns/{name}"))
                    .unwrap_or_else(|error| panic!("open network namespace {name}: {error}"));
                // SAFETY: a valid namespace file descriptor; only this thread changes namespace.
                let entered = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(
                    entered,
                    0,
                    "setns {name}: {}",
                    std::io::Error::last_os_error()
                );
                body()
            })
            .join()
            .expect("the thread in the namespace panicked")
    })
}
