//! Queue names and the path they map to under /dev/shm.
use std::path::PathBuf;

use super::error::RingError;

pub const SHM_DIR: &str = "/dev/shm";

/// Accepts names that can only ever mean one plain file directly in /dev/shm.
pub fn check_name(name: &str) -> Result<(), RingError> {
    let bad = |why| {
        Err(RingError::BadName {
            name: name.to_owned(),
            why,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 200 {
        return bad("it is longer than 200 bytes");
    }
    if name.contains('/') {
        return bad("it contains '/'");
    }
    if name.contains("..") {
        return bad("it contains '..'");
    }
    if name.starts_with('.') {
        return bad("it starts with '.'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("it contains a character other than A-Z a-z 0-9 . _ -");
    }
    Ok(())
}

pub fn path_of(name: &str) -> Result<PathBuf, RingError> {
    check_name(name)?;
    Ok(PathBuf::from(SHM_DIR).join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["trade_queue", "a", "BTC-1.q", "x".repeat(200).as_str()] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a/b", "/x", "..", "a..b", ".hidden", "sp ace", "nul\0", "é"] {
            assert_eq!(check_name(bad).unwrap_err().code(), "E_BAD_NAME", "{bad:?}");
        }
        assert_eq!(check_name(&"x".repeat(201)).unwrap_err().code(), "E_BAD_NAME");
        assert_eq!(path_of("q").unwrap(), PathBuf::from("/dev/shm/q"));
    }
}
