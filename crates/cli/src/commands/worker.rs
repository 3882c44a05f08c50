//! `securepipe worker`: one extract-and-shred run over a partition (see
//! `securepipe_worker`). Prints a one-line JSON summary on stdout (and into
//! `/dev/termination-log` when writable, for the operator); logs go to stderr. Exits 0 when
//! every listed object was shredded or quarantined and the attestation is written.

use securepipe_api::worker::ENV_JOB_COMPLETION_INDEX;
use securepipe_cloud::AwsSettings;
use securepipe_worker::{Args, RunError, Settings, SettingsError, Summary};

/// Where Kubernetes reads a container's termination message.
const TERMINATION_LOG: &str = "/dev/termination-log";

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("the run did not finish every sample: {0}")]
    Incomplete(String),
}

pub fn run(args: Args) -> Result<(), WorkerError> {
    init_logging(args.log_json);
    let completion_index = std::env::var(ENV_JOB_COMPLETION_INDEX).ok();
    let settings = Settings::from_args(&args, completion_index.as_deref())?;
    let aws = AwsSettings {
        s3_force_path_style: args.s3_force_path_style,
        ..AwsSettings::default()
    };
    // One thread for the async side (network waits, decryption): the per-object futures run
    // inside this one `block_on` anyway, and a multi-thread runtime only added cross-thread
    // wake-ups of the HTTP connection tasks (the kernel's task switching took ~9% of the
    // worker's CPU with it, ~5% without). The DSP runs on the blocking pool.
    let summary = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(WorkerError::Runtime)?
        .block_on(securepipe_worker::run(settings, aws))?;
    let line = summary_line(&summary);
    println!("{line}");
    // Best effort: the file exists only in a Kubernetes container.
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .write(true)
        .open(TERMINATION_LOG)
    {
        use std::io::Write;
        let _ = file.write_all(line.as_bytes());
    }
    if summary.complete() {
        Ok(())
    } else {
        Err(WorkerError::Incomplete(line))
    }
}

fn summary_line(summary: &Summary) -> String {
    // A struct of strings and numbers always serializes.
    serde_json::to_string(summary).unwrap_or_default()
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    //! The summary line is the contract with the operator (`securepipe_api::worker`).

    use securepipe_api::worker::{QUARANTINE_REASONS, SummaryReport};
    use securepipe_worker::quarantine::Reason;

    use super::*;

    #[test]
    fn the_operator_reads_back_every_field_of_the_summary_line() {
        let summary = Summary {
            listed: 9,
            shredded: 6,
            already_done: 1,
            quarantined: [("truncated", 2)].into_iter().collect(),
            still_quarantined: 1,
            failed: 1,
            attestation_key: Some("audit/p/run.json".to_owned()),
        };
        let report: SummaryReport =
            serde_json::from_str(&summary_line(&summary)).expect("the operator parses it");
        assert_eq!(
            report,
            SummaryReport {
                listed: 9,
                shredded: 6,
                already_done: 1,
                quarantined: [("truncated".to_owned(), 2)].into_iter().collect(),
                still_quarantined: 1,
                failed: 1,
                attestation_key: Some("audit/p/run.json".to_owned()),
            }
        );
    }

    #[test]
    fn the_operator_knows_every_quarantine_reason() {
        let worker: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(worker, QUARANTINE_REASONS);
    }
}
