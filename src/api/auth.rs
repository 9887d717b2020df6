//! Bearer-token check for every mutating request, and the per-client rate
//! limit in front of the whole API. The token is compared in constant time
//! so its bytes cannot be guessed from response times.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use subtle::ConstantTimeEq;

use super::ApiState;
use super::error::ApiError;
use crate::config::Secret;

const GATE_PATH: &str = "/api/v1/gate";

/// Requests per second each client address may make, with as much again as burst.
pub struct ClientLimiter(DefaultKeyedRateLimiter<IpAddr>);

impl ClientLimiter {
    pub fn per_second(n: NonZeroU32) -> Self {
        let burst = n.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
        Self(RateLimiter::keyed(Quota::per_second(n).allow_burst(burst)))
    }
}

impl ClientLimiter {
    /// Forgets clients that have been quiet for a while, so the table does
    /// not grow with every address ever seen.
    pub async fn forget_loop(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {
                    self.0.retain_recent();
                    self.0.shrink_to_fit();
                }
            }
        }
    }
}

/// `Ok` when the request carries the configured token.
pub fn check_bearer(token: Option<&Secret>, authorization: Option<&str>) -> Result<(), ApiError> {
    let Some(token) = token else { return Err(ApiError::NoTokenConfigured) };
    let presented = authorization.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).unwrap_or("");
    let same: bool = presented.as_bytes().ct_eq(token.expose().as_bytes()).into();
    if same && !presented.is_empty() { Ok(()) } else { Err(ApiError::Unauthorized) }
}

/// Rate limit first (cheap, protects everything), then the token for POSTs.
pub async fn guard(
    State(state): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if state.limiter.0.check_key(&peer.ip()).is_err() {
        return ApiError::TooManyRequests.into_response();
    }
    // The gate's POST only reads: it is Flagger's webhook form, and Flagger cannot send headers.
    if request.method() == Method::POST && request.uri().path() != GATE_PATH {
        let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if let Err(e) = check_bearer(state.token.as_deref(), authorization) {
            return e.into_response();
        }
    }
    next.run(request).await
}

/// The configured token, read once at start from the variable the config names.
pub fn load_token(token_env: Option<&str>, env: &dyn crate::config::Env) -> Option<Arc<Secret>> {
    let value = env.var(token_env?)?;
    (!value.trim().is_empty()).then(|| Arc::new(Secret::new(value.trim().to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_passes() {
        let token = Secret::new("s3cret-token".into());
        assert!(check_bearer(Some(&token), Some("Bearer s3cret-token")).is_ok());
        for bad in [
            None,
            Some(""),
            Some("Bearer "),
            Some("Bearer s3cret"),
            Some("Bearer s3cret-token2"),
            Some("s3cret-token"),
            Some("Basic s3cret-token"),
        ] {
            assert!(matches!(check_bearer(Some(&token), bad), Err(ApiError::Unauthorized)), "{bad:?}");
        }
    }

    #[test]
    fn without_a_configured_token_mutations_are_forbidden() {
        assert!(matches!(check_bearer(None, Some("Bearer anything")), Err(ApiError::NoTokenConfigured)));
    }
}
