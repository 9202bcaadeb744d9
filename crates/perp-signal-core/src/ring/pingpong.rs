//! Measuring aids for the benchmark: the cross-process clock, and a shared page holding bare
//! atomics, so the cache-line ping-pong floor is measured with the same tools as the ring.
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;

use super::error::RingError;
use super::map::{self, Mapping};
use super::name::path_of;

/// CLOCK_MONOTONIC in ns: one clock for every process on the machine (Node's
/// `process.hrtime.bigint()` reads the same one), through the vDSO, so no system call.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into `ts`, which we own; CLOCK_MONOTONIC always exists.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Pins the calling thread to one CPU, so benchmark runs compare like with like (two processes
/// on one CPU would measure the scheduler). Returns false if the kernel refused.
pub fn pin_to_cpu(cpu: usize) -> bool {
    // SAFETY: cpu_set_t is plain data that CPU_ZERO/CPU_SET initialise in place; the syscall
    // only reads the set we pass, for the calling thread (pid 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// One page in /dev/shm shared by name, seen as eight atomic words, each on its own cache line.
pub struct SharedPage {
    map: Mapping,
    path: PathBuf,
    owner: bool,
}

impl SharedPage {
    /// Creates the page (the creator removes it on drop).
    pub fn create(name: &str) -> Result<Self, RingError> {
        let path = path_of(name)?;
        let file = map::create_new(&path).map_err(|e| map::io_err("create", &path, e))?;
        file.set_len(4096).map_err(|e| map::io_err("resize", &path, e))?;
        let map = Mapping::new(file, 4096, &path)?;
        Ok(SharedPage {
            map,
            path,
            owner: true,
        })
    }

    pub fn open(name: &str) -> Result<Self, RingError> {
        let path = path_of(name)?;
        let file = map::open_existing(&path).map_err(|e| map::io_err("open", &path, e))?;
        let len = file.metadata().map_err(|e| map::io_err("stat", &path, e))?.len();
        if len != 4096 {
            return Err(RingError::NotAQueue {
                path: path.display().to_string(),
                why: format!("a shared page is 4096 bytes, this file is {len}"),
            });
        }
        let map = Mapping::new(file, 4096, &path)?;
        Ok(SharedPage {
            map,
            path,
            owner: false,
        })
    }

    /// Word `i` (0..8), alone on cache line `i`.
    pub fn word(&self, i: usize) -> &AtomicU64 {
        self.map.u64_at((i % 8) * 64)
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        if self.owner && map::still_named(&self.path, self.map.file()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
