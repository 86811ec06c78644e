//! Settings from flags, `PRESENCED_*` environment variables and a TOML file, in that order
//! of precedence, with the contract's defaults underneath.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

/// Everything the server needs to start, settled and validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port.
    pub listen: String,
    /// How long a connection may stay silent before its sessions are dropped.
    pub heartbeat_timeout: Duration,
    /// How long a closed connection's sessions wait for a restore.
    pub reconnect_grace: Duration,
    /// At most one cursor frame and one diff per room per interval.
    pub cursor_interval: Duration,
    /// HS256 shared secret.
    pub jwt_secret: Option<String>,
    /// PEM file of an RS256, ES256 or EdDSA public key.
    pub jwt_public_key: Option<PathBuf>,
    /// Bearer key for `/api/*`.
    pub api_key: Option<String>,
    /// Browser origins allowed to open `/ws`; empty allows all.
    pub allowed_origins: Vec<String>,
    /// Redis URL for cluster mode.
    pub redis: Option<String>,
    /// Prefix of every Redis key and channel (several clusters may share one Redis).
    pub redis_prefix: String,
    /// A node silent this long is presumed dead (cluster mode).
    pub node_ttl: Duration,
    /// The largest frame a client may send; larger closes with 1009.
    pub max_message_bytes: usize,
    /// The largest serialized state of a user.
    pub max_state_bytes: usize,
    /// The most rooms one connection may be in.
    pub max_rooms_per_connection: usize,
    /// The most users one room may hold.
    pub max_members_per_room: Option<usize>,
    /// Sustained messages per second one connection may send (bursts of twice that pass).
    pub max_messages_per_second: u32,
    /// The most WebSocket connections this node accepts at once.
    pub max_connections: usize,
    /// Runtime worker threads; `None` is one per core. One runs a current-thread runtime.
    pub worker_threads: Option<usize>,
    /// With one worker thread: the shortest time between two of its wake-ups (see
    /// `pacing`). Zero wakes for every message. By default a fifth of the cursor interval.
    pub min_wake_interval: Duration,
    /// Frames a connection's outbox holds before stale cursor frames are dropped.
    pub outbox_frames: usize,
    /// `text` or `json` logs on standard error.
    pub log_format: LogFormat,
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

impl Default for Config {
    fn default() -> Self {
        let cursor_interval = Duration::from_millis(50);
        Config {
            listen: "127.0.0.1:8080".to_owned(),
            heartbeat_timeout: Duration::from_secs(60),
            reconnect_grace: Duration::from_secs(10),
            cursor_interval,
            jwt_secret: None,
            jwt_public_key: None,
            api_key: None,
            allowed_origins: Vec::new(),
            redis: None,
            redis_prefix: "presenced:".to_owned(),
            node_ttl: Duration::from_secs(5),
            max_message_bytes: 65_536,
            max_state_bytes: 4096,
            max_rooms_per_connection: 100,
            max_members_per_room: None,
            max_messages_per_second: 100,
            max_connections: 100_000,
            worker_threads: None,
            min_wake_interval: cursor_interval / WAKE_INTERVAL_DIVISOR,
            outbox_frames: 4096,
            log_format: LogFormat::Text,
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
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "PRESENCED_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Silence after which a connection's sessions are dropped [default: 60s].
    #[arg(long, env = "PRESENCED_HEARTBEAT_TIMEOUT", value_name = "DUR", value_parser = parse_duration)]
    pub heartbeat_timeout: Option<Duration>,
    /// How long a dropped connection's sessions wait for a restore [default: 10s].
    #[arg(long, env = "PRESENCED_RECONNECT_GRACE", value_name = "DUR", value_parser = parse_duration)]
    pub reconnect_grace: Option<Duration>,
    /// Cursor and diff batching interval [default: 50ms].
    #[arg(long, env = "PRESENCED_CURSOR_INTERVAL", value_name = "DUR", value_parser = parse_duration)]
    pub cursor_interval: Option<Duration>,
    /// HS256 secret; joins then need a valid JWT.
    #[arg(
        long,
        env = "PRESENCED_JWT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,
    /// PEM public key (RS256, ES256 or EdDSA); joins then need a valid JWT.
    #[arg(long, env = "PRESENCED_JWT_PUBLIC_KEY", value_name = "FILE")]
    pub jwt_public_key: Option<PathBuf>,
    /// Key required as `Authorization: Bearer KEY` on /api/*.
    #[arg(
        long,
        env = "PRESENCED_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Comma-separated browser origins allowed to connect (default: any).
    #[arg(long, env = "PRESENCED_ALLOWED_ORIGINS", value_name = "LIST")]
    pub allowed_origins: Option<String>,
    /// Redis URL: share rooms with other nodes.
    #[arg(long, env = "PRESENCED_REDIS", value_name = "URL")]
    pub redis: Option<String>,
    /// Prefix of Redis keys and channels [default: presenced:].
    #[arg(long, env = "PRESENCED_REDIS_PREFIX", value_name = "PREFIX")]
    pub redis_prefix: Option<String>,
    /// Silence after which another node is presumed dead [default: 5s].
    #[arg(long, env = "PRESENCED_NODE_TTL", value_name = "DUR", value_parser = parse_duration)]
    pub node_ttl: Option<Duration>,
    /// Largest client frame in bytes [default: 65536].
    #[arg(long, env = "PRESENCED_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Largest serialized user state in bytes [default: 4096].
    #[arg(long, env = "PRESENCED_MAX_STATE_BYTES", value_name = "BYTES")]
    pub max_state_bytes: Option<usize>,
    /// Most rooms per connection [default: 100].
    #[arg(long, env = "PRESENCED_MAX_ROOMS_PER_CONNECTION", value_name = "N")]
    pub max_rooms_per_connection: Option<usize>,
    /// Most users per room [default: no limit].
    #[arg(long, env = "PRESENCED_MAX_MEMBERS_PER_ROOM", value_name = "N")]
    pub max_members_per_room: Option<usize>,
    /// Sustained messages per second per connection [default: 100].
    #[arg(long, env = "PRESENCED_MAX_MESSAGES_PER_SECOND", value_name = "N")]
    pub max_messages_per_second: Option<u32>,
    /// Most simultaneous WebSocket connections [default: 100000].
    #[arg(long, env = "PRESENCED_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Worker threads [default: one per core]. One thread spends the least CPU per delivered
    /// update at moderate load (no cross-thread wake-ups); more threads add capacity.
    #[arg(long, env = "PRESENCED_WORKER_THREADS", value_name = "N")]
    pub worker_threads: Option<usize>,
    /// With `--worker-threads 1`: the shortest time between two wake-ups of the idle
    /// thread; messages arriving in between are read together, delayed at most this long.
    /// 0 wakes for every message [default: a fifth of --cursor-interval, 10ms].
    #[arg(long, env = "PRESENCED_MIN_WAKE_INTERVAL", value_name = "DUR", value_parser = parse_duration)]
    pub min_wake_interval: Option<Duration>,
    /// Log format on standard error [default: text].
    #[arg(long, env = "PRESENCED_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// The TOML file: the same names as the flags, with `-` or `_`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<String>,
    #[serde(alias = "heartbeat_timeout")]
    heartbeat_timeout: Option<String>,
    #[serde(alias = "reconnect_grace")]
    reconnect_grace: Option<String>,
    #[serde(alias = "cursor_interval")]
    cursor_interval: Option<String>,
    #[serde(alias = "jwt_secret")]
    jwt_secret: Option<String>,
    #[serde(alias = "jwt_public_key")]
    jwt_public_key: Option<PathBuf>,
    #[serde(alias = "api_key")]
    api_key: Option<String>,
    #[serde(alias = "allowed_origins")]
    allowed_origins: Option<OriginList>,
    redis: Option<String>,
    #[serde(alias = "redis_prefix")]
    redis_prefix: Option<String>,
    #[serde(alias = "node_ttl")]
    node_ttl: Option<String>,
    #[serde(alias = "max_message_bytes")]
    max_message_bytes: Option<usize>,
    #[serde(alias = "max_state_bytes")]
    max_state_bytes: Option<usize>,
    #[serde(alias = "max_rooms_per_connection")]
    max_rooms_per_connection: Option<usize>,
    #[serde(alias = "max_members_per_room")]
    max_members_per_room: Option<usize>,
    #[serde(alias = "max_messages_per_second")]
    max_messages_per_second: Option<u32>,
    #[serde(alias = "max_connections")]
    max_connections: Option<usize>,
    #[serde(alias = "worker_threads")]
    worker_threads: Option<usize>,
    #[serde(alias = "min_wake_interval")]
    min_wake_interval: Option<String>,
    #[serde(alias = "log_format")]
    log_format: Option<LogFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OriginList {
    Text(String),
    List(Vec<String>),
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

/// Pacing longer than this would be felt as lag by every client, not only save CPU.
const MAX_WAKE_INTERVAL: Duration = Duration::from_millis(100);

/// Reads `250ms`, `10s`, `2m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|error| format!("{error} (use e.g. 250ms, 10s, 2m)"))
}

impl Cli {
    /// Merges flags and environment (already in `self`) over the file over the defaults.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            None => FileConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?
            }
        };
        let duration =
            |name: &'static str, text: Option<String>| -> Result<Option<Duration>, ConfigError> {
                text.map(|t| {
                    parse_duration(&t).map_err(|message| ConfigError::Invalid { name, message })
                })
                .transpose()
            };
        let defaults = Config::default();
        let origins = self
            .allowed_origins
            .map(OriginList::Text)
            .or(file.allowed_origins)
            .map(|list| match list {
                OriginList::Text(text) => text
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                OriginList::List(list) => list,
            })
            .unwrap_or_default();
        let cursor_interval = self
            .cursor_interval
            .or(duration("cursor-interval", file.cursor_interval)?)
            .unwrap_or(defaults.cursor_interval);
        let config = Config {
            listen: self.listen.or(file.listen).unwrap_or(defaults.listen),
            heartbeat_timeout: self
                .heartbeat_timeout
                .or(duration("heartbeat-timeout", file.heartbeat_timeout)?)
                .unwrap_or(defaults.heartbeat_timeout),
            reconnect_grace: self
                .reconnect_grace
                .or(duration("reconnect-grace", file.reconnect_grace)?)
                .unwrap_or(defaults.reconnect_grace),
            cursor_interval,
            jwt_secret: self.jwt_secret.or(file.jwt_secret),
            jwt_public_key: self.jwt_public_key.or(file.jwt_public_key),
            api_key: self.api_key.or(file.api_key),
            allowed_origins: origins,
            redis: self.redis.or(file.redis),
            redis_prefix: self
                .redis_prefix
                .or(file.redis_prefix)
                .unwrap_or(defaults.redis_prefix),
            node_ttl: self
                .node_ttl
                .or(duration("node-ttl", file.node_ttl)?)
                .unwrap_or(defaults.node_ttl),
            max_message_bytes: self
                .max_message_bytes
                .or(file.max_message_bytes)
                .unwrap_or(defaults.max_message_bytes),
            max_state_bytes: self
                .max_state_bytes
                .or(file.max_state_bytes)
                .unwrap_or(defaults.max_state_bytes),
            max_rooms_per_connection: self
                .max_rooms_per_connection
                .or(file.max_rooms_per_connection)
                .unwrap_or(defaults.max_rooms_per_connection),
            max_members_per_room: self.max_members_per_room.or(file.max_members_per_room),
            max_messages_per_second: self
                .max_messages_per_second
                .or(file.max_messages_per_second)
                .unwrap_or(defaults.max_messages_per_second),
            max_connections: self
                .max_connections
                .or(file.max_connections)
                .unwrap_or(defaults.max_connections),
            worker_threads: self
                .worker_threads
                .or(file.worker_threads)
                .filter(|&n| n > 0),
            min_wake_interval: self
                .min_wake_interval
                .or(duration("min-wake-interval", file.min_wake_interval)?)
                .unwrap_or(cursor_interval / WAKE_INTERVAL_DIVISOR),
            outbox_frames: defaults.outbox_frames,
            log_format: self
                .log_format
                .or(file.log_format)
                .unwrap_or(defaults.log_format),
        };
        config.validate()?;
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
        if self.max_message_bytes < 256 {
            return invalid("max-message-bytes", "must be at least 256");
        }
        if self.max_rooms_per_connection == 0 || self.max_messages_per_second == 0 {
            return invalid(
                "max-rooms-per-connection/max-messages-per-second",
                "must be at least 1",
            );
        }
        if self.jwt_secret.is_some() && self.jwt_public_key.is_some() {
            return invalid(
                "jwt-secret",
                "give --jwt-secret or --jwt-public-key, not both",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
}
