//! Workspace sessions: how many are in each state, how long they take to open, the warm pool,
//! the quota time they use, and the proxy's traffic to them, all by session kind.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindState {
    kind: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindSource {
    kind: &'static str,
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindDirection {
    kind: &'static str,
    direction: &'static str,
}

/// The sessions' meters.
pub(crate) struct SessionMeters {
    sessions: Family<KindState, Gauge>,
    open_seconds: Family<KindSource, Histogram>,
    pool: Family<Kind, Gauge>,
    quota_minutes: Counter<f64, AtomicU64>,
    proxy_requests: Family<Kind, Counter>,
    proxy_bytes: Family<KindDirection, Counter>,
    proxy_websockets: Family<Kind, Gauge>,
}

impl SessionMeters {
    pub(super) fn register(names: &mut super::registry::Names<'_>) -> Self {
        let meters = Self {
            sessions: Family::default(),
            // 50 ms .. ~100 s: a warm pool answers in tens of ms, a cold start in seconds.
            open_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.05, 2.0, 12))
            }),
            pool: Family::default(),
            quota_minutes: Counter::default(),
            proxy_requests: Family::default(),
            proxy_bytes: Family::default(),
            proxy_websockets: Family::default(),
        };
        names.register(
            "sessions",
            "Workspace sessions on record by kind and state",
            meters.sessions.clone(),
        );
        names.register(
            "session_open_seconds",
            "Time from opening a session to its server answering, by kind and source (cold start or warm pool)",
            meters.open_seconds.clone(),
        );
        names.register(
            "pool_containers",
            "Started, unassigned containers waiting in the warm pool, by kind",
            meters.pool.clone(),
        );
        names.register(
            "quota_minutes_used",
            "Session minutes (ready until stopped) counted against users' time quotas",
            meters.quota_minutes.clone(),
        );
        names.register(
            "proxy_requests",
            "Requests the session proxy forwarded, by session kind",
            meters.proxy_requests.clone(),
        );
        names.register(
            "proxy_bytes",
            "Body bytes through the session proxy by kind and direction (in: to the session, out: to the browser)",
            meters.proxy_bytes.clone(),
        );
        names.register(
            "proxy_websockets",
            "WebSockets open through the session proxy, by session kind",
            meters.proxy_websockets.clone(),
        );
        meters
    }

    /// The sessions on record: `counts` holds every (kind, state) pair, zeros included, so a
    /// state that emptied shows 0 rather than its last value.
    pub(crate) fn set_sessions(&self, counts: &[(&'static str, &'static str, i64)]) {
        for &(kind, state, n) in counts {
            self.sessions
                .get_or_create(&KindState { kind, state })
                .set(n);
        }
    }

    /// A session of `kind` answered `secs` after it was opened; `source` says where its
    /// container came from (`cold`: started for it; `pool`: taken from the warm pool).
    pub(crate) fn opened(&self, kind: &'static str, source: &'static str, secs: f64) {
        self.open_seconds
            .get_or_create(&KindSource { kind, source })
            .observe(secs);
    }

    /// The warm pool of `kind` now holds `containers`.
    pub(crate) fn set_pool(&self, kind: &'static str, containers: u64) {
        self.pool
            .get_or_create(&Kind { kind })
            .set(i64::try_from(containers).unwrap_or(i64::MAX));
    }

    /// A session ended after `minutes` of use counted against its owner's quota.
    pub(crate) fn quota_used(&self, minutes: f64) {
        if minutes > 0.0 {
            self.quota_minutes.inc_by(minutes);
        }
    }

    /// The proxy's meters for sessions of `kind`, resolved once: recording through them takes
    /// no lock, only atomic adds.
    pub(crate) fn proxy(&self, kind: &'static str) -> ProxyMeters {
        let bytes = |direction| {
            self.proxy_bytes
                .get_or_create_owned(&KindDirection { kind, direction })
        };
        ProxyMeters {
            requests: self.proxy_requests.get_or_create_owned(&Kind { kind }),
            bytes_in: bytes("in"),
            bytes_out: bytes("out"),
            websockets: self.proxy_websockets.get_or_create_owned(&Kind { kind }),
        }
    }
}

/// The proxy's meters for one session kind; cheap to clone (shared atomics).
#[derive(Clone, Debug)]
pub(crate) struct ProxyMeters {
    requests: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    websockets: Gauge,
}

impl ProxyMeters {
    /// One request forwarded.
    pub(crate) fn request(&self) {
        self.requests.inc();
    }

    /// `n` bytes sent on to the session.
    pub(crate) fn sent_in(&self, n: u64) {
        self.bytes_in.inc_by(n);
    }

    /// `n` bytes sent back to the browser.
    pub(crate) fn sent_out(&self, n: u64) {
        self.bytes_out.inc_by(n);
    }

    /// A WebSocket opened; it counts as open until the guard drops.
    pub(crate) fn websocket(&self) -> OpenWebSocket {
        self.websockets.inc();
        OpenWebSocket(self.websockets.clone())
    }
}

/// An open WebSocket in `weft_proxy_websockets`.
pub(crate) struct OpenWebSocket(Gauge);

impl Drop for OpenWebSocket {
    fn drop(&mut self) {
        self.0.dec();
    }
}
