//! A per-host:port rate limit on probes, so a wrong interval (or a thousand
//! checks on one service) cannot hammer production. Over the limit, a probe
//! is skipped and reported, never queued: a queue would only delay the truth.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct HostLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl HostLimiter {
    pub fn per_second(n: NonZeroU32) -> Self {
        Self { limiter: RateLimiter::keyed(Quota::per_second(n)) }
    }

    /// Takes one probe's worth of the host's quota; `false` when it is spent.
    pub fn allow(&self, url: &url::Url) -> bool {
        let key = format!("{}:{}", url.host_str().unwrap_or(""), url.port_or_known_default().unwrap_or(0));
        self.limiter.check_key(&key).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_over_its_quota_is_refused_while_another_host_is_not() {
        let limiter = HostLimiter::per_second(NonZeroU32::new(5).unwrap());
        let a: url::Url = "http://127.0.0.1:7001/api/health".parse().unwrap();
        let b: url::Url = "http://127.0.0.1:7002/api/admin/health".parse().unwrap();
        let allowed = (0..20).filter(|_| limiter.allow(&a)).count();
        assert_eq!(allowed, 5, "the burst is the per-second quota");
        assert!(limiter.allow(&b), "another port has its own quota");
    }
}
