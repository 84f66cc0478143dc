//! Waiting in poll(2) on several file descriptors at once (a netlink socket or an inotify queue, and
//! the stop's wake pipe), so that a source sleeps until something happens instead of on a timer.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Waits until one of `fds` can be read (or has an error or hang-up to report), for at most
/// `timeout` (`None`: no limit). Which are ready, or `None` when the time ran out first.
pub fn wait_readable(fds: &[RawFd], timeout: Option<Duration>) -> io::Result<Option<Vec<bool>>> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let timeout_ms = timeout.map_or(-1, |timeout| {
        i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX)
    });
    loop {
        // SAFETY: valid pollfds for the duration of the call.
        let ready = unsafe {
            libc::poll(
                polled.as_mut_ptr(),
                polled.len() as libc::nfds_t,
                timeout_ms,
            )
        };
        match ready {
            1.. => return Ok(Some(polled.iter().map(|fd| fd.revents != 0).collect())),
            0 => return Ok(None),
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn says_which_descriptor_is_ready_or_that_time_ran_out() {
        let (quiet, _quiet_writer) = std::io::pipe().unwrap();
        let (ready, mut writer) = std::io::pipe().unwrap();
        let fds = [quiet.as_raw_fd(), ready.as_raw_fd()];
        assert_eq!(
            wait_readable(&fds, Some(Duration::from_millis(10))).unwrap(),
            None
        );
        writer.write_all(b"x").unwrap();
        assert_eq!(wait_readable(&fds, None).unwrap(), Some(vec![false, true]));
    }
}
