//! `weft serve`: bind, serve, and shut down gracefully on SIGINT/SIGTERM.

use crate::config::Config;
use crate::state::AppState;
use crate::{api, app};
use anyhow::Context as _;
use tokio::net::TcpListener;

/// Runs the server until a shutdown signal, then drains in-flight requests for a bounded time.
pub(crate) async fn serve(mut config: Config) -> anyhow::Result<()> {
    // The sessions listener is bound first: session origins carry its port (`{port}`), so an
    // ephemeral one must be known before the services start.
    let sessions = TcpListener::bind(config.workspaces.sessions_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for workspace sessions",
                config.workspaces.sessions_listen
            )
        })?;
    config.workspaces.sessions_listen = sessions.local_addr()?;
    let state = AppState::open(config).await?;
    let listener = TcpListener::bind(state.config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", state.config.listen))?;
    // Every listener is bound before Weft says it listens: a client that waits for the line
    // can use any of them at once.
    let scheduler = match state.config.scheduler.listen {
        Some(listen) => Some(
            TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen} for the scheduler"))?,
        ),
        None => None,
    };
    // Listening for signals before saying Weft listens: a supervisor may stop it at once.
    let stop = shutdown_signal();
    if let Some(scheduler) = &scheduler {
        let addr = scheduler.local_addr()?;
        tracing::info!(%addr, "scheduler listening on http://{addr}");
    }
    let sessions_addr = sessions.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Its threads run before Weft says it listens: whoever reads the line finds them.
    serve_sessions(sessions, &state, stop_tx.subscribe())?;
    tracing::info!(
        addr = %sessions_addr,
        sessions_url = %state.config.workspaces.sessions_url,
        "sessions listening on http://{sessions_addr}"
    );
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        data_dir = %state.config.data_dir.display(),
        backend = ?state.store.backend(),
        version = env!("CARGO_PKG_VERSION"),
        "weft listening on http://{addr}"
    );
    let beside = |listener: TcpListener, app: axum::Router, name: &'static str| {
        let mut stopped = stop_tx.subscribe();
        tokio::spawn(async move {
            let stop = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(err) = api::serve(listener, app).with_graceful_shutdown(stop).await {
                tracing::error!(%err, "the {name} listener failed");
            }
        });
    };
    if let Some(scheduler) = scheduler {
        beside(scheduler, app::scheduler_router(state.clone()), "scheduler");
    }
    let server = api::serve(listener, app::router(state.clone()))
        .with_graceful_shutdown(async move {
            stop.await;
            let _ = stop_tx.send(true);
        })
        .into_future();
    let drain_deadline = async move {
        let mut rx = stop_rx;
        let _ = rx.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(api::SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result.context("server failed")?,
        () = drain_deadline => tracing::warn!("connections still open after the grace period; closing them"),
    }
    state.store.close().await;
    tracing::info!("weft stopped");
    Ok(())
}

/// Serves the sessions proxy on `[workspaces] proxy_threads` threads of its own, each a
/// single-threaded runtime accepting from `listener` until `stop`. On the shared work-stealing
/// runtime, a proxied request's tasks (the browser's connection, the container's, the pool's)
/// woke one another across threads; here a request and its container connection stay on one
/// thread, and the threads share only the listening socket and the services' caches (the
/// README's proxy benchmark has the figures).
fn serve_sessions(
    listener: TcpListener,
    state: &AppState,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let threads = match state.config.workspaces.proxy_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n as usize,
    };
    let listener = listener.into_std()?;
    for n in 0..threads {
        let listener = listener.try_clone()?;
        let app = crate::workspace::proxy::router(state.clone());
        let mut stop = stop.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name(format!("weft-proxy-{n}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let stopped = async move {
                        let _ = stop.wait_for(|s| *s).await;
                    };
                    let served = match TcpListener::from_std(listener) {
                        Ok(listener) => {
                            api::serve(listener, app)
                                .with_graceful_shutdown(stopped)
                                .await
                        }
                        Err(err) => Err(err),
                    };
                    if let Err(err) = served {
                        tracing::error!(%err, "the sessions listener failed");
                    }
                })
            })?;
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed at the call, not at the first
/// poll: a signal that comes once Weft has said it listens shuts it down gracefully instead of
/// killing it.
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        let (interrupt, terminate) = (received(interrupt), received(terminate));
        #[cfg(not(unix))]
        let (interrupt, terminate) = (
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            std::future::pending::<()>(),
        );
        tokio::select! {
            () = interrupt => tracing::info!("SIGINT received, shutting down"),
            () = terminate => tracing::info!("SIGTERM received, shutting down"),
        }
    }
}

/// Resolves when the signal `listener` listens for arrives (never if it could not be set up).
#[cfg(unix)]
async fn received(listener: std::io::Result<tokio::signal::unix::Signal>) {
    match listener {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(err) => {
            tracing::error!(%err, "cannot listen for a shutdown signal");
            std::future::pending::<()>().await;
        }
    }
}
