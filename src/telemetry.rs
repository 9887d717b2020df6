//! Owns logging and tracing: `tracing` with `RUST_LOG` filtering, text or
//! JSON lines on stderr, and spans (one per probe, one per action) exported
//! over OTLP/HTTP with JSON encoding when the standard OpenTelemetry
//! variables ask for it.
//!
//! The rule: export is on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, unless `OTEL_TRACES_EXPORTER=none`
//! or `OTEL_SDK_DISABLED=true`. Off, there is no exporter and no W3C
//! propagator, so probes carry no `traceparent`; spans then cost what any
//! `tracing` span costs. A bad endpoint is logged as a warning naming the
//! variable and its value, and guardian runs with export off: tracing is
//! there to explain the guard, never to stop it. `OTEL_SERVICE_NAME` names
//! the service (default `guardian`); the SDK reads the other standard
//! variables itself (`OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_*HEADERS`, `*TIMEOUT`).

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// The name spans are exported under when `OTEL_SERVICE_NAME` is not set.
const DEFAULT_SERVICE_NAME: &str = "guardian";
/// The longest the last spans may take to leave at shutdown: the drain has
/// up to 4 s (`shutdown::GRACE`) and guardian stops within 5 s of a signal.
const FLUSH_TIMEOUT: Duration = Duration::from_millis(900);

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Keeps the span exporter alive; `shutdown` sends what is left.
#[must_use = "call shutdown() so the last spans are exported"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Where spans go, decided from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Export {
    /// The variable that set the endpoint, and its value (as written).
    var: &'static str,
    endpoint: String,
    service_name: String,
}

/// Installs the global subscriber; `RUST_LOG` overrides `default_filter`.
/// Spans are exported when the OpenTelemetry variables say so (see above).
pub fn init(format: LogFormat, default_filter: &str) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = match format {
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => fmt::layer().json().flatten_event(true).with_writer(std::io::stderr).boxed(),
    };
    let (provider, problem) = match plan(|name| std::env::var(name).ok()) {
        Ok(None) => (None, None),
        Ok(Some(export)) => match start(&export) {
            Ok(provider) => (Some((provider, export)), None),
            Err(e) => (None, Some(e)),
        },
        Err(e) => (None, Some(e)),
    };
    let spans = provider.as_ref().map(|(p, _)| spans_layer(p));
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(spans)
        .try_init()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match (&provider, problem) {
        (Some((_, export)), _) => tracing::info!(
            endpoint = %crate::config::redact_url(&export.endpoint),
            variable = export.var,
            service = %export.service_name,
            "exporting spans over OTLP/HTTP (JSON)"
        ),
        (None, Some(problem)) => tracing::warn!("span export is off: {problem}"),
        (None, None) => {}
    }
    Ok(Telemetry { provider: provider.map(|(p, _)| p) })
}

impl Telemetry {
    /// Exports the spans still queued, waiting at most `FLUSH_TIMEOUT`.
    pub fn shutdown(self) {
        let Some(provider) = self.provider else { return };
        if let Err(e) = provider.shutdown_with_timeout(FLUSH_TIMEOUT) {
            tracing::warn!(error = %e, "the last spans may not have been exported");
        }
    }
}

/// Whether and where to export, from the variables `get` returns. An
/// endpoint that is not an http(s) URL is an error naming the variable.
fn plan(get: impl Fn(&str) -> Option<String>) -> Result<Option<Export>, String> {
    let set = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    if set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none")) {
        return Ok(None);
    }
    // The per-signal variable wins, as in the specification and the exporter.
    let found = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        .into_iter()
        .find_map(|var| set(var).map(|value| (var, value)));
    let Some((var, endpoint)) = found else { return Ok(None) };
    let valid = url::Url::parse(&endpoint)
        .ok()
        .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()));
    if !valid {
        return Err(format!(
            "{var}={:?} is not an http:// or https:// URL (for example http://otel-collector:4318)",
            crate::config::redact_url(&endpoint)
        ));
    }
    let service_name = set("OTEL_SERVICE_NAME").unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string());
    Ok(Some(Export { var, endpoint, service_name }))
}

/// Builds the exporter and provider, and sets the W3C propagator that puts
/// `traceparent` on probes.
fn start(export: &Export) -> Result<SdkTracerProvider, String> {
    // The exporter reads the endpoint (and headers, timeout) from the same variables.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .build()
        .map_err(|e| format!("cannot build the OTLP exporter for {}: {e}", export.var))?;
    let resource = Resource::builder().with_service_name(export.service_name.clone()).build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(provider)
}

/// Turns guardian's own spans (probe, action) into OpenTelemetry spans,
/// whatever `RUST_LOG` says; other crates' spans stay out.
fn spans_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("guardian"))
        .with_tracked_inactivity(false)
        .with_threads(false)
        // `target` is an attribute of the action span (the guarded workload).
        .with_target(false)
        .with_filter(Targets::new().with_target("guardian", tracing::Level::INFO))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn plan_of(vars: &[(&str, &str)]) -> Result<Option<Export>, String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        plan(|name| vars.get(name).cloned())
    }

    #[test]
    fn export_is_off_without_an_endpoint_or_when_disabled() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        let cases: [(&str, Vec<(&str, &str)>); 4] = [
            ("no variable", vec![]),
            ("empty endpoint", vec![("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]),
            ("exporter none", vec![endpoint, ("OTEL_TRACES_EXPORTER", "none")]),
            ("sdk disabled", vec![endpoint, ("OTEL_SDK_DISABLED", "TRUE")]),
        ];
        for (name, vars) in cases {
            assert_eq!(plan_of(&vars), Ok(None), "{name}");
        }
    }

    #[test]
    fn export_is_on_with_an_endpoint_and_the_traces_one_wins() {
        let got = plan_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]);
        let want = Export {
            var: "OTEL_EXPORTER_OTLP_ENDPOINT",
            endpoint: "http://collector:4318".into(),
            service_name: "guardian".into(),
        };
        assert_eq!(got, Ok(Some(want)));
        let got = plan_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces.example/v1/traces"),
            ("OTEL_SERVICE_NAME", "guardian-prod"),
        ]);
        let export = got.ok().flatten();
        assert_eq!(export.as_ref().map(|e| e.var), Some("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"));
        assert_eq!(export.map(|e| e.service_name), Some("guardian-prod".into()));
    }

    #[test]
    fn a_bad_endpoint_names_the_variable_and_hides_the_password() {
        for bad in ["collector:4318", "ftp://collector", "not a url", "http://user:s3cret@"] {
            let err = plan_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)]).err().unwrap_or_default();
            assert!(err.starts_with("OTEL_EXPORTER_OTLP_ENDPOINT="), "{bad}: {err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }
}
