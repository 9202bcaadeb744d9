//! TCP keepalive timing for sockets another runtime owns (Node's libuv sets only the idle time, so
//! a vanished peer would be probed for the system's ~11 minutes). The caller passes its fd number;
//! we never wrap a borrowed raw fd (that needs `unsafe`): we duplicate it through a pidfd of our own
//! process (`pidfd_open(getpid())` + `pidfd_getfd`, Linux >= 5.6, always allowed on oneself) and
//! set the options on the duplicate, which shares the socket, then close the duplicate.
use std::io;

/// Keepalive timing of one socket. Linux counts idle and interval in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// SO_KEEPALIVE.
    pub enabled: bool,
    /// TCP_KEEPIDLE: quiet time before the first probe, seconds.
    pub idle_secs: u32,
    /// TCP_KEEPINTVL: time between probes, seconds.
    pub interval_secs: u32,
    /// TCP_KEEPCNT: unanswered probes before the connection is dropped.
    pub count: u32,
    /// TCP_USER_TIMEOUT: ms that sent data may stay unacknowledged (and, with keepalive, the
    /// bound on probing) before the connection is dropped; 0 = the system's default.
    pub user_timeout_ms: u32,
}

impl Keepalive {
    /// From milliseconds as a user gives them: idle and interval rounded up to whole seconds (at
    /// least 1), and the user timeout set to idle + count x interval, so a peer that vanished is
    /// dropped at the same moment whether data was in flight or not.
    pub fn from_ms(idle_ms: u32, interval_ms: u32, count: u32) -> Result<Self, KeepaliveError> {
        if count == 0 {
            return Err(KeepaliveError::Invalid(
                "the probe count must be at least 1".into(),
            ));
        }
        let secs = |ms: u32| ms.div_ceil(1000).max(1);
        let (idle_secs, interval_secs) = (secs(idle_ms), secs(interval_ms));
        let user_timeout_ms = idle_secs
            .saturating_add(interval_secs.saturating_mul(count))
            .saturating_mul(1000);
        Ok(Keepalive {
            enabled: true,
            idle_secs,
            interval_secs,
            count,
            user_timeout_ms,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeepaliveError {
    #[error("invalid keepalive setting: {0}")]
    Invalid(String),
    #[error(
        "cannot reach fd {fd} of this process through a pidfd ({source}); needs Linux >= 5.6 with \
         pidfd_open/pidfd_getfd allowed (e.g. by the container's seccomp profile)"
    )]
    Duplicate { fd: i32, source: io::Error },
    #[error("{what} on fd {fd}: {source}")]
    Sockopt {
        what: &'static str,
        fd: i32,
        source: io::Error,
    },
    #[error("TCP keepalive timing can only be set on Linux")]
    Unsupported,
}

impl KeepaliveError {
    /// Stable code for the JS error.
    pub fn code(&self) -> &'static str {
        match self {
            KeepaliveError::Invalid(_) => "E_INVALID_ARG",
            KeepaliveError::Duplicate { .. } => "E_PIDFD",
            KeepaliveError::Sockopt { .. } => "E_SOCKOPT",
            KeepaliveError::Unsupported => "E_UNSUPPORTED",
        }
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::{Keepalive, KeepaliveError};
    use rustix::fd::OwnedFd;
    use rustix::net::sockopt;
    use rustix::process::{getpid, pidfd_getfd, pidfd_open, PidfdFlags, PidfdGetfdFlags};
    use std::time::Duration;

    fn duplicate(fd: i32) -> Result<OwnedFd, KeepaliveError> {
        let err = |e: rustix::io::Errno| KeepaliveError::Duplicate { fd, source: e.into() };
        let pidfd = pidfd_open(getpid(), PidfdFlags::empty()).map_err(err)?;
        pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()).map_err(err)
    }

    fn check<T>(what: &'static str, fd: i32, r: rustix::io::Result<T>) -> Result<T, KeepaliveError> {
        r.map_err(|e| KeepaliveError::Sockopt {
            what,
            fd,
            source: e.into(),
        })
    }

    pub fn set(fd: i32, k: &Keepalive) -> Result<(), KeepaliveError> {
        let s = duplicate(fd)?;
        check("SO_KEEPALIVE", fd, sockopt::set_socket_keepalive(&s, k.enabled))?;
        if !k.enabled {
            return Ok(());
        }
        let idle = Duration::from_secs(u64::from(k.idle_secs));
        check("TCP_KEEPIDLE", fd, sockopt::set_tcp_keepidle(&s, idle))?;
        let interval = Duration::from_secs(u64::from(k.interval_secs));
        check("TCP_KEEPINTVL", fd, sockopt::set_tcp_keepintvl(&s, interval))?;
        check("TCP_KEEPCNT", fd, sockopt::set_tcp_keepcnt(&s, k.count))?;
        check(
            "TCP_USER_TIMEOUT",
            fd,
            sockopt::set_tcp_user_timeout(&s, k.user_timeout_ms),
        )
    }

    pub fn get(fd: i32) -> Result<Keepalive, KeepaliveError> {
        let s = duplicate(fd)?;
        let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        Ok(Keepalive {
            enabled: check("SO_KEEPALIVE", fd, sockopt::socket_keepalive(&s))?,
            idle_secs: secs(check("TCP_KEEPIDLE", fd, sockopt::tcp_keepidle(&s))?),
            interval_secs: secs(check("TCP_KEEPINTVL", fd, sockopt::tcp_keepintvl(&s))?),
            count: check("TCP_KEEPCNT", fd, sockopt::tcp_keepcnt(&s))?,
            user_timeout_ms: check("TCP_USER_TIMEOUT", fd, sockopt::tcp_user_timeout(&s))?,
        })
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::{Keepalive, KeepaliveError};
    pub fn set(_fd: i32, _k: &Keepalive) -> Result<(), KeepaliveError> {
        Err(KeepaliveError::Unsupported)
    }
    pub fn get(_fd: i32) -> Result<Keepalive, KeepaliveError> {
        Err(KeepaliveError::Unsupported)
    }
}

/// Sets `k` on the TCP socket `fd` of this process.
pub fn set_keepalive(fd: i32, k: &Keepalive) -> Result<(), KeepaliveError> {
    imp::set(fd, k)
}

/// Reads the keepalive timing of the TCP socket `fd` of this process.
pub fn keepalive(fd: i32) -> Result<Keepalive, KeepaliveError> {
    imp::get(fd)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn sets_and_reads_back_the_timing_on_an_accepted_socket() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let _c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let k = Keepalive::from_ms(2500, 1000, 3).unwrap();
        assert_eq!((k.idle_secs, k.interval_secs, k.user_timeout_ms), (3, 1, 6000));
        set_keepalive(s.as_raw_fd(), &k).unwrap();
        assert_eq!(keepalive(s.as_raw_fd()).unwrap(), k);
    }

    #[test]
    fn a_bad_fd_or_count_is_a_clear_error() {
        assert!(matches!(
            Keepalive::from_ms(1000, 1000, 0),
            Err(KeepaliveError::Invalid(_))
        ));
        let e = keepalive(1_000_000).unwrap_err();
        assert_eq!(e.code(), "E_PIDFD");
        assert!(e.to_string().contains("fd 1000000"), "{e}");
    }
}
