//! The AWS client the node suite runs inside Pods (image `securepipe-probe:local`, built
//! by `tests/env/image.sh probe`). It uses the standard credential chain, exactly as a
//! training job would: environment variables (`envFrom` the Secret) or the mounted
//! `config` whose `credential_process` cats the mounted JSON.
//!
//! `aws_probe identity [BUCKET PREFIX]`: one line of JSON with the access key id, the
//! caller ARN and (given a bucket) the keys under the prefix; exits 1 on any error.
//! `aws_probe watch SECONDS`: the same line every SECONDS, forever, each time from a
//! freshly loaded configuration, so a renewed Secret is seen as soon as the kubelet has
//! updated the mounted file (an SDK client kept for hours refreshes only near expiry).
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_sts::config::ProvideCredentials;
use serde_json::json;

async fn probe(bucket: Option<(&str, &str)>) -> Result<serde_json::Value, String> {
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| "no credentials provider".to_owned())?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| format!("credentials: {e}"))?;
    let identity = aws_sdk_sts::Client::new(&sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            format!(
                "GetCallerIdentity: {}",
                aws_sdk_sts::error::DisplayErrorContext(e)
            )
        })?;
    let mut out = json!({
        "access_key_id": credentials.access_key_id(),
        "arn": identity.arn(),
    });
    if let Some((bucket, prefix)) = bucket {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        );
        let listed = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "ListObjectsV2 {bucket}/{prefix}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            })?;
        let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
        out["keys"] = json!(keys);
    }
    Ok(out)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["identity"] => report(probe(None).await),
        ["identity", bucket, prefix] => report(probe(Some((bucket, prefix))).await),
        ["watch", seconds] => {
            let Ok(seconds) = seconds.parse::<u64>() else {
                eprintln!("watch: SECONDS must be a number");
                return ExitCode::from(2);
            };
            loop {
                // Errors are reported and retried: the test decides what it expects.
                let _ = report(probe(None).await);
                tokio::time::sleep(Duration::from_secs(seconds)).await;
            }
        }
        _ => {
            eprintln!("usage: aws_probe identity [BUCKET PREFIX] | aws_probe watch SECONDS");
            ExitCode::from(2)
        }
    }
}

fn report(result: Result<serde_json::Value, String>) -> ExitCode {
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{}", json!({ "error": e }));
            ExitCode::FAILURE
        }
    }
}
