//! Failed sign-ins per client address: a sliding window, bounded in memory.
//!
//! An address that presented `max_failures` tokens that did not authenticate within `window`
//! is refused before its next token is even looked up, until the oldest of those failures
//! slides out of the window. Successful sign-ins are not counted. Tokens carry no account
//! name until they are valid, so failures are counted per address only. IPv6 addresses count
//! per /64, the block one host is usually given, so that an attacker cannot step through
//! addresses of its own block; IPv4-mapped IPv6 addresses count as the IPv4 address.
//!
//! Not for: request rates in general, nor limits shared between several Weft hosts (each
//! counts what it sees).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The failure counts of recent client addresses.
pub(super) struct SignInLimiter {
    max_failures: usize,
    window: Duration,
    /// Addresses tracked at once; past that the one whose last failure is oldest is forgotten.
    capacity: usize,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl SignInLimiter {
    /// `max_failures` 0 turns the limit off.
    pub(super) fn new(max_failures: u32, window: Duration, capacity: usize) -> Self {
        Self {
            max_failures: max_failures as usize,
            window,
            capacity: capacity.max(1),
            failures: Mutex::default(),
        }
    }

    /// `Err(wait)` while `peer` is over its limit: how long until it may try again.
    pub(super) fn check(&self, peer: IpAddr) -> Result<(), Duration> {
        self.check_at(peer, Instant::now())
    }

    /// Counts a failed sign-in from `peer`.
    pub(super) fn failed(&self, peer: IpAddr) {
        self.failed_at(peer, Instant::now());
    }

    fn check_at(&self, peer: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let mut all = self.failures.lock().expect("sign-in limiter lock");
        let Some(times) = all.get_mut(&key(peer)) else {
            return Ok(());
        };
        self.forget_old(times, now);
        match times.front() {
            Some(&oldest) if times.len() >= self.max_failures => {
                Err((oldest + self.window).saturating_duration_since(now))
            }
            _ => Ok(()),
        }
    }

    fn failed_at(&self, peer: IpAddr, now: Instant) {
        if self.max_failures == 0 {
            return;
        }
        let key = key(peer);
        let mut all = self.failures.lock().expect("sign-in limiter lock");
        if !all.contains_key(&key) && all.len() >= self.capacity {
            self.make_room(&mut all, now);
        }
        let times = all.entry(key).or_default();
        self.forget_old(times, now);
        times.push_back(now);
        while times.len() > self.max_failures {
            times.pop_front();
        }
    }

    /// Drops failures that left the window.
    fn forget_old(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= self.window)
        {
            times.pop_front();
        }
    }

    /// Forgets every address whose failures all left the window, or else the one whose last
    /// failure is oldest. Runs only when the table is full.
    fn make_room(&self, all: &mut HashMap<IpAddr, VecDeque<Instant>>, now: Instant) {
        all.retain(|_, times| {
            times
                .back()
                .is_some_and(|&t| now.saturating_duration_since(t) < self.window)
        });
        if all.len() >= self.capacity
            && let Some(stalest) = all
                .iter()
                .min_by_key(|(_, times)| times.back().copied())
                .map(|(ip, _)| *ip)
        {
            all.remove(&stalest);
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.failures.lock().expect("sign-in limiter lock").len()
    }
}

/// What failures are counted under: the IPv4 address, or the /64 of an IPv6 one.
fn key(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_is_refused_after_its_failures_until_they_slide_out() {
        let limiter = SignInLimiter::new(3, Duration::from_secs(60), 100);
        let t0 = Instant::now();
        let a = ip("198.51.100.7");
        for i in 0..3 {
            assert_eq!(limiter.check_at(a, t0), Ok(()));
            limiter.failed_at(a, t0 + Duration::from_secs(i * 10));
        }
        let now = t0 + Duration::from_secs(25);
        assert_eq!(limiter.check_at(a, now), Err(Duration::from_secs(35)));
        assert_eq!(limiter.check_at(ip("198.51.100.8"), now), Ok(()));
        // The first failure leaves the window: one more try.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(limiter.check_at(a, later), Ok(()));
        limiter.failed_at(a, later);
        assert_eq!(
            limiter.check_at(a, later),
            Err(Duration::from_secs(10)),
            "the second failure (at 10 s) is now the oldest"
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let limiter = SignInLimiter::new(2, Duration::from_secs(60), 100);
        let now = Instant::now();
        limiter.failed_at(ip("2001:db8:1:2::1"), now);
        limiter.failed_at(ip("2001:db8:1:2:ffff::9"), now);
        assert!(limiter.check_at(ip("2001:db8:1:2::77"), now).is_err());
        assert!(limiter.check_at(ip("2001:db8:1:3::1"), now).is_ok());
        limiter.failed_at(ip("::ffff:198.51.100.7"), now);
        limiter.failed_at(ip("198.51.100.7"), now);
        assert!(limiter.check_at(ip("198.51.100.7"), now).is_err());
    }

    #[test]
    fn memory_stays_bounded_and_the_stalest_address_goes_first() {
        let limiter = SignInLimiter::new(1, Duration::from_secs(60), 3);
        let t0 = Instant::now();
        for (i, last) in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
            .iter()
            .enumerate()
        {
            limiter.failed_at(ip(last), t0 + Duration::from_secs(i as u64));
            assert!(limiter.tracked() <= 3);
        }
        let now = t0 + Duration::from_secs(5);
        assert!(limiter.check_at(ip("10.0.0.1"), now).is_ok(), "forgotten");
        assert!(limiter.check_at(ip("10.0.0.4"), now).is_err());
        // Expired entries make room before anyone still inside the window is dropped.
        let later = t0 + Duration::from_secs(62);
        limiter.failed_at(ip("10.0.0.5"), later);
        assert!(limiter.check_at(ip("10.0.0.4"), later).is_err());
        assert_eq!(limiter.tracked(), 2);
    }

    #[test]
    fn zero_failures_turns_the_limit_off() {
        let limiter = SignInLimiter::new(0, Duration::from_secs(60), 3);
        let a = ip("10.0.0.1");
        limiter.failed(a);
        assert!(limiter.check(a).is_ok());
        assert_eq!(limiter.tracked(), 0);
    }
}
