//! `--post-rotate CMD`: `sh -c CMD` with the rotated file as `$1`, run by
//! the background worker after each rotation, in its own process group.
//! Failures are reported, never fatal, and a command still running when the
//! flusher stops gets a grace period, then is killed.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::report;

/// Run `sh -c CMD` with the rotated file as `$1`, in its own process group;
/// failures are reported, never fatal. Once `stopping` is set it has
/// `grace` left before its group is killed.
pub fn post_rotate(cmd: &str, path: &Path, stopping: &AtomicBool, grace: Duration) {
    let spawned = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .arg("ringflush-post-rotate")
        .arg(path)
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return report::stderr(format_args!("--post-rotate {cmd:?} could not run: {e}")),
    };
    let mut kill_at = None;
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return,
            Ok(Some(s)) => {
                let path = path.display();
                return report::stderr(format_args!(
                    "--post-rotate {cmd:?} for {path} failed: {s}"
                ));
            }
            Ok(None) => {}
            Err(e) => return report::stderr(format_args!("--post-rotate {cmd:?}: wait: {e}")),
        }
        if stopping.load(Ordering::Relaxed) {
            let at = *kill_at.get_or_insert_with(|| Instant::now() + grace);
            if Instant::now() >= at {
                // SAFETY: kill has no memory-safety preconditions; the
                // negative pid names the command's own process group.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                return report::stderr(format_args!(
                    "--post-rotate {cmd:?} for {} still ran {grace:?} after the flusher was asked to stop: killed",
                    path.display()
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::mpsc::channel;

    #[test]
    fn a_hung_post_rotate_command_cannot_hold_up_the_exit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log.2024-03-04");
        fs::write(&p, "x").unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let stopping = AtomicBool::new(true);
            post_rotate("sleep 600", &p, &stopping, Duration::from_millis(100));
            tx.send(()).unwrap();
        });
        // A bound on a hang, not a timing assertion: without the kill the
        // command runs for ten minutes.
        assert!(rx.recv_timeout(Duration::from_secs(60)).is_ok());
    }
}
