//! Rate and resource limits at the hub's edge (issue 6): handshakes per IP
//! per second, messages per connection per second (token bucket), the
//! global ingest ceiling, connections per token subject, unauthenticated
//! connections per IP, and the bytes of HTTP request bodies being
//! received hub-wide (`max_body_bytes_in_flight`). Each refusal is a `RATE_LIMITED` error whose
//! `data.reason` names the limit, is counted in
//! `progress_hub_rate_limited_total{limit}` (by `data.reason`), and carries `retry_after_ms`
//! when waiting helps.
//!
//! Peers in `rate_limit_exempt` (default: loopback) skip the limits keyed by
//! the peer (handshakes, messages, anonymous connections per IP): behind a
//! same-host proxy every client shares its address, and local tooling
//! (benchmarks, tests) should not be throttled. Subject, global and size
//! limits apply to everyone.

use crate::config::Config;
use crate::metrics::Metrics;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use hub_proto::{ErrorCode, ProtoError};
use parking_lot::Mutex;
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// When a body refused for want of room should be sent again: bodies
/// being received are answered within `handshake_timeout`, most at once.
pub const BODY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// An address block (`10.0.0.0/8`, `::1`, `192.168.1.7`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` lies in this block (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The key per-IP limits count under: the address itself for IPv4, its
/// /64 network for IPv6 (one host usually holds a whole /64).
pub fn peer_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

/// Parses a comma-separated list of addresses or CIDR blocks.
pub fn parse_networks(list: &str) -> Result<Vec<Network>, String> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (addr, prefix) = match item.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (item, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{item}` is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("`{item}`: the prefix length must be 0..={max}")),
            },
        };
        out.push(Network {
            addr: addr.to_canonical(),
            prefix,
        });
    }
    Ok(out)
}

/// A `RATE_LIMITED` error for `limit`, with `retry_after_ms` when known.
pub fn rate_limited(
    limit: &str,
    message: &str,
    max: u64,
    retry_after: Option<Duration>,
) -> ProtoError {
    let mut data = json!({"reason": limit, "limit": max});
    if let Some(wait) = retry_after {
        // Rounded up: retrying after this long succeeds.
        let ms = wait.as_micros().div_ceil(1000).max(1) as u64;
        data["retry_after_ms"] = json!(ms);
    }
    ProtoError::new(ErrorCode::RateLimited, message).with_data(data)
}

fn quota(per_second: u32) -> Option<Quota> {
    NonZeroU32::new(per_second).map(Quota::per_second)
}

/// A token bucket for one connection's messages.
pub struct MessageBucket {
    limiter: DefaultDirectRateLimiter,
    per_second: u32,
}

impl MessageBucket {
    /// Takes one token, or says how long until one is available.
    pub fn check(&self) -> Result<(), ProtoError> {
        self.limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            rate_limited(
                "messages",
                "this connection sends messages faster than the hub allows; slow down",
                u64::from(self.per_second),
                Some(wait),
            )
        })
    }
}

/// Every edge limit of one hub.
pub struct Limits {
    exempt: Vec<Network>,
    handshakes: Option<DefaultKeyedRateLimiter<IpAddr>>,
    handshakes_per_second: u32,
    ingest: Option<DefaultDirectRateLimiter>,
    ingest_per_second: u32,
    /// `max_messages_per_second` for the HTTP API, per peer address: a
    /// request is not a connection, so the WebSocket's per-connection
    /// bucket has nothing to hang on.
    http_messages: Option<DefaultKeyedRateLimiter<IpAddr>>,
    messages_per_second: u32,
    per_user: usize,
    anonymous_per_ip: usize,
    /// `max_connections`, and the places taken under it (reserved at the
    /// handshake, so concurrent handshakes cannot all pass one check).
    max_connections: usize,
    open: AtomicUsize,
    users: Mutex<HashMap<String, usize>>,
    anonymous: Mutex<HashMap<IpAddr, usize>>,
    /// `max_body_bytes_in_flight` (clamped to what a semaphore holds) and
    /// its bytes, one permit each (none: no bound).
    body_budget: usize,
    bodies: Option<Arc<Semaphore>>,
    metrics: Arc<Metrics>,
}

impl Limits {
    /// The limits a configuration asks for (validated: `rate_limit_exempt` parses).
    pub fn new(cfg: &Config, metrics: Arc<Metrics>) -> Arc<Self> {
        let body_budget = cfg.max_body_bytes_in_flight.min(Semaphore::MAX_PERMITS);
        Arc::new(Limits {
            exempt: parse_networks(&cfg.rate_limit_exempt).unwrap_or_default(),
            handshakes: quota(cfg.handshakes_per_ip_per_second).map(DefaultKeyedRateLimiter::keyed),
            handshakes_per_second: cfg.handshakes_per_ip_per_second,
            ingest: quota(cfg.max_ingest_per_second).map(DefaultDirectRateLimiter::direct),
            ingest_per_second: cfg.max_ingest_per_second,
            http_messages: quota(cfg.max_messages_per_second).map(DefaultKeyedRateLimiter::keyed),
            messages_per_second: cfg.max_messages_per_second,
            per_user: cfg.max_connections_per_user,
            anonymous_per_ip: cfg.max_anonymous_connections_per_ip,
            max_connections: cfg.max_connections,
            open: AtomicUsize::new(0),
            users: Mutex::default(),
            anonymous: Mutex::default(),
            body_budget,
            bodies: (body_budget > 0).then(|| Arc::new(Semaphore::new(body_budget))),
            metrics,
        })
    }

    /// Whether `ip` skips the per-peer limits.
    pub fn is_exempt(&self, ip: IpAddr) -> bool {
        self.exempt.iter().any(|n| n.contains(ip))
    }

    /// Counts a refusal answered over HTTP (errors sent on a connection are
    /// counted by the outbox, by their `data.reason`).
    pub fn count(&self, limit: &str) {
        self.metrics.limited(limit);
    }

    /// A WebSocket or SSE handshake from `ip` (checked before the token, so
    /// a flood costs no signature checks). The error goes out as HTTP 429
    /// with `Retry-After`.
    pub fn handshake(&self, ip: IpAddr) -> Result<(), ProtoError> {
        self.per_address(
            self.handshakes.as_ref(),
            ip,
            "handshakes",
            "too many connection attempts from this address; retry later",
            self.handshakes_per_second,
        )
    }

    /// The message bucket for a new connection from `ip` (none: unlimited).
    pub fn message_bucket(&self, ip: IpAddr) -> Option<MessageBucket> {
        let q = quota(self.messages_per_second)?;
        (!self.is_exempt(ip)).then(|| MessageBucket {
            limiter: DefaultDirectRateLimiter::direct(q),
            per_second: self.messages_per_second,
        })
    }

    /// One HTTP API request that carries a message (an event, a cancel)
    /// from `ip`: `max_messages_per_second` per peer address, as the
    /// WebSocket has per connection (exempt peers skip it). The error goes
    /// out as HTTP 429 with `Retry-After`.
    pub fn http_message(&self, ip: IpAddr) -> Result<(), ProtoError> {
        self.per_address(
            self.http_messages.as_ref(),
            ip,
            "messages",
            "too many requests from this address; slow down",
            self.messages_per_second,
        )
    }

    /// One request from `ip` against a per-address `limiter` (none:
    /// unlimited; exempt peers skip it): past it, `RATE_LIMITED` naming
    /// `reason` and `per_second`, with the wait, counted under `reason`.
    fn per_address(
        &self,
        limiter: Option<&DefaultKeyedRateLimiter<IpAddr>>,
        ip: IpAddr,
        reason: &str,
        message: &str,
        per_second: u32,
    ) -> Result<(), ProtoError> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        if self.is_exempt(ip) {
            return Ok(());
        }
        limiter.check_key(&peer_key(ip)).map_err(|not_until| {
            self.count(reason);
            rate_limited(
                reason,
                message,
                u64::from(per_second),
                Some(not_until.wait_time_from(DefaultClock::default().now())),
            )
        })
    }

    /// One producer message into the engine (the global ingest ceiling).
    /// Not counted here: the caller's answer is.
    pub fn ingest(&self) -> Result<(), ProtoError> {
        let Some(limiter) = &self.ingest else {
            return Ok(());
        };
        limiter.check().map_err(|not_until| {
            rate_limited(
                "ingest",
                "the hub takes in no more events per second than it is configured for; retry shortly",
                u64::from(self.ingest_per_second),
                Some(not_until.wait_time_from(DefaultClock::default().now())),
            )
        })
    }

    /// Reserves `bytes` of `max_body_bytes_in_flight` for a request body
    /// about to be read, given back when the returned permit drops. At
    /// most the whole budget is reserved, so one body of any size is
    /// admitted when none is being received. A refusal is `RATE_LIMITED`
    /// (`bodies`, `retry_after_ms`); not counted here: the caller's answer is.
    pub fn body(&self, bytes: usize) -> Result<BodyPermit, ProtoError> {
        let Some(bodies) = &self.bodies else {
            return Ok(BodyPermit { _bytes: None });
        };
        let want = bytes.min(self.body_budget);
        let want = u32::try_from(want).unwrap_or(u32::MAX);
        match bodies.clone().try_acquire_many_owned(want) {
            Ok(permit) => Ok(BodyPermit {
                _bytes: Some(permit),
            }),
            Err(_) => Err(rate_limited(
                "bodies",
                "the hub is receiving as many request bodies as it holds at once; retry shortly",
                self.body_budget as u64,
                Some(BODY_RETRY_AFTER),
            )),
        }
    }

    /// Admits a connection against the per-subject and per-IP connection
    /// caps. `authenticated`: the principal comes from a verified token
    /// (counted by subject); otherwise it is anonymous (counted by IP), and
    /// so is a token without a subject (`sub` empty or absent), which has
    /// nothing else to be counted by.
    /// The returned slot frees its place when dropped. A refusal is
    /// `RATE_LIMITED` naming the cap in `data.reason` (HTTP 429, as the
    /// contract maps the code, the hub-wide cap included).
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        sub: &str,
        authenticated: bool,
    ) -> Result<Slot, ProtoError> {
        let reserved = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_connections).then_some(n + 1)
            })
            .is_ok();
        if !reserved {
            self.count("connections");
            return Err(rate_limited(
                "connections",
                "the hub holds the most connections it may",
                self.max_connections as u64,
                None,
            ));
        }
        // From here the place is held: a refusal below gives it back when
        // this slot drops.
        let mut slot = Slot {
            limits: self.clone(),
            held: Held::Nothing,
        };
        let held = self.place_for(ip, sub, authenticated);
        self.take(&held)?;
        slot.held = held;
        Ok(slot)
    }

    /// Which place a connection of `sub` (or, without a verified subject,
    /// from `ip`) takes under the per-subject or per-IP cap (none when
    /// that cap is off or the address exempt).
    fn place_for(&self, ip: IpAddr, sub: &str, authenticated: bool) -> Held {
        if authenticated && !sub.is_empty() {
            if self.per_user == 0 {
                return Held::Nothing;
            }
            return Held::User(sub.to_owned());
        }
        if self.anonymous_per_ip == 0 || self.is_exempt(ip) {
            return Held::Nothing;
        }
        Held::Ip(peer_key(ip))
    }

    /// Takes `held`'s place now; a refusal names the cap that is full.
    fn take(&self, held: &Held) -> Result<(), ProtoError> {
        match held {
            Held::Nothing => Ok(()),
            Held::User(sub) => count_up(&self.users, sub, self.per_user).map_err(|()| {
                self.count("connections_per_user");
                rate_limited(
                    "connections_per_user",
                    "this token's subject holds the most connections it may",
                    self.per_user as u64,
                    None,
                )
            }),
            Held::Ip(ip) => count_up(&self.anonymous, ip, self.anonymous_per_ip).map_err(|()| {
                self.count("anonymous_per_ip");
                rate_limited(
                    "anonymous_per_ip",
                    "this address holds the most connections without a token it may",
                    self.anonymous_per_ip as u64,
                    None,
                )
            }),
        }
    }

    /// Gives back what [`Limits::take`] took.
    fn give_back(&self, held: &Held) {
        match held {
            Held::Nothing => {}
            Held::User(sub) => count_down(&self.users, sub),
            Held::Ip(ip) => count_down(&self.anonymous, ip),
        }
    }

    /// Connections holding a place under `max_connections`.
    pub fn connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Forgets idle per-IP state (call now and then).
    pub fn housekeeping(&self) {
        for l in [&self.handshakes, &self.http_messages]
            .into_iter()
            .flatten()
        {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// Bytes reserved for a request body being received (see
/// [`Limits::body`]); dropping it gives them back.
#[derive(Debug)]
pub struct BodyPermit {
    /// Held for its `Drop`, which gives the bytes back (none: no bound).
    _bytes: Option<OwnedSemaphorePermit>,
}

#[derive(Debug, PartialEq, Eq)]
enum Held {
    Nothing,
    User(String),
    Ip(IpAddr),
}

/// A connection's place under the per-subject or per-IP cap; dropping it
/// gives the place back.
pub struct Slot {
    limits: Arc<Limits>,
    held: Held,
}

impl Slot {
    /// Moves the place to another subject (a `refresh` with another
    /// subject's token), or from an address to a subject: the new one's
    /// cap is checked and the old one's place given back. On a refusal
    /// nothing changes.
    pub fn rehome(&mut self, ip: IpAddr, sub: &str, authenticated: bool) -> Result<(), ProtoError> {
        let new = self.limits.place_for(ip, sub, authenticated);
        if new == self.held {
            return Ok(());
        }
        self.limits.take(&new)?;
        let old = std::mem::replace(&mut self.held, new);
        self.limits.give_back(&old);
        Ok(())
    }
}

/// Counts one more under `key` in `counts` unless it holds `cap` already.
fn count_up<K>(counts: &Mutex<HashMap<K, usize>>, key: &K, cap: usize) -> Result<(), ()>
where
    K: std::hash::Hash + Eq + Clone,
{
    let mut counts = counts.lock();
    let n = counts.entry(key.clone()).or_insert(0);
    if *n >= cap {
        return Err(());
    }
    *n += 1;
    Ok(())
}

/// Counts one less under `key`, forgetting it at zero.
fn count_down<K: std::hash::Hash + Eq>(counts: &Mutex<HashMap<K, usize>>, key: &K) {
    let mut counts = counts.lock();
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("held", &self.held).finish()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limits.open.fetch_sub(1, Ordering::AcqRel);
        self.limits.give_back(&self.held);
    }
}

/// Drops per-IP limiter state that no longer limits anything, every minute.
pub async fn housekeeping(limits: Arc<Limits>) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        limits.housekeeping();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(f: impl FnOnce(&mut Config)) -> Arc<Limits> {
        let mut cfg = Config::default();
        f(&mut cfg);
        Limits::new(&cfg, Arc::new(Metrics::new()))
    }

    #[test]
    fn networks() {
        let n = parse_networks("127.0.0.0/8, ::1,10.1.2.3, fd00::/8").unwrap();
        assert_eq!(n.len(), 4);
        let has = |ip: &str| n.iter().any(|n| n.contains(ip.parse().unwrap()));
        assert!(has("127.9.9.9"));
        assert!(has("::1"));
        assert!(has("::ffff:127.0.0.1"));
        assert!(has("10.1.2.3"));
        assert!(!has("10.1.2.4"));
        assert!(has("fd12::1"));
        assert!(!has("8.8.8.8"));
        assert!(parse_networks("").unwrap().is_empty());
        assert_eq!(
            peer_key("2001:db8::1:2:3:4".parse().unwrap()),
            peer_key("2001:db8::9".parse().unwrap())
        );
        assert!(parse_networks("0.0.0.0/0").unwrap()[0].contains("1.2.3.4".parse().unwrap()));
        assert!(parse_networks("10.0.0.0/33").is_err());
        assert!(parse_networks("example.com").is_err());
    }

    #[test]
    fn handshakes_per_ip_then_retry_after() {
        let l = limits(|c| {
            c.handshakes_per_ip_per_second = 2;
            c.rate_limit_exempt = "127.0.0.1".into();
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.handshake(a).is_ok());
        assert!(l.handshake(a).is_ok());
        let e = l.handshake(a).unwrap_err();
        assert_eq!(e.code, ErrorCode::RateLimited);
        let data = e.data.unwrap();
        assert_eq!(data["reason"], "handshakes");
        assert!(data["retry_after_ms"].as_u64().unwrap() >= 1);
        assert!(l.handshake(b).is_ok(), "another address has its own budget");
        for _ in 0..10 {
            assert!(l.handshake("127.0.0.1".parse().unwrap()).is_ok());
        }
    }

    #[test]
    fn message_bucket_and_exemption() {
        let l = limits(|c| {
            c.max_messages_per_second = 3;
            c.rate_limit_exempt = "".into();
        });
        let bucket = l.message_bucket("127.0.0.1".parse().unwrap()).unwrap();
        for _ in 0..3 {
            assert!(bucket.check().is_ok());
        }
        let e = bucket.check().unwrap_err();
        assert_eq!(e.data.unwrap()["reason"], "messages");
        let l = limits(|c| c.max_messages_per_second = 3);
        assert!(l.message_bucket("127.0.0.1".parse().unwrap()).is_none());
        assert!(l.message_bucket("192.0.2.1".parse().unwrap()).is_some());
        let l = limits(|c| c.max_messages_per_second = 0);
        assert!(l.message_bucket("192.0.2.1".parse().unwrap()).is_none());
    }

    #[test]
    fn connection_caps_free_their_place() {
        let l = limits(|c| {
            c.max_connections_per_user = 2;
            c.max_anonymous_connections_per_ip = 1;
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let s1 = l.admit(ip, "alice", true).unwrap();
        let _s2 = l.admit(ip, "alice", true).unwrap();
        let e = l.admit(ip, "alice", true).unwrap_err();
        assert_eq!(e.data.unwrap()["reason"], "connections_per_user");
        assert!(l.admit(ip, "bob", true).is_ok());
        drop(s1);
        let _s3 = l.admit(ip, "alice", true).unwrap();
        let a1 = l.admit(ip, "anonymous", false).unwrap();
        let e = l.admit(ip, "anonymous", false).unwrap_err();
        assert_eq!(e.data.unwrap()["reason"], "anonymous_per_ip");
        // Loopback is exempt by default.
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let _l1 = l.admit(lo, "anonymous", false).unwrap();
        let _l2 = l.admit(lo, "anonymous", false).unwrap();
        drop(a1);
        assert!(l.admit(ip, "anonymous", false).is_ok());
    }

    /// The hub-wide cap is reserved atomically: however many handshakes
    /// race, no more than `max_connections` get a place, a refusal by a
    /// narrower cap gives its place back, and every drop frees one.
    #[test]
    fn the_connection_cap_holds_under_concurrent_admits() {
        let l = limits(|c| {
            c.max_connections = 6;
            c.max_connections_per_user = 1;
        });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let slots: Vec<Option<Slot>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..10)
                .map(|i| {
                    let l = &l;
                    s.spawn(move || l.admit(ip, &format!("user-{i}"), true).ok())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(slots.iter().flatten().count(), 6);
        assert_eq!(l.connections(), 6);
        let e = l.admit(ip, "late", true).unwrap_err();
        assert_eq!(e.data.unwrap()["reason"], json!("connections"));
        drop(slots);
        assert_eq!(l.connections(), 0);
        let _a = l.admit(ip, "alice", true).unwrap();
        let e = l.admit(ip, "alice", true).unwrap_err();
        assert_eq!(e.data.unwrap()["reason"], json!("connections_per_user"));
        assert_eq!(l.connections(), 1, "the refused one gave its place back");
    }

    #[test]
    fn body_bytes_are_reserved_and_given_back() {
        let l = limits(|c| c.max_body_bytes_in_flight = 100);
        let a = l.body(60).unwrap();
        let b = l.body(40).unwrap();
        let e = l.body(1).unwrap_err();
        assert_eq!(e.code, ErrorCode::RateLimited);
        let data = e.data.unwrap();
        assert_eq!(
            (data["reason"].clone(), data["limit"].clone()),
            (json!("bodies"), json!(100))
        );
        assert!(data["retry_after_ms"].as_u64().unwrap() >= 1);
        assert!(l.body(0).is_ok(), "an empty body takes nothing");
        drop(a);
        let _c = l.body(60).unwrap();
        drop(b);
        assert!(l.body(41).is_err(), "60 held + 41 > 100");
        drop(_c);
        let big = l.body(1_000_000).unwrap();
        assert!(
            l.body(1).is_err(),
            "alone, any size: it takes the whole budget"
        );
        drop(big);
        let l = limits(|c| c.max_body_bytes_in_flight = 0);
        let _held: Vec<BodyPermit> = (0..10).map(|_| l.body(usize::MAX).unwrap()).collect();
    }

    #[test]
    fn ingest_ceiling() {
        let l = limits(|c| c.max_ingest_per_second = 2);
        assert!(l.ingest().is_ok());
        assert!(l.ingest().is_ok());
        assert_eq!(l.ingest().unwrap_err().data.unwrap()["reason"], "ingest");
        assert!(limits(|_| {}).ingest().is_ok());
    }
}
