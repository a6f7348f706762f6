//! The time quota of workspace sessions: minutes of session time per user per calendar period
//! (UTC day, week or month), counted from the stored sessions (ready until stopped), so every
//! stop counts, including those the reaper or a reconciliation found.

use super::config::{QuotaPeriod, WorkspacesConfig};
use crate::error::{Code, Error, Result};
use crate::store::{Store, now_ms, time};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// A user's session time in the current period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Usage {
    pub period: QuotaPeriod,
    pub period_start: DateTime<Utc>,
    pub resets_at: DateTime<Utc>,
    /// `None`: no quota.
    pub quota_minutes: Option<f64>,
    pub used_seconds: f64,
    /// `None` without a quota.
    pub remaining_seconds: Option<f64>,
    pub active_sessions: u32,
}

/// The UTC period around `now`: its start and its end.
fn period(kind: QuotaPeriod, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = Utc
        .with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0)
        .single()
        .unwrap_or(now);
    match kind {
        QuotaPeriod::Day => (day, day + Duration::days(1)),
        QuotaPeriod::Week => {
            let start = day - Duration::days(i64::from(now.weekday().num_days_from_monday()));
            (start, start + Duration::days(7))
        }
        QuotaPeriod::Month => {
            let start = Utc
                .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
                .single()
                .unwrap_or(day);
            let (y, m) = if now.month() == 12 {
                (now.year() + 1, 1)
            } else {
                (now.year(), now.month() + 1)
            };
            (
                start,
                Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
                    .single()
                    .unwrap_or(start + Duration::days(31)),
            )
        }
    }
}

/// `owner`'s session time in the current period.
pub(crate) async fn usage(store: &Store, config: &WorkspacesConfig, owner: &str) -> Result<Usage> {
    let now_ms = now_ms();
    let (start, end) = period(config.quota_period, time(now_ms));
    let start_ms = start.timestamp_millis();
    let spans = super::records::session_spans(store, owner, start_ms).await?;
    let mut used_ms = 0i64;
    let mut active = 0;
    for (ready, stopped) in spans {
        if stopped.is_none() {
            active += 1;
        }
        used_ms += (stopped.unwrap_or(now_ms).min(now_ms) - ready.max(start_ms)).max(0);
    }
    let used_seconds = used_ms as f64 / 1e3;
    let quota_minutes = (config.quota_minutes > 0.0).then_some(config.quota_minutes);
    Ok(Usage {
        period: config.quota_period,
        period_start: start,
        resets_at: end,
        quota_minutes,
        used_seconds,
        remaining_seconds: quota_minutes.map(|q| (q * 60.0 - used_seconds).max(0.0)),
        active_sessions: active,
    })
}

/// Refuses a start when `usage` has no time left.
pub(crate) fn check(usage: &Usage) -> Result<()> {
    match usage.remaining_seconds {
        Some(left) if left <= 0.0 => Err(Error::new(
            Code::SessionQuotaExceeded,
            format!(
                "your session time for this {} is spent ({} minutes)",
                usage.period.as_str(),
                usage.quota_minutes.unwrap_or_default()
            ),
        )
        .details(serde_json::json!({
            "used_seconds": usage.used_seconds,
            "remaining_seconds": 0,
            "quota_minutes": usage.quota_minutes,
            "resets_at": usage.resets_at,
        }))
        .hint("the quota resets at resets_at; an admin sets it with [workspaces] quota_minutes")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_calendar_periods_in_utc() {
        let now = Utc.with_ymd_and_hms(2026, 12, 31, 15, 4, 5).unwrap();
        let (s, e) = period(QuotaPeriod::Month, now);
        assert_eq!(
            (s.to_rfc3339(), e.to_rfc3339()),
            (
                "2026-12-01T00:00:00+00:00".into(),
                "2027-01-01T00:00:00+00:00".into()
            )
        );
        let (s, e) = period(QuotaPeriod::Week, now);
        assert_eq!(
            (s.to_rfc3339(), e.to_rfc3339()),
            (
                "2026-12-28T00:00:00+00:00".into(),
                "2027-01-04T00:00:00+00:00".into()
            )
        );
        let (s, _) = period(QuotaPeriod::Day, now);
        assert_eq!(s.to_rfc3339(), "2026-12-31T00:00:00+00:00");
    }
}
