//! The shared mapping of a ring file and the few file operations around it (open without following
//! symlinks, open-file-description locks). Every raw pointer of the ring lives here.
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Arc;

use super::error::RingError;

pub fn io_err(op: &'static str, path: &Path, source: io::Error) -> RingError {
    RingError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

/// Opens an existing file read-write; fails with ELOOP instead of following a symlink.
pub fn open_existing(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Creates a new file with mode 0600; fails if anything (file or symlink) has the name.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn lock_request(kind: libc::c_int, byte: i64) -> libc::flock {
    libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: byte,
        l_len: 1,
        l_pid: 0,
    }
}

/// Takes the exclusive lock on one byte of the file; Ok(false) if someone else holds it. The lock
/// belongs to this open file description and goes away when the file is closed or we die.
pub fn try_lock(file: &File, byte: i64) -> io::Result<bool> {
    let mut req = lock_request(libc::F_WRLCK, byte);
    // SAFETY: fcntl with F_OFD_SETLK reads the flock struct we own for the duration of the call;
    // the fd is open for as long as `file` lives.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut req) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

/// True if another open file description holds a lock on `byte`.
pub fn is_locked(file: &File, byte: i64) -> io::Result<bool> {
    let mut req = lock_request(libc::F_WRLCK, byte);
    // SAFETY: as in try_lock; F_OFD_GETLK writes only into `req`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut req) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(req.l_type != libc::F_UNLCK as libc::c_short)
}

/// True if `path` still names the very file we have open (same device and inode, not a symlink).
pub fn still_named(path: &Path, file: &File) -> bool {
    match (std::fs::symlink_metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The mapped bytes themselves, unmapped when the last owner goes away. Held in an `Arc` so a
/// reader outside Rust (the Node binding's JS view of the ring) can keep them mapped after the
/// consumer that created them is closed.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the region is plain shared memory with no thread affinity; all shared mutable state in
// it is accessed through atomics or under the SPSC protocol of the ring.
unsafe impl Send for Region {}
// SAFETY: as above: `&Region` only hands out atomics and bounds-checked copies.
unsafe impl Sync for Region {}

impl Region {
    /// Start of the mapping; valid for `len()` bytes for as long as this Region lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region mapped in Mapping::new; this runs when the last Arc
        // owner is dropped, so no reference into it (ours or a foreign view's) outlives it.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// A read-write shared mapping of a whole ring file.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    region: Arc<Region>,
    file: File,
}

// SAFETY: the pointer is into `region`, which is Send; see Region.
unsafe impl Send for Mapping {}

impl Mapping {
    pub fn new(file: File, len: usize, path: &Path) -> Result<Self, RingError> {
        // MAP_POPULATE: every page is faulted in here, at start, instead of one page fault per
        // 4 KiB on the first lap of the ring, in the middle of a hand-off (~1 in 64 records).
        // SAFETY: we map `len` bytes of a file we hold open; the kernel picks the address. The
        // caller has checked (or just set) that the file is at least `len` bytes long.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io_err("mmap", path, io::Error::last_os_error()));
        }
        let ptr = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| io_err("mmap", path, io::Error::other("null mapping")))?;
        let region = Arc::new(Region { ptr, len });
        Ok(Mapping {
            ptr,
            len,
            region,
            file,
        })
    }

    /// Like `new`, but maps through a second open file description of the same file, so the
    /// mapping (which may outlive this Mapping through `share`) does not keep `file`'s
    /// open-file-description locks alive: they go away when `file` is closed.
    pub fn new_unlocked(file: File, len: usize, path: &Path) -> Result<Self, RingError> {
        // /proc/self/fd reopens the very inode we hold, even if the name changed meanwhile (a
        // magic link we must follow; the inode check below is what makes it safe).
        let again = OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(|e| io_err("reopen", path, e))?;
        let (a, b) = (again.metadata(), file.metadata());
        let same = matches!((&a, &b), (Ok(a), Ok(b)) if a.dev() == b.dev() && a.ino() == b.ino());
        if !same {
            return Err(io_err("reopen", path, io::Error::other("reopened another file")));
        }
        let m = Mapping::new(again, len, path)?;
        Ok(Mapping { file, ..m })
    }

    /// Another owner of the mapped bytes: they stay mapped until it is dropped too, even after
    /// this Mapping (and its file, with its locks) is gone.
    pub fn share(&self) -> Arc<Region> {
        Arc::clone(&self.region)
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    #[inline]
    pub fn u64_at(&self, off: usize) -> &AtomicU64 {
        assert!(
            off.is_multiple_of(8) && off + 8 <= self.len,
            "layout offset out of range"
        );
        // SAFETY: in bounds (checked above) and 8-aligned (mmap returns page-aligned memory);
        // the memory lives as long as `self` and is only ever accessed atomically at this offset.
        unsafe { &*(self.ptr.as_ptr().add(off) as *const AtomicU64) }
    }

    #[inline]
    pub fn u32_at(&self, off: usize) -> &AtomicU32 {
        assert!(
            off.is_multiple_of(4) && off + 4 <= self.len,
            "layout offset out of range"
        );
        // SAFETY: as for u64_at, with 4-byte alignment.
        unsafe { &*(self.ptr.as_ptr().add(off) as *const AtomicU32) }
    }

    /// Copies `src` into the mapping at `off`. The ring protocol guarantees nobody reads these
    /// bytes until a later release store publishes them.
    #[inline]
    pub fn write_bytes(&self, off: usize, src: &[u8]) {
        assert!(
            off <= self.len && src.len() <= self.len - off,
            "copy out of range"
        );
        // SAFETY: in bounds (checked above); `src` is a Rust slice, so it cannot overlap the
        // mapping unless the caller passed a slice of it, which this module never hands out.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(off), src.len()) }
    }

    /// Copies bytes of the mapping at `off` into `dst`; the bytes were published by an acquire
    /// load of the write cursor and the producer does not touch them until we release them.
    #[inline]
    pub fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        assert!(
            off <= self.len && dst.len() <= self.len - off,
            "copy out of range"
        );
        // SAFETY: in bounds (checked above); `dst` is an exclusive Rust slice, not the mapping.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), dst.as_mut_ptr(), dst.len()) }
    }
}
