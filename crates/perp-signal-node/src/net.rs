//! TCP keepalive timing of a socket Node owns (by fd); see perp_signal_core::keepalive.
use napi::{Env, Result};
use napi_derive::napi;
use perp_signal_core::keepalive::{self, Keepalive, KeepaliveError};

use crate::error;

#[napi(object)]
pub struct TcpKeepaliveJs {
    pub enabled: bool,
    pub idle_secs: u32,
    pub interval_secs: u32,
    pub count: u32,
    pub user_timeout_ms: u32,
}

fn fail(env: &Env, e: KeepaliveError) -> napi::Error {
    error::throw(env, e.code(), &e.to_string())
}

/// Turns keepalive on for socket `fd` with the given timing (ms, rounded up to whole seconds) and
/// TCP_USER_TIMEOUT = idle + count x interval; returns what was set.
#[napi]
pub fn set_tcp_keepalive(
    env: Env,
    fd: i32,
    idle_ms: u32,
    interval_ms: u32,
    count: u32,
) -> Result<TcpKeepaliveJs> {
    let k = Keepalive::from_ms(idle_ms, interval_ms, count).map_err(|e| fail(&env, e))?;
    keepalive::set_keepalive(fd, &k).map_err(|e| fail(&env, e))?;
    Ok(to_js(k))
}

/// The keepalive timing of socket `fd` as the kernel has it.
#[napi]
pub fn tcp_keepalive(env: Env, fd: i32) -> Result<TcpKeepaliveJs> {
    keepalive::keepalive(fd).map(to_js).map_err(|e| fail(&env, e))
}

fn to_js(k: Keepalive) -> TcpKeepaliveJs {
    TcpKeepaliveJs {
        enabled: k.enabled,
        idle_secs: k.idle_secs,
        interval_secs: k.interval_secs,
        count: k.count,
        user_timeout_ms: k.user_timeout_ms,
    }
}
