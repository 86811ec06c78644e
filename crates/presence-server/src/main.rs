//! `presenced`: flags, environment and TOML become a `Config`; bind; print the
//! `listening on` line; serve until SIGTERM or SIGINT.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use std::io::{IsTerminal, Write};
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use presence_server::config::{Cli, Config, LogFormat};
use presence_server::pacing::{self, WakePacer};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

mod allocator;

fn main() -> anyhow::Result<()> {
    let config = Cli::parse().into_config()?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal; a pipe (systemd, docker, a file) gets plain text.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    raise_open_file_limit();

    let runtime = build_runtime(&config)?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        // Tests, scripts and supervisors wait for exactly this line; it must carry the real
        // port, and come only once the server will serve (keys loaded, Redis reached).
        let scheme = if config.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        let announce = move |address: std::net::SocketAddr| {
            let mut stdout = std::io::stdout();
            let _ = writeln!(stdout, "listening on {scheme}://{address}");
            let _ = stdout.flush();
            tracing::info!(%address, "presenced started");
        };
        presence_server::run(listener, config, shutdown_signal(), announce).await?;
        tracing::info!("presenced stopped");
        Ok(())
    })
}

/// One worker thread runs tokio's current-thread runtime: no work stealing and no
/// second thread to wake, and the only flavour that may pace its wake-ups (see
/// `presence_server::pacing`). More threads run the multi-threaded one.
fn build_runtime(config: &Config) -> std::io::Result<tokio::runtime::Runtime> {
    let mut runtime = match config.worker_threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        threads => {
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            if let Some(threads) = threads {
                runtime.worker_threads(threads);
            }
            runtime
        }
    };
    let paced = config.worker_threads == Some(1) && !config.min_wake_interval.is_zero();
    let pacer = paced.then(|| pacing::install(WakePacer::new(config.min_wake_interval)));
    if let Some(pacer) = pacer {
        tracing::info!(min_wake_interval = ?config.min_wake_interval, "one worker thread, wake-ups paced");
        runtime.on_thread_unpark(move || pacer.woke(Instant::now()));
    }
    runtime.on_thread_park(move || {
        allocator::flush_thread_cache_when_idle();
        if let Some(pacer) = pacer {
            pacer.pause();
        }
    });
    runtime.enable_all().build()
}

/// Every connection is a file descriptor, and the usual soft limit (1024) would cap a node
/// far below what its memory holds. Raise it to the hard limit; the accept loop already
/// survives hitting whatever limit remains (see listener.rs).
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(
            limit,
            "open file limit (RLIMIT_NOFILE soft) raised to the hard limit"
        ),
        Err(error) => {
            tracing::warn!(%error, "could not raise the open file limit; keeping the inherited one")
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
