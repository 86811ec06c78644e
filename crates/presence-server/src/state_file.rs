//! The state file (`--state-file`): a single node writes its sessions down as it stops
//! (SIGTERM), and holds them again, detached for a fresh reconnect grace, when it starts.
//! Its clients then restore on reconnecting, and a restart shows nobody a leave or a join.
//!
//! The file is JSON, written atomically (a temporary file beside it, fsync, rename, fsync
//! of the directory), read once and then removed. A file that cannot be read, or that is
//! older than the reconnect grace (its sessions would have ended by now), is ignored with
//! a warning: the node then starts empty, as without the flag.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use presence_core::SessionRecord;
use serde::{Deserialize, Serialize};

/// The one layout this version writes and reads.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateFile {
    version: u32,
    written_at_unix_ms: u64,
    sessions: Vec<SessionRecord>,
}

/// Writes `sessions` to `path`, replacing it atomically.
pub fn write(path: &Path, sessions: Vec<SessionRecord>, now_unix_ms: u64) -> std::io::Result<()> {
    let file = StateFile {
        version: VERSION,
        written_at_unix_ms: now_unix_ms,
        sessions,
    };
    let bytes = serde_json::to_vec(&file)?;
    let temporary = temporary_path(path);
    {
        let mut out = std::fs::File::create(&temporary)?;
        out.write_all(&bytes)?;
        out.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    // The rename itself is durable only once the directory is.
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::File::open(directory)?.sync_all()?;
    Ok(())
}

/// The sessions in `path`, if it holds a readable file no older than `max_age`; the file
/// is removed either way, so it is used at most once.
pub fn read(path: &Path, max_age: Duration, now_unix_ms: u64) -> Vec<SessionRecord> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read the state file; starting empty");
            return Vec::new();
        }
    };
    if let Err(error) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), %error, "cannot remove the state file after reading it");
    }
    let file: StateFile = match serde_json::from_slice(&bytes) {
        Ok(file) => file,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "the state file is corrupt; starting empty");
            return Vec::new();
        }
    };
    if file.version != VERSION {
        tracing::warn!(path = %path.display(), version = file.version, "the state file is of another version; starting empty");
        return Vec::new();
    }
    let age = Duration::from_millis(now_unix_ms.saturating_sub(file.written_at_unix_ms));
    if age > max_age {
        tracing::warn!(
            path = %path.display(),
            ?age,
            "the state file is older than the reconnect grace, so its sessions have ended; starting empty"
        );
        return Vec::new();
    }
    tracing::info!(
        sessions = file.sessions.len(),
        ?age,
        "holding the sessions of the state file for their clients to restore"
    );
    file.sessions
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{read, write};

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("presenced-state-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir.join("state.json")
    }

    #[test]
    fn a_file_is_read_once_and_only_while_its_sessions_can_still_restore() {
        let path = scratch("once");
        write(&path, Vec::new(), 1_000).expect("write");
        assert!(!path.with_file_name("state.json.tmp").exists());
        assert!(path.exists());
        assert!(read(&path, Duration::from_secs(10), 2_000).is_empty());
        assert!(!path.exists(), "read once, then removed");

        write(&path, Vec::new(), 1_000).expect("write");
        assert!(read(&path, Duration::from_secs(10), 20_000).is_empty());
        std::fs::write(&path, b"{not json").expect("corrupt it");
        assert!(read(&path, Duration::from_secs(10), 2_000).is_empty());
        assert!(!path.exists());
    }
}
