//! The open-file limit: every benchmark connection is a file descriptor, on both sides.

use serde::Serialize;

/// The soft and hard `RLIMIT_NOFILE` of this process, before and after raising.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FileLimit {
    /// The soft limit found at start.
    pub soft_before: u64,
    /// The soft limit now (the hard limit, if raising worked).
    pub soft: u64,
    /// The hard limit, which only root can raise.
    pub hard: u64,
}

impl FileLimit {
    /// How many connections fit, keeping some descriptors for the runtime, logs and HTTP.
    pub fn max_connections(&self) -> u64 {
        self.soft.saturating_sub(64)
    }
}

/// Raises this process's soft open-file limit to its hard limit. A child (`presenced`)
/// inherits the raised limit.
pub fn raise_open_file_limit() -> std::io::Result<FileLimit> {
    let (soft_before, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    let soft = rlimit::increase_nofile_limit(u64::MAX)?;
    Ok(FileLimit {
        soft_before,
        soft,
        hard,
    })
}
