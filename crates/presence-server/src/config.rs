//! Settings from flags, `PRESENCED_*` environment variables and a TOML file, in that order
//! of precedence, with the contract's defaults underneath.
//!
//! Each setting is declared once, as a row of the `settings!` table below. Its field name
//! spells the flag (`--max-state-bytes`), the variable (`PRESENCED_MAX_STATE_BYTES`) and the
//! TOML key (`max-state-bytes`, or `max_state_bytes`); its doc comment is the `--help` line,
//! which states the default; the expression after `=` is that default. How a value is read
//! from a flag or from the file follows from its type alone (see `Setting`). The tests want a
//! `Sample` of each new row, and then check it is reachable from flag, variable and key.
//!
//! Why a small macro over clap and serde rather than `figment` or `config`: those crates
//! layer a file and the environment into one serde struct, but not the command line, so the
//! clap struct with its flags and help would still be written apart from the settings. They
//! would also read the environment a second time beside clap (which must keep it to show
//! `[env: ...]` in `--help`), take unrelated variables such as `PRESENCED_SEED` for unknown
//! settings, and fail with their own errors instead of `ConfigError::Invalid` naming the
//! setting. clap's `env` and `default_value` alone give flag > env > default but leave no
//! room for the file in between. So clap still parses flags and variables and serde still
//! reads the file; the macro only writes out, from one row, the five places a setting used
//! to be spelled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::builder::ValueParser;
use clap::Parser;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A field name respelled at compile time, since clap and `ConfigError` keep names as
/// `&'static str`: `flag_name!(max_state_bytes)` is `"max-state-bytes"` (also the TOML key)
/// and `env_name!(max_state_bytes)` is `"PRESENCED_MAX_STATE_BYTES"`.
macro_rules! flag_name {
    ($field:ident) => {
        respelled!("", $field, b'-', false)
    };
}

macro_rules! env_name {
    ($field:ident) => {
        respelled!("PRESENCED_", $field, b'_', true)
    };
}

macro_rules! respelled {
    ($prefix:literal, $field:ident, $separator:expr, $uppercase:expr) => {{
        const FIELD: &str = stringify!($field);
        const BYTES: [u8; $prefix.len() + FIELD.len()] =
            respell($prefix, FIELD, $separator, $uppercase);
        const TEXT: &str = match std::str::from_utf8(&BYTES) {
            Ok(text) => text,
            Err(_) => panic!("field names are ASCII"),
        };
        TEXT
    }};
}

/// `prefix` then `field` with each `_` made `separator`, uppercased if asked.
const fn respell<const N: usize>(
    prefix: &str,
    field: &str,
    separator: u8,
    uppercase: bool,
) -> [u8; N] {
    let (prefix, field) = (prefix.as_bytes(), field.as_bytes());
    let mut spelled = [0; N];
    let mut at = 0;
    while at < N {
        let byte = if at < prefix.len() {
            prefix[at]
        } else {
            field[at - prefix.len()]
        };
        spelled[at] = match byte {
            b'_' => separator,
            _ if uppercase => byte.to_ascii_uppercase(),
            _ => byte,
        };
        at += 1;
    }
    spelled
}

/// Writes, from the table of settings below, `Config` and its `Default`, the command line
/// `Cli`, the TOML file's shape `FileSettings`, the list `SETTING_NAMES` and `merge`, which
/// puts flags over the file over the defaults. A row is a doc comment (the help line), an
/// optional `#[arg(..)]` with clap attributes beyond `long`, `env` and `value_parser` (those
/// follow from the name and the type), and `field: Type = default`. A default may use the
/// settings above it. Rows under `internal` are in `Config` only: no flag, variable or key.
macro_rules! settings {
    (
        configurable {
            $(
                $(#[doc = $doc:literal])*
                $(#[arg($($arg:tt)*)])?
                $name:ident: $ty:ty = $default:expr,
            )*
        }
        internal {
            $(
                $(#[doc = $internal_doc:literal])*
                $internal:ident: $internal_ty:ty = $internal_default:expr,
            )*
        }
    ) => {
        /// Everything the server needs to start, settled and validated.
        #[derive(Debug, Clone)]
        pub struct Config {
            $( $(#[doc = $doc])* pub $name: $ty, )*
            $( $(#[doc = $internal_doc])* pub $internal: $internal_ty, )*
        }

        impl Default for Config {
            fn default() -> Self {
                $( let $name: $ty = $default; )*
                Config {
                    $( $name, )*
                    $( $internal: $internal_default, )*
                }
            }
        }

        /// The command line. Every flag can also come from `PRESENCED_<FLAG>` or the TOML file.
        #[derive(Debug, Parser)]
        #[command(
            name = "presenced",
            version,
            about = "Real-time presence server: who is here right now"
        )]
        pub struct Cli {
            /// TOML file with any of the settings below (keys as the flags, e.g. `reconnect-grace = "5s"`).
            #[arg(long, env = "PRESENCED_CONFIG", value_name = "FILE")]
            config: Option<PathBuf>,
            $(
                $(#[doc = $doc])*
                #[arg(
                    long,
                    env = env_name!($name),
                    value_parser = <$ty as Setting>::value_parser()
                    $(, $($arg)*)?
                )]
                $name: Option<<$ty as Setting>::Flag>,
            )*
        }

        /// The TOML file: any of the settings, keyed by the flags' names.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        struct FileSettings {
            $( $name: Option<<$ty as Setting>::File>, )*
        }

        /// Every setting's name: its flag without the leading `--`, and its TOML key.
        const SETTING_NAMES: &[&str] = &[$( flag_name!($name) ),*];

        /// Flags and variables (already in `cli`) over the file over the defaults.
        fn merge(cli: Cli, file: FileSettings) -> Result<Config, ConfigError> {
            $(
                // The file's value is read even when a flag overrides it: a mistake in the
                // file should not wait for the day the flag is dropped to surface.
                let from_file = file
                    .$name
                    .map(|value| <$ty as Setting>::from_file(flag_name!($name), value))
                    .transpose()?;
                let $name: $ty = match cli.$name {
                    Some(flag) => <$ty as Setting>::from_flag(flag),
                    None => from_file.unwrap_or_else(|| $default),
                };
            )*
            Ok(Config {
                $( $name, )*
                $( $internal: $internal_default, )*
            })
        }
    };
}

settings! {
    configurable {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(value_name = "ADDR")]
        listen: String = "127.0.0.1:8080".to_owned(),
        /// Silence after which a connection's sessions are dropped [default: 60s].
        #[arg(value_name = "DUR")]
        heartbeat_timeout: Duration = Duration::from_secs(60),
        /// How long a dropped connection's sessions wait for a restore [default: 10s].
        #[arg(value_name = "DUR")]
        reconnect_grace: Duration = Duration::from_secs(10),
        /// How long sessions left as their page unloads wait for the reload that restores
        /// them [default: 2s].
        #[arg(value_name = "DUR")]
        unload_grace: Duration = Duration::from_secs(2),
        /// File the sessions are written to on SIGTERM and read back from at start, so
        /// that a restart of a single node is invisible (its clients restore).
        #[arg(value_name = "FILE")]
        state_file: Option<PathBuf> = None,
        /// PEM certificate chain: with --tls-key, serve HTTPS and WSS only (SIGHUP reads
        /// both files again).
        #[arg(value_name = "FILE")]
        tls_cert: Option<PathBuf> = None,
        /// PEM private key of --tls-cert.
        #[arg(value_name = "FILE")]
        tls_key: Option<PathBuf> = None,
        /// Cursor and diff batching interval [default: 50ms].
        #[arg(value_name = "DUR")]
        cursor_interval: Duration = Duration::from_millis(50),
        /// HS256 secret; joins then need a valid JWT.
        #[arg(value_name = "SECRET", hide_env_values = true)]
        jwt_secret: Option<String> = None,
        /// PEM public key (RS256, ES256 or EdDSA); joins then need a valid JWT.
        #[arg(value_name = "FILE")]
        jwt_public_key: Option<PathBuf> = None,
        /// Key required as `Authorization: Bearer KEY` on /api/*.
        #[arg(value_name = "KEY", hide_env_values = true)]
        api_key: Option<String> = None,
        /// Comma-separated browser origins allowed to connect (default: any).
        #[arg(value_name = "LIST")]
        allowed_origins: Vec<String> = Vec::new(),
        /// Redis URL: share rooms with other nodes (`rediss://` for TLS, `user:password@`
        /// for an ACL user); a Redis Cluster is detected, or given as seed URLs separated
        /// by commas.
        #[arg(value_name = "URL", hide_env_values = true)]
        redis: Option<String> = None,
        /// Prefix of Redis keys and channels [default: presenced:].
        #[arg(value_name = "PREFIX")]
        redis_prefix: String = "presenced:".to_owned(),
        /// Secret every node of the cluster shares: facts are signed with it (HMAC-SHA256)
        /// and facts not signed with it are dropped. Without it facts go unsigned.
        #[arg(value_name = "SECRET", hide_env_values = true)]
        cluster_secret: Option<String> = None,
        /// URL the server POSTs room events to (user.joined, user.left, room.occupied,
        /// room.vacated), signed with --webhook-secret.
        #[arg(value_name = "URL")]
        webhook_url: Option<String> = None,
        /// Secret the webhooks are signed with (Standard Webhooks, HMAC-SHA256).
        #[arg(value_name = "SECRET", hide_env_values = true)]
        webhook_secret: Option<String> = None,
        /// Most events per webhook request; above 1, a request carries a JSON array
        /// [default: 1].
        #[arg(value_name = "N")]
        webhook_batch: usize = 1,
        /// How long a webhook event is retried before it is dropped [default: 10m].
        #[arg(value_name = "DUR")]
        webhook_retry_for: Duration = Duration::from_secs(600),
        /// Silence after which another node is presumed dead [default: 5s].
        #[arg(value_name = "DUR")]
        node_ttl: Duration = Duration::from_secs(5),
        /// Largest client frame in bytes [default: 65536].
        #[arg(value_name = "BYTES")]
        max_message_bytes: usize = 65_536,
        /// Largest serialized user state in bytes [default: 4096].
        #[arg(value_name = "BYTES")]
        max_state_bytes: usize = 4096,
        /// Most rooms per connection [default: 100].
        #[arg(value_name = "N")]
        max_rooms_per_connection: usize = 100,
        /// Most users per room [default: no limit].
        #[arg(value_name = "N")]
        max_members_per_room: Option<usize> = None,
        /// Sustained messages per second per connection [default: 100].
        #[arg(value_name = "N")]
        max_messages_per_second: u32 = 100,
        /// Most simultaneous WebSocket connections [default: 100000].
        #[arg(value_name = "N")]
        max_connections: usize = 100_000,
        /// A write to a client that makes no progress for this long means it stopped
        /// reading: the connection is closed with 1013 [default: 10s].
        #[arg(value_name = "DUR")]
        write_timeout: Duration = Duration::from_secs(10),
        /// How long a connection that is not yet a WebSocket may take to send each request
        /// (its headers, or the next one after an answer) before it is closed [default: 5s].
        #[arg(value_name = "DUR")]
        handshake_timeout: Duration = Duration::from_secs(5),
        /// Most connections not yet upgraded to WebSockets; at the limit the oldest is closed
        /// to make room [default: 4096].
        #[arg(value_name = "N")]
        max_pending_connections: usize = 4096,
        /// Worker threads [default: one per core]. One thread spends the least CPU per delivered
        /// update at moderate load (no cross-thread wake-ups); more threads add capacity.
        #[arg(value_name = "N")]
        worker_threads: Option<usize> = None,
        /// With `--worker-threads 1`: the shortest time between two wake-ups of the idle
        /// thread; messages arriving in between are read together, delayed at most this long.
        /// 0 wakes for every message [default: a fifth of --cursor-interval, 10ms].
        #[arg(value_name = "DUR")]
        min_wake_interval: Duration = cursor_interval / WAKE_INTERVAL_DIVISOR,
        /// Log format on standard error [default: text].
        log_format: LogFormat = LogFormat::Text,
    }
    internal {
        /// Frames a connection's outbox holds before stale cursor frames are dropped.
        outbox_frames: usize = 4096,
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Why the settings could not be settled.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The `--config` file is not valid TOML of the expected shape.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A setting has an impossible value.
    #[error("invalid setting {name}: {message}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The default pacing is this fraction of the cursor interval: a move already waits up to
/// one interval for its room's flush, and a fifth more (10 ms at the default 50 ms) keeps
/// the cursor p99 well inside its budget while removing most wake-ups under steady
/// traffic (docs/performance.md, "Cursor CPU").
const WAKE_INTERVAL_DIVISOR: u32 = 5;

/// A secret (HS256 for JWTs, HMAC-SHA256 for cluster facts) shorter than this is warned
/// about at start: RFC 7518 §3.2 asks for at least the hash's size. An empty one is refused.
pub const MIN_SECRET_BYTES: usize = 32;

/// Pacing longer than this would be felt as lag by every client, not only save CPU.
const MAX_WAKE_INTERVAL: Duration = Duration::from_millis(100);

/// Reads `250ms`, `10s`, `2m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|error| format!("{error} (use e.g. 250ms, 10s, 2m)"))
}

/// How one type of setting is read from a flag or its variable (by clap) and from the TOML
/// file (by serde). A row of the table needs only its type because of this.
trait Setting: Sized {
    /// What clap parses from the flag or the variable.
    type Flag: Clone + Send + Sync + 'static;
    /// What serde reads from the TOML key.
    type File: DeserializeOwned;
    /// How clap parses `Flag`.
    fn value_parser() -> ValueParser;
    /// The setting a flag gave.
    fn from_flag(flag: Self::Flag) -> Self;
    /// The setting the file gave; `name` names it in an error.
    fn from_file(name: &'static str, file: Self::File) -> Result<Self, ConfigError>;
}

/// Types that clap parses and serde reads as they are.
macro_rules! read_as_is {
    ($($ty:ty),*) => {$(
        impl Setting for $ty {
            type Flag = $ty;
            type File = $ty;
            fn value_parser() -> ValueParser {
                clap::value_parser!($ty).into()
            }
            fn from_flag(flag: $ty) -> Self {
                flag
            }
            fn from_file(_: &'static str, file: $ty) -> Result<Self, ConfigError> {
                Ok(file)
            }
        }
    )*};
}

read_as_is!(String, PathBuf, usize, u32, LogFormat);

/// A setting that is off, or unbounded, unless given.
impl<T: Setting> Setting for Option<T> {
    type Flag = T::Flag;
    type File = T::File;
    fn value_parser() -> ValueParser {
        T::value_parser()
    }
    fn from_flag(flag: T::Flag) -> Self {
        Some(T::from_flag(flag))
    }
    fn from_file(name: &'static str, file: T::File) -> Result<Self, ConfigError> {
        T::from_file(name, file).map(Some)
    }
}

/// Durations are written as people say them (`250ms`, `10s`). The file holds them as
/// strings, so a bad one is an invalid setting that names itself, as with a bad flag.
impl Setting for Duration {
    type Flag = Duration;
    type File = String;
    fn value_parser() -> ValueParser {
        ValueParser::new(parse_duration)
    }
    fn from_flag(flag: Duration) -> Self {
        flag
    }
    fn from_file(name: &'static str, file: String) -> Result<Self, ConfigError> {
        parse_duration(&file).map_err(|message| ConfigError::Invalid { name, message })
    }
}

/// A list is comma-separated on the command line, where arrays are awkward, and either
/// that or an array in the file.
impl Setting for Vec<String> {
    type Flag = String;
    type File = TextOrList;
    fn value_parser() -> ValueParser {
        ValueParser::string()
    }
    fn from_flag(flag: String) -> Self {
        split_list(&flag)
    }
    fn from_file(_: &'static str, file: TextOrList) -> Result<Self, ConfigError> {
        Ok(match file {
            TextOrList::Text(text) => split_list(&text),
            TextOrList::List(list) => list,
        })
    }
}

/// A list in the TOML file.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TextOrList {
    Text(String),
    List(Vec<String>),
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

impl FileSettings {
    fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// The settings in `text`, the contents of the file at `path`.
    fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Parse {
            path: path.to_owned(),
            message,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        // Keys are spelled as the flags, and `max_state_bytes` is accepted for
        // `max-state-bytes` too: people write TOML in the style of their other files.
        let mut settings = toml::Table::new();
        for (key, value) in table {
            let kebab = key.replace('_', "-");
            let name = if SETTING_NAMES.contains(&kebab.as_str()) {
                kebab
            } else {
                key.clone()
            };
            if settings.insert(name.clone(), value).is_some() {
                return Err(invalid(format!("`{key}` repeats the setting `{name}`")));
            }
        }
        settings.try_into().map_err(|e| invalid(e.to_string()))
    }
}

impl Cli {
    /// Merges flags and environment (already in `self`) over the file over the defaults.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let config = self.merged()?;
        config.validate()?;
        Ok(config)
    }

    /// The merged settings, not yet validated.
    fn merged(self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            None => FileSettings::default(),
            Some(path) => FileSettings::read(path)?,
        };
        let mut config = merge(self, file)?;
        // Zero threads is no runtime at all; read it as "the default", as an unset flag.
        config.worker_threads = config.worker_threads.filter(|&threads| threads > 0);
        Ok(config)
    }
}

impl Config {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name, message: &str| {
            Err(ConfigError::Invalid {
                name,
                message: message.to_owned(),
            })
        };
        if self.heartbeat_timeout < Duration::from_millis(30) {
            return invalid("heartbeat-timeout", "must be at least 30ms");
        }
        if self.node_ttl < Duration::from_millis(30) {
            return invalid("node-ttl", "must be at least 30ms");
        }
        if self.cursor_interval.is_zero() {
            return invalid("cursor-interval", "must be more than zero");
        }
        if self.min_wake_interval > MAX_WAKE_INTERVAL {
            return invalid("min-wake-interval", "must be at most 100ms");
        }
        if self.handshake_timeout.is_zero() || self.handshake_timeout > Duration::from_secs(60) {
            return invalid(
                "handshake-timeout",
                "must be more than zero and at most 60s",
            );
        }
        if self.write_timeout < Duration::from_millis(100) {
            return invalid("write-timeout", "must be at least 100ms");
        }
        if self.max_pending_connections == 0 {
            return invalid("max-pending-connections", "must be at least 1");
        }
        if self.max_message_bytes < 256 {
            return invalid("max-message-bytes", "must be at least 256");
        }
        if self.max_rooms_per_connection == 0 || self.max_messages_per_second == 0 {
            return invalid(
                "max-rooms-per-connection/max-messages-per-second",
                "must be at least 1",
            );
        }
        // An empty secret is what a compose file gives for an unset variable: anyone could
        // sign with it.
        let empty_secret = |name, signed: &str, without: &str| {
            invalid(
                name,
                &format!(
                    "is empty, which would accept {signed} anyone can sign; give a secret of at least {MIN_SECRET_BYTES} bytes, or none to {without}"
                ),
            )
        };
        if self.jwt_secret.as_deref().is_some_and(str::is_empty) {
            return empty_secret("jwt-secret", "tokens", "trust clients");
        }
        if self.cluster_secret.as_deref().is_some_and(str::is_empty) {
            return empty_secret("cluster-secret", "facts", "leave facts unsigned");
        }
        if self.api_key.as_deref().is_some_and(str::is_empty) {
            return invalid(
                "api-key",
                "is empty; give a key, or none to leave /api open",
            );
        }
        if self.jwt_secret.is_some() && self.jwt_public_key.is_some() {
            return invalid(
                "jwt-secret",
                "give --jwt-secret or --jwt-public-key, not both",
            );
        }
        if self.webhook_secret.as_deref().is_some_and(str::is_empty) {
            return empty_secret("webhook-secret", "webhooks", "leave webhooks off");
        }
        if self.webhook_batch == 0 {
            return invalid("webhook-batch", "must be at least 1");
        }
        if self.state_file.is_some() && self.redis.is_some() {
            return invalid(
                "state-file",
                "is for a single node; with --redis the other nodes hold a restarting node's sessions for its clients",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let dir = std::env::temp_dir().join(format!("presenced-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("presenced.toml");
        std::fs::write(
            &path,
            "reconnect-grace = \"3s\"\ncursor_interval = \"20ms\"\nallowed-origins = [\"http://a\"]\nmax-state-bytes = 100\n",
        )
        .expect("write");
        let cli = Cli::parse_from([
            "presenced",
            "--config",
            path.to_str().expect("utf8"),
            "--cursor-interval",
            "250ms",
        ]);
        let config = cli.into_config().expect("valid");
        assert_eq!(config.reconnect_grace, Duration::from_secs(3));
        assert_eq!(config.cursor_interval, Duration::from_millis(250));
        assert_eq!(config.allowed_origins, ["http://a"]);
        assert_eq!(config.max_state_bytes, 100);
        assert_eq!(config.heartbeat_timeout, Duration::from_secs(60));
        assert_eq!(config.listen, "127.0.0.1:8080");
    }

    #[test]
    fn worker_threads_come_from_the_flag_and_zero_means_default() {
        let config = Cli::parse_from(["presenced", "--worker-threads", "1"])
            .into_config()
            .expect("valid");
        assert_eq!(config.worker_threads, Some(1));
        let config = Cli::parse_from(["presenced", "--worker-threads", "0"])
            .into_config()
            .expect("valid");
        assert_eq!(config.worker_threads, None);
    }

    #[test]
    fn the_wake_interval_comes_from_flag_or_file_and_is_bounded() {
        assert_eq!(
            Config::default().min_wake_interval,
            Duration::from_millis(10)
        );
        let config = Cli::parse_from(["presenced", "--cursor-interval", "20ms"])
            .into_config()
            .expect("valid");
        assert_eq!(
            config.min_wake_interval,
            Duration::from_millis(4),
            "a fifth of the cursor interval unless given"
        );
        let config = Cli::parse_from(["presenced", "--min-wake-interval", "0"])
            .into_config()
            .expect("valid");
        assert_eq!(config.min_wake_interval, Duration::ZERO);
        let dir =
            std::env::temp_dir().join(format!("presenced-config-wake-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("wake.toml");
        std::fs::write(&path, "min_wake_interval = \"2ms\"\n").expect("write");
        let config = Cli::parse_from(["presenced", "--config", path.to_str().expect("utf8")])
            .into_config()
            .expect("valid");
        assert_eq!(config.min_wake_interval, Duration::from_millis(2));
        let refused = Cli::parse_from(["presenced", "--min-wake-interval", "1s"]).into_config();
        assert!(matches!(
            refused,
            Err(ConfigError::Invalid {
                name: "min-wake-interval",
                ..
            })
        ));
    }

    /// Cases per property; `PRESENCED_FUZZ_CASES=N` runs more.
    fn fuzz_cases() -> u32 {
        std::env::var("PRESENCED_FUZZ_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256)
    }

    /// A TOML value of any type, some of them absurd for any setting.
    fn toml_value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| format!("{f:?}")),
            any::<bool>().prop_map(|b| b.to_string()),
            "[0-9]{0,4}(ms|s|m|h|d|y|)".prop_map(|d| format!("{d:?}")),
            ".{0,12}".prop_map(|s| format!("{s:?}")),
            proptest::collection::vec(".{0,6}", 0..3).prop_map(|v| format!("{v:?}")),
            Just("{ a = 1 }".to_owned()),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(fuzz_cases()))]

        /// Random text is read as a config file or refused with an error, never a panic.
        #[test]
        fn any_file_text_is_read_or_refused(text in "\\PC{0,200}") {
            if let Err(error) = FileSettings::parse(&text, Path::new("fuzz.toml")) {
                proptest::prop_assert!(error.to_string().contains("fuzz.toml"), "{error}");
            }
        }

        /// Every setting, in either spelling, with a value of any type: the file is refused
        /// or settles into a config that passes validation; it never panics.
        #[test]
        fn any_setting_with_any_value_settles_or_is_refused(
            rows in proptest::collection::vec(
                (0..SETTING_NAMES.len() + 1, proptest::bool::ANY, toml_value()),
                0..8,
            )
        ) {
            let mut text = String::new();
            for (index, snake, value) in rows {
                let name = SETTING_NAMES.get(index).copied().unwrap_or("not-a-setting");
                let key = if snake { name.replace('-', "_") } else { name.to_owned() };
                text.push_str(&format!("{key} = {value}\n"));
            }
            let settled = FileSettings::parse(&text, Path::new("fuzz.toml"))
                .and_then(|file| merge(Cli::parse_from(["presenced"]), file))
                .and_then(|config| config.validate().map(|()| config));
            match settled {
                // What validation promises the rest of the server.
                Ok(config) => {
                    proptest::prop_assert!(config.heartbeat_timeout >= Duration::from_millis(30));
                    proptest::prop_assert!(!config.cursor_interval.is_zero());
                    proptest::prop_assert!(config.min_wake_interval <= MAX_WAKE_INTERVAL);
                    proptest::prop_assert!(config.max_message_bytes >= 256);
                    proptest::prop_assert!(config.jwt_secret.as_deref() != Some(""));
                }
                Err(error) => proptest::prop_assert!(!error.to_string().is_empty()),
            }
        }
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("presenced-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bad.toml");
        std::fs::write(&path, "reconect-grace = \"3s\"\n").expect("write");
        let cli = Cli::parse_from(["presenced", "--config", path.to_str().expect("utf8")]);
        assert!(matches!(cli.into_config(), Err(ConfigError::Parse { .. })));
    }

    /// One value per setting that differs from its default: as a flag or variable gives it,
    /// as the TOML file writes it, and what it changes in the default `Config`.
    struct Sample {
        name: &'static str,
        text: &'static str,
        toml: &'static str,
        expect: fn(&mut Config),
    }

    fn samples() -> Vec<Sample> {
        let sample = |name, text, toml, expect| Sample {
            name,
            text,
            toml,
            expect,
        };
        vec![
            sample("listen", "0.0.0.0:9000", "\"0.0.0.0:9000\"", |c| {
                c.listen = "0.0.0.0:9000".to_owned()
            }),
            sample("heartbeat-timeout", "90s", "\"90s\"", |c| {
                c.heartbeat_timeout = Duration::from_secs(90)
            }),
            sample("reconnect-grace", "3s", "\"3s\"", |c| {
                c.reconnect_grace = Duration::from_secs(3)
            }),
            sample("unload-grace", "500ms", "\"500ms\"", |c| {
                c.unload_grace = Duration::from_millis(500)
            }),
            sample(
                "state-file",
                "/var/lib/presenced/state.json",
                "\"/var/lib/presenced/state.json\"",
                |c| c.state_file = Some(PathBuf::from("/var/lib/presenced/state.json")),
            ),
            sample(
                "tls-cert",
                "/etc/presenced/cert.pem",
                "\"/etc/presenced/cert.pem\"",
                |c| c.tls_cert = Some(PathBuf::from("/etc/presenced/cert.pem")),
            ),
            sample(
                "tls-key",
                "/etc/presenced/key.pem",
                "\"/etc/presenced/key.pem\"",
                |c| c.tls_key = Some(PathBuf::from("/etc/presenced/key.pem")),
            ),
            // The pacing follows the cursor interval unless given.
            sample("cursor-interval", "20ms", "\"20ms\"", |c| {
                c.cursor_interval = Duration::from_millis(20);
                c.min_wake_interval = Duration::from_millis(4);
            }),
            sample("jwt-secret", "s3cret", "\"s3cret\"", |c| {
                c.jwt_secret = Some("s3cret".to_owned())
            }),
            sample(
                "jwt-public-key",
                "/etc/presenced/key.pem",
                "\"/etc/presenced/key.pem\"",
                |c| c.jwt_public_key = Some(PathBuf::from("/etc/presenced/key.pem")),
            ),
            sample("api-key", "k3y", "\"k3y\"", |c| {
                c.api_key = Some("k3y".to_owned())
            }),
            sample(
                "allowed-origins",
                "http://a, http://b",
                "[\"http://a\", \"http://b\"]",
                |c| c.allowed_origins = vec!["http://a".to_owned(), "http://b".to_owned()],
            ),
            sample(
                "redis",
                "redis://127.0.0.1:6379/",
                "\"redis://127.0.0.1:6379/\"",
                |c| c.redis = Some("redis://127.0.0.1:6379/".to_owned()),
            ),
            sample("redis-prefix", "staging:", "\"staging:\"", |c| {
                c.redis_prefix = "staging:".to_owned()
            }),
            sample("cluster-secret", "c1uster", "\"c1uster\"", |c| {
                c.cluster_secret = Some("c1uster".to_owned())
            }),
            sample(
                "webhook-url",
                "https://app.example/hooks",
                "\"https://app.example/hooks\"",
                |c| c.webhook_url = Some("https://app.example/hooks".to_owned()),
            ),
            sample("webhook-secret", "wh5ecret", "\"wh5ecret\"", |c| {
                c.webhook_secret = Some("wh5ecret".to_owned())
            }),
            sample("webhook-batch", "20", "20", |c| c.webhook_batch = 20),
            sample("webhook-retry-for", "1h", "\"1h\"", |c| {
                c.webhook_retry_for = Duration::from_secs(3600)
            }),
            sample("node-ttl", "2s", "\"2s\"", |c| {
                c.node_ttl = Duration::from_secs(2)
            }),
            sample("max-message-bytes", "1024", "1024", |c| {
                c.max_message_bytes = 1024
            }),
            sample("max-state-bytes", "100", "100", |c| c.max_state_bytes = 100),
            sample("max-rooms-per-connection", "7", "7", |c| {
                c.max_rooms_per_connection = 7
            }),
            sample("max-members-per-room", "50", "50", |c| {
                c.max_members_per_room = Some(50)
            }),
            sample("max-messages-per-second", "20", "20", |c| {
                c.max_messages_per_second = 20
            }),
            sample("max-connections", "500", "500", |c| c.max_connections = 500),
            sample("write-timeout", "3s", "\"3s\"", |c| {
                c.write_timeout = Duration::from_secs(3)
            }),
            sample("handshake-timeout", "2s", "\"2s\"", |c| {
                c.handshake_timeout = Duration::from_secs(2)
            }),
            sample("max-pending-connections", "64", "64", |c| {
                c.max_pending_connections = 64
            }),
            sample("worker-threads", "2", "2", |c| c.worker_threads = Some(2)),
            sample("min-wake-interval", "2ms", "\"2ms\"", |c| {
                c.min_wake_interval = Duration::from_millis(2)
            }),
            sample("log-format", "json", "\"json\"", |c| {
                c.log_format = LogFormat::Json
            }),
        ]
    }

    /// `Config` has no `PartialEq` (nothing else needs one); its `Debug` shows every field.
    fn assert_same(actual: &Config, expected: &Config, context: &str) {
        assert_eq!(format!("{actual:?}"), format!("{expected:?}"), "{context}");
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("presenced-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn env_name_of(name: &str) -> String {
        format!("PRESENCED_{}", name.to_uppercase().replace('-', "_"))
    }

    #[test]
    fn every_setting_has_a_sample() {
        let sampled: Vec<_> = samples().iter().map(|sample| sample.name).collect();
        assert_eq!(sampled, SETTING_NAMES);
    }

    #[test]
    fn every_setting_is_reachable_from_its_flag() {
        for sample in samples() {
            let flag = format!("--{}", sample.name);
            let config = Cli::try_parse_from(["presenced", &flag, sample.text])
                .expect("flag parses")
                .into_config()
                .expect("valid");
            let mut expected = Config::default();
            (sample.expect)(&mut expected);
            assert_same(&config, &expected, &flag);
        }
    }

    #[test]
    fn every_setting_is_reachable_from_its_toml_key_in_both_spellings() {
        for sample in samples() {
            for key in [sample.name.to_owned(), sample.name.replace('-', "_")] {
                let path = temp_file(
                    &format!("{key}.toml"),
                    &format!("{key} = {}\n", sample.toml),
                );
                let config =
                    Cli::parse_from(["presenced", "--config", path.to_str().expect("utf8")])
                        .into_config()
                        .unwrap_or_else(|error| panic!("{key}: {error}"));
                let mut expected = Config::default();
                (sample.expect)(&mut expected);
                assert_same(&config, &expected, &key);
            }
        }
        let path = temp_file("origins.toml", "allowed-origins = \"http://a, http://b\"\n");
        let config = Cli::parse_from(["presenced", "--config", path.to_str().expect("utf8")])
            .into_config()
            .expect("valid");
        assert_eq!(config.allowed_origins, ["http://a", "http://b"]);
    }

    #[test]
    fn a_key_given_in_both_spellings_is_refused() {
        let path = temp_file("twice.toml", "node-ttl = \"2s\"\nnode_ttl = \"3s\"\n");
        let cli = Cli::parse_from(["presenced", "--config", path.to_str().expect("utf8")]);
        assert!(matches!(cli.into_config(), Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn a_bad_duration_in_the_file_names_its_setting() {
        let path = temp_file("soon.toml", "reconnect_grace = \"soon\"\n");
        let cli = Cli::parse_from(["presenced", "--config", path.to_str().expect("utf8")]);
        assert!(matches!(
            cli.into_config(),
            Err(ConfigError::Invalid {
                name: "reconnect-grace",
                ..
            })
        ));
    }

    #[test]
    fn every_flag_has_its_variable_and_only_secrets_hide_their_values() {
        let command = Cli::command();
        let mut hidden = Vec::new();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            assert!(
                long == "config" || SETTING_NAMES.contains(&long),
                "--{long} is not a setting"
            );
            assert_eq!(
                arg.get_env().and_then(|env| env.to_str()),
                Some(env_name_of(long).as_str()),
                "--{long}"
            );
            if arg.is_hide_env_values_set() {
                hidden.push(long);
            }
        }
        // The Redis URL may carry an ACL user's password.
        assert_eq!(
            hidden,
            [
                "jwt-secret",
                "api-key",
                "redis",
                "cluster-secret",
                "webhook-secret"
            ]
        );
    }

    /// The environment is the process's, so this test sets it on a copy of itself: the
    /// parent runs the test binary again, filtered to this test, with every variable set.
    #[test]
    fn every_setting_reads_its_environment_variable_between_flag_and_file() {
        const CHILD: &str = "CONFIG_TEST_ENVIRONMENT_CHILD";
        const TEST: &str =
            "config::tests::every_setting_reads_its_environment_variable_between_flag_and_file";
        if std::env::var_os(CHILD).is_some() {
            // Only the flag and the variables are read here: both JWT settings are given,
            // which validation would refuse.
            let config = Cli::try_parse_from(["presenced", "--listen", "127.0.0.1:1"])
                .expect("parse")
                .merged()
                .expect("merged");
            let mut expected = Config::default();
            for sample in samples() {
                (sample.expect)(&mut expected);
            }
            expected.listen = "127.0.0.1:1".to_owned();
            assert_same(&config, &expected, "from the environment");
            return;
        }
        let file = temp_file(
            "under-env.toml",
            "redis-prefix = \"file:\"\nmax_state_bytes = 1\n",
        );
        let mut child =
            std::process::Command::new(std::env::current_exe().expect("the test binary"));
        child.args([TEST, "--exact", "--test-threads=1", "--nocapture"]);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PRESENCED_") {
                child.env_remove(name);
            }
        }
        child.env(CHILD, "1").env("PRESENCED_CONFIG", &file);
        for sample in samples() {
            child.env(env_name_of(sample.name), sample.text);
        }
        let output = child.output().expect("run the test binary");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains(&format!("test {TEST} ... ok")),
            "child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[test]
    fn help_lists_every_setting_and_its_default() {
        let mut command = Cli::command();
        let help = command.render_long_help().to_string();
        // Off unless given: there is no default to state.
        let without_default = [
            "jwt-secret",
            "jwt-public-key",
            "api-key",
            "redis",
            "cluster-secret",
            "state-file",
            "tls-cert",
            "tls-key",
            "webhook-url",
            "webhook-secret",
        ];
        for name in SETTING_NAMES {
            assert!(
                help.contains(&format!("--{name} ")),
                "--{name} not in --help"
            );
            let arg = command
                .get_arguments()
                .find(|arg| arg.get_long() == Some(name))
                .expect("a flag per setting");
            let line = arg.get_help().expect("help").to_string();
            assert_eq!(
                line.contains("default"),
                !without_default.contains(name),
                "--{name}: {line}"
            );
        }
    }

    #[test]
    fn defaults_stated_in_help_are_the_defaults() {
        let command = Cli::command();
        let mut described = Vec::new();
        for arg in command.get_arguments() {
            let (Some(long), Some(help)) = (arg.get_long(), arg.get_help()) else {
                continue;
            };
            let help = help.to_string();
            let Some((_, rest)) = help.split_once("[default: ") else {
                continue;
            };
            let stated = rest.split_once(']').expect("closed").0;
            let flag = format!("--{long}");
            match Cli::try_parse_from(["presenced", &flag, stated]).map(Cli::into_config) {
                Ok(Ok(config)) => assert_same(&config, &Config::default(), &flag),
                _ => described.push(long),
            }
        }
        // Stated in words because they are no single value.
        assert_eq!(
            described,
            [
                "max-members-per-room",
                "worker-threads",
                "min-wake-interval"
            ]
        );
    }
}
