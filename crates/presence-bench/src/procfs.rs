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
    let (_, cpu) = parse_stat(&stat);
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count() as u64)
        .unwrap_or(0);
    Ok(ProcSample {
        rss_bytes: kib("VmRSS:") * 1024,
        peak_rss_bytes: kib("VmHWM:") * 1024,
        cpu,
        threads: kib("Threads:"),
        open_files,
    })
}

/// User plus system CPU time so far of this process's threads whose name starts with
/// `prefix` (from `/proc/self/task/*/stat`).
pub fn own_threads_cpu(prefix: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .map(|stat| {
            let (name, cpu) = parse_stat(&stat);
            if name.starts_with(prefix) {
                cpu
            } else {
                Duration::ZERO
            }
        })
        .sum()
}

/// The command (or thread) name and the user plus system CPU time in the text of a
/// `/proc/.../stat` file.
fn parse_stat(stat: &str) -> (&str, Duration) {
    // The name (field 2) is in parentheses and may hold spaces; the fields after its
    // ')' are fixed.
    let (name, after_name) = match (stat.find('('), stat.rfind(')')) {
        (Some(open), Some(close)) if open < close => (&stat[open + 1..close], &stat[close + 1..]),
        _ => ("", ""),
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at indexes 11 and 12.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let cpu_ticks = ticks(11) + ticks(12);
    (name, Duration::from_millis(cpu_ticks * 1000 / USER_HZ))
}

/// Resets the process's peak RSS (`VmHWM`) to its current RSS, so a later sample's peak
/// belongs to what happened in between. Needs to own the process (or be root); returns
/// whether it worked.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_name_and_cpu() {
        // utime 250 and stime 50 ticks; the name holds a space and a parenthesis.
        let stat = "42 (floor (server) x) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(
            parse_stat(stat),
            ("floor (server) x", Duration::from_secs(3))
        );
        assert_eq!(parse_stat("garbage"), ("", Duration::ZERO));
    }
}
