//! What `/proc` says about the server process: resident memory, its peak, CPU time.
//!
//! Linux reports CPU times in `/proc/PID/stat` in clock ticks of `USER_HZ`, which the
//! kernel fixes at 100 for user space on every architecture we run on.

use std::time::Duration;

use serde::Serialize;

use crate::BenchError;

const USER_HZ: u64 = 100;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcSample {
    /// Resident set size now (`VmRSS`), bytes.
    pub rss_bytes: u64,
    /// Peak resident set size since start or the last [`reset_peak`] (`VmHWM`), bytes.
    pub peak_rss_bytes: u64,
    /// User plus system CPU time so far.
    #[serde(skip)]
    pub cpu: Duration,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors (`/proc/PID/fd` entries).
    pub open_files: u64,
}

impl ProcSample {
    /// CPU seconds, for reports.
    pub fn cpu_seconds(&self) -> f64 {
        self.cpu.as_secs_f64()
    }
}

/// Reads the counters of process `pid`.
pub fn sample(pid: u32) -> Result<ProcSample, BenchError> {
    let proc_error = |source| BenchError::Proc { pid, source };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(proc_error)?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(proc_error)?;
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at indexes 11 and 12.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let cpu_ticks = ticks(11) + ticks(12);
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count() as u64)
        .unwrap_or(0);
    Ok(ProcSample {
        rss_bytes: kib("VmRSS:") * 1024,
        peak_rss_bytes: kib("VmHWM:") * 1024,
        cpu: Duration::from_millis(cpu_ticks * 1000 / USER_HZ),
        threads: kib("Threads:"),
        open_files,
    })
}

/// Resets the process's peak RSS (`VmHWM`) to its current RSS, so a later sample's peak
/// belongs to what happened in between. Needs to own the process (or be root); returns
/// whether it worked.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}
