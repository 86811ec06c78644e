//! Start-up refuses what would be unsafe or cannot work, and says `listening on` only once
//! the server will serve: scripts and supervisors take that line as "up".

use crate::support::run_to_exit;

#[test]
fn an_empty_jwt_secret_is_refused_from_the_flag_and_from_the_environment() {
    for (args, env) in [
        (&["--jwt-secret", ""][..], &[][..]),
        (&[][..], &[("PRESENCED_JWT_SECRET", "")][..]),
    ] {
        let (code, stdout, stderr) = run_to_exit(args, env);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains("jwt-secret"),
            "the setting is named: {stderr}"
        );
        assert!(!stdout.contains("listening on"), "{stdout}");
    }
}

#[test]
fn listening_on_comes_only_once_start_up_cannot_fail() {
    let garbage_key =
        std::env::temp_dir().join(format!("presenced-bad-key-{}", std::process::id()));
    std::fs::write(&garbage_key, "not a key").expect("write");
    let key = garbage_key.to_str().expect("utf8");
    // A port nothing listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let redis = format!("redis://{closed}/");
    for args in [&["--jwt-public-key", key][..], &["--redis", &redis][..]] {
        let (code, stdout, stderr) = run_to_exit(args, &[]);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            !stdout.contains("listening on"),
            "{args:?} printed the line, then failed: {stdout}"
        );
    }
}

#[test]
fn a_state_file_with_redis_is_refused_as_the_cluster_holds_sessions_itself() {
    let (code, stdout, stderr) = run_to_exit(
        &[
            "--state-file",
            "/tmp/presenced-state.json",
            "--redis",
            "redis://127.0.0.1:1/",
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("state-file"),
        "the setting is named: {stderr}"
    );
    assert!(!stdout.contains("listening on"), "{stdout}");
}
