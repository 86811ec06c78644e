//! Where the `presenced` binary is, for tests outside the server's own package (which
//! have `CARGO_BIN_EXE_presenced`) and for the bench.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

/// `presenced` next to the running executable, or in the directory above it: the bench
/// lives in `target/<profile>`, test binaries in `target/<profile>/deps` and examples in
/// `target/<profile>/examples`. Where it is not built yet, the path where it would be.
pub fn sibling_presenced() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let above = dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let beside = dir.join("presenced");
    let in_profile_dir = above.join("presenced");
    if beside.exists() {
        beside
    } else if in_profile_dir.exists() || dir.ends_with("deps") || dir.ends_with("examples") {
        in_profile_dir
    } else {
        beside
    }
}

static PRESENCED: LazyLock<PathBuf> = LazyLock::new(|| {
    if let Some(path) = std::env::var_os("PRESENCED_BIN") {
        return PathBuf::from(path);
    }
    let binary = sibling_presenced();
    if !binary.exists() {
        build(&binary);
    }
    binary
});

/// The `presenced` binary: `$PRESENCED_BIN` when set, else [`sibling_presenced`], built
/// first with cargo (once per process) when a test runs before it was built, as
/// `cargo test -p presence-client` does.
///
/// # Panics
/// When it is missing and cannot be built: the message says how to provide it.
pub fn presenced_binary() -> PathBuf {
    PRESENCED.clone()
}

/// Builds `presenced` into the target directory and profile that `binary` names.
fn build(binary: &Path) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let profile_dir = binary.parent().unwrap_or(Path::new("."));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args(["build", "-p", "presence-server", "--bin", "presenced"]);
    if let Some(target_dir) = profile_dir.parent() {
        command.arg("--target-dir").arg(target_dir);
    }
    if profile_dir.ends_with("release") {
        command.arg("--release");
    }
    let status = command.status();
    assert!(
        matches!(status, Ok(s) if s.success()) && binary.exists(),
        "{} is missing and building it failed ({status:?}); build it with \
         `cargo build -p presence-server --bin presenced`, or point PRESENCED_BIN at it",
        binary.display()
    );
}
