//! The systemd notification protocol (sd_notify): datagrams such as `READY=1` to the socket
//! named by `$NOTIFY_SOCKET`. Sent without blocking: a service manager that does not read
//! (or a full socket queue) must never stall the daemon.
//!
//! May not: fail the daemon; without `$NOTIFY_SOCKET` every call does nothing.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Sends one notification, e.g. `"READY=1"` or `"STATUS=3 queued"`.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let addr = match path.strip_prefix('@') {
        Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
        None => SocketAddr::from_pathname(&path),
    };
    let result = addr.and_then(|addr| {
        let sock = UnixDatagram::unbound()?;
        sock.set_nonblocking(true)?;
        sock.send_to_addr(state.as_bytes(), &addr)
    });
    if let Err(e) = result {
        tracing::debug!("sd_notify {state:?} not sent: {e}");
    }
}

/// `READY=1`.
pub fn ready() {
    notify("READY=1");
}

/// `RELOADING=1` with the monotonic time systemd 253+ wants beside it.
pub fn reloading() {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000;
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
}

/// `STOPPING=1`.
pub fn stopping() {
    notify("STOPPING=1");
}

/// `STATUS=...` (one line).
pub fn status(line: &str) {
    notify(&format!("STATUS={}", line.replace('\n', " ")));
}

/// `WATCHDOG=1`.
pub fn watchdog() {
    notify("WATCHDOG=1");
}

/// The watchdog interval systemd asked for (`$WATCHDOG_USEC`, for this process).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
    {
        if pid != std::process::id() {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_socket_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&p).unwrap();
        std::env::set_var("NOTIFY_SOCKET", &p);
        let start = std::time::Instant::now();
        for i in 0..500 {
            status(&format!("{i} queued"));
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "blocked on a full queue"
        );
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STATUS=0 queued");
        std::env::remove_var("NOTIFY_SOCKET");
    }
}
