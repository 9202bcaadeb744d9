//! The one place where core errors become JS errors. The thrown JS `Error` carries `code` = the
//! core's stable code, so callers branch on `err.code`, never on message text.
//!
//! napi-rs only derives `code` from its own `Status` enum, so we throw through the env with our
//! code and hand napi-rs a `PendingException`, which it then leaves alone.
use napi::{Env, Error, Status};
use perp_signal_core::CodecError;

pub fn throw(env: &Env, code: &str, msg: &str) -> Error {
    match env.throw_error(msg, Some(code)) {
        Ok(()) => Error::new(Status::PendingException, msg.to_owned()),
        // Throwing failed (env tearing down): fall back to napi-rs's own error.
        Err(e) => e,
    }
}

pub fn codec(env: &Env, e: CodecError) -> Error {
    throw(env, e.code(), &e.to_string())
}

pub fn invalid_arg(env: &Env, msg: &str) -> Error {
    throw(env, "E_INVALID_ARG", msg)
}
