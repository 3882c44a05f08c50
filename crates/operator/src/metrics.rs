//! Prometheus metrics. Every label has a small, fixed set of values: a controller name or
//! an error's static reason, never an object name or an error's text.

use std::collections::HashSet;
use std::sync::Mutex;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub controller: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuarantineLabels {
    /// One of the worker's fixed quarantine reasons, or `other`.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// `Succeeded` or `Failed`.
    pub result: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ControllerLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// How reconciles ended (a controller's fixed set of outcomes): what a test waits on to
    /// know that a reconcile happened and did nothing, without sleeping.
    pub reconcile_outcomes: Family<OutcomeLabels, Counter>,
    /// 1 while this replica runs the controllers (it leads, or runs without election).
    pub leading: Gauge,
    pub credentials_minted: Counter,
    pub assume_role_seconds: Histogram,
    pub credentials_expiring: Gauge,
    pub drift_corrections: Counter,
    /// Raw samples shredded by worker Jobs (features verified, every raw version deleted).
    pub samples_shredded: Counter,
    /// Raw samples worker Jobs quarantined, by reason.
    pub samples_quarantined: Family<QuarantineLabels, Counter>,
    /// How long finished worker Jobs ran, by result.
    pub extraction_job_seconds: Family<JobLabels, Histogram>,
    /// The objects counted in `credentials_expiring`.
    expiring: Mutex<HashSet<String>>,
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
        let reconcile_outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "reconcile_outcomes",
            "Reconciliations that finished, by outcome",
            reconcile_outcomes.clone(),
        );
        let leading = Gauge::default();
        registry.register(
            "leading",
            "1 while this replica runs the controllers, 0 while it stands by",
            leading.clone(),
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
        let samples_shredded = Counter::default();
        registry.register(
            "samples_shredded",
            "Raw samples worker Jobs turned into verified features and deleted",
            samples_shredded.clone(),
        );
        let samples_quarantined = Family::<QuarantineLabels, Counter>::default();
        registry.register(
            "samples_quarantined",
            "Raw samples worker Jobs quarantined (kept, never processed), by reason",
            samples_quarantined.clone(),
        );
        let extraction_job_seconds = Family::<JobLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(1.0, 2.0, 14))
        });
        registry.register(
            "extraction_job_seconds",
            "How long finished worker Jobs ran, by result",
            extraction_job_seconds.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_outcomes,
            leading,
            credentials_minted,
            assume_role_seconds,
            credentials_expiring,
            drift_corrections,
            samples_shredded,
            samples_quarantined,
            extraction_job_seconds,
            expiring: Mutex::default(),
        }
    }

    pub fn record_reconcile(&self, controller: &'static str) {
        self.reconciles
            .get_or_create(&ControllerLabels { controller })
            .inc();
    }

    pub fn record_error(&self, controller: &'static str, reason: &'static str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels { controller, reason })
            .inc();
    }

    pub fn record_outcome(&self, controller: &'static str, outcome: &'static str) {
        self.reconcile_outcomes
            .get_or_create(&OutcomeLabels {
                controller,
                outcome,
            })
            .inc();
    }

    /// Counts a finished worker Job: its samples and how long it ran.
    pub fn record_extraction(
        &self,
        totals: &crate::controllers::extraction::Totals,
        seconds: Option<f64>,
        succeeded: bool,
    ) {
        self.samples_shredded.inc_by(totals.shredded);
        for (reason, count) in &totals.quarantined {
            self.samples_quarantined
                .get_or_create(&QuarantineLabels { reason })
                .inc_by(*count);
        }
        if let Some(seconds) = seconds {
            let result = if succeeded { "Succeeded" } else { "Failed" };
            self.extraction_job_seconds
                .get_or_create(&JobLabels { result })
                .observe(seconds);
        }
    }

    /// Marks `key` (namespace/name) as holding credentials inside their renewBefore window
    /// without a successful renewal, or clears it.
    pub fn set_expiring(&self, key: &str, expiring: bool) {
        let mut set = self
            .expiring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = if expiring {
            set.insert(key.to_owned())
        } else {
            set.remove(key)
        };
        if changed {
            self.credentials_expiring
                .set(i64::try_from(set.len()).unwrap_or(i64::MAX));
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
    fn the_expiring_gauge_counts_distinct_objects() {
        let metrics = Metrics::new();
        metrics.set_expiring("ml/a", true);
        metrics.set_expiring("ml/a", true);
        metrics.set_expiring("ml/b", true);
        assert_eq!(metrics.credentials_expiring.get(), 2);
        metrics.set_expiring("ml/a", false);
        metrics.set_expiring("ml/c", false);
        assert_eq!(metrics.credentials_expiring.get(), 1);
    }

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
