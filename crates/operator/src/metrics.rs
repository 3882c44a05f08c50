//! Prometheus metrics. Every label has a small, fixed set of values: a controller name or
//! an error's static reason, never an object name or an error's text.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: &'static str,
    pub reason: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ControllerLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub credentials_minted: Counter,
    pub assume_role_seconds: Histogram,
    pub credentials_expiring: Gauge,
    pub drift_corrections: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("securepipe");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        registry.register("reconciles", "Reconciliations started", reconciles.clone());
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed, by reason",
            reconcile_errors.clone(),
        );
        let credentials_minted = Counter::default();
        registry.register(
            "credentials_minted",
            "STS sessions issued into Secrets",
            credentials_minted.clone(),
        );
        let assume_role_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        registry.register(
            "assume_role_seconds",
            "Latency of STS AssumeRole calls",
            assume_role_seconds.clone(),
        );
        let credentials_expiring = Gauge::default();
        registry.register(
            "credentials_expiring",
            "Credentials Secrets that are within their renewBefore window and not yet renewed",
            credentials_expiring.clone(),
        );
        let drift_corrections = Counter::default();
        registry.register(
            "lifecycle_drift_corrections",
            "Owned lifecycle rules restored after drift",
            drift_corrections.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_errors,
            credentials_minted,
            assume_role_seconds,
            credentials_expiring,
            drift_corrections,
        }
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_counters() {
        let metrics = Metrics::new();
        metrics
            .reconcile_errors
            .get_or_create(&ErrorLabels {
                controller: "tp",
                reason: "AccessDenied",
            })
            .inc();
        let text = metrics.render().unwrap();
        assert!(
            text.contains(
                r#"securepipe_reconcile_errors_total{controller="tp",reason="AccessDenied"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("securepipe_assume_role_seconds_bucket"),
            "{text}"
        );
    }
}
