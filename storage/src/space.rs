//! Free and total bytes of a drive's file system, so writes stop cleanly before a drive fills
//! and operators see capacity. Measured with `statvfs`, at most once a second per drive.

use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Space {
    pub total: u64,
    /// Bytes an unprivileged writer may still use.
    pub free: u64,
}

impl Space {
    /// Bytes kept free when the operator set no reserve: 1 % of the drive, at most 1 GiB.
    pub fn default_reserve(&self) -> u64 {
        (self.total / 100).min(1 << 30)
    }
}

/// The space of the file system holding `path`.
pub fn measure(path: &Path) -> io::Result<Space> {
    let c_path = CString::new(path.as_os_str().as_bytes())?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid C string and `stat` a buffer statvfs fills on success.
    if unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled the buffer.
    let stat = unsafe { stat.assume_init() };
    let block = stat.f_frsize;
    Ok(Space {
        total: stat.f_blocks.saturating_mul(block),
        free: stat.f_bavail.saturating_mul(block),
    })
}

const FRESH_FOR: Duration = Duration::from_secs(1);

/// A drive's space as last measured. Writes ask on every request, so asking never blocks: a
/// reading older than a second is refreshed on the blocking pool (a hung mount holds up no
/// request), and the caller gets the last one meanwhile.
pub struct SpaceGauge {
    path: PathBuf,
    last: Arc<Mutex<Reading>>,
}

struct Reading {
    at: Instant,
    space: Option<Space>,
    refreshing: bool,
}

impl SpaceGauge {
    /// Measures once, so the first writes already know the space.
    pub fn new(path: PathBuf) -> Self {
        let space = measure(&path).ok();
        let reading = Reading {
            at: Instant::now(),
            space,
            refreshing: false,
        };
        Self {
            path,
            last: Arc::new(Mutex::new(reading)),
        }
    }

    /// The last reading, or `None` when the drive could not be measured.
    pub fn get(&self) -> Option<Space> {
        let mut last = self.last.lock().expect("lock");
        if last.at.elapsed() >= FRESH_FOR && !last.refreshing {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                last.refreshing = true;
                let (path, shared) = (self.path.clone(), self.last.clone());
                rt.spawn_blocking(move || {
                    let space = measure(&path).ok();
                    *shared.lock().expect("lock") = Reading {
                        at: Instant::now(),
                        space,
                        refreshing: false,
                    };
                });
            }
        }
        last.space
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_real_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let space = SpaceGauge::new(dir.path().into()).get().unwrap();
        assert_eq!(SpaceGauge::new("/no/such/dir".into()).get(), None);
        assert!(space.total > 0 && space.free <= space.total, "{space:?}");
        assert!(space.default_reserve() <= 1 << 30);
        assert!(measure(Path::new("/no/such/dir")).is_err());
    }
}
