//! The credentials Secret: built from a minted session (pure), and read back into the
//! `Held` session that renewal decisions start from.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use secrecy::ExposeSecret;
use securepipe_api::TrainingPartition;
use securepipe_cloud::sts::IssuedSession;
use serde_json::json;
use zeroize::Zeroize;

use super::plan::Plan;
use super::renewal::Held;

/// Where pods are told (README) to mount the Secret; the `config` file's
/// `credential_process` reads the JSON from there.
pub const MOUNT_PATH: &str = "/var/run/securepipe/aws";

pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "securepipe";
pub const LABEL_PARTITION: &str = "securepipe.io/training-partition";
pub const ANNOTATION_EXPIRES_AT: &str = "securepipe.io/expires-at";
pub const ANNOTATION_RENEWED_AT: &str = "securepipe.io/renewed-at";
pub const ANNOTATION_SESSION_NAME: &str = "securepipe.io/session-name";
pub const ANNOTATION_INPUTS_HASH: &str = "securepipe.io/inputs-hash";

/// The label selector of every Secret securepipe writes.
pub fn managed_selector() -> String {
    format!("{LABEL_MANAGED_BY}={MANAGED_BY}")
}

/// The Secret for a freshly minted session, owned by the TrainingPartition.
pub fn build(
    tp: &TrainingPartition,
    plan: &Plan,
    session: &IssuedSession,
    renewed_at: jiff::Timestamp,
) -> Secret {
    let access_key_id = session.access_key_id.as_str();
    let secret_access_key = session.secret_access_key.expose_secret();
    let session_token = session.session_token.expose_secret();
    let expiration = rfc3339(session.expiration);
    let region = plan.region.as_str();

    let credentials_file = format!(
        "[default]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret_access_key}\naws_session_token = {session_token}\n"
    );
    let credential_process = json!({
        "Version": 1,
        "AccessKeyId": access_key_id,
        "SecretAccessKey": secret_access_key,
        "SessionToken": session_token,
        "Expiration": expiration,
    })
    .to_string();
    // SDKs cache profile credentials until their Expiration and then run the process
    // again, which reads the file the kubelet has meanwhile refreshed: pods that mount
    // the Secret keep working across renewals without a restart.
    let config_file = format!(
        "[default]\nregion = {region}\ncredential_process = cat {MOUNT_PATH}/credential-process.json\n"
    );
    let data: BTreeMap<String, ByteString> = [
        ("AWS_ACCESS_KEY_ID", access_key_id.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", secret_access_key.to_owned()),
        ("AWS_SESSION_TOKEN", session_token.to_owned()),
        ("AWS_REGION", region.to_owned()),
        ("AWS_DEFAULT_REGION", region.to_owned()),
        ("credentials", credentials_file),
        ("credential-process.json", credential_process),
        ("config", config_file),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), ByteString(value.into_bytes())))
    .collect();

    Secret {
        metadata: ObjectMeta {
            name: Some(plan.secret_name.clone()),
            namespace: tp.namespace(),
            labels: Some(
                [
                    (LABEL_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
                    (LABEL_PARTITION.to_owned(), tp.name_any()),
                ]
                .into(),
            ),
            annotations: Some(
                [
                    (ANNOTATION_EXPIRES_AT.to_owned(), expiration),
                    (ANNOTATION_RENEWED_AT.to_owned(), rfc3339(renewed_at)),
                    (
                        ANNOTATION_SESSION_NAME.to_owned(),
                        plan.session_name.clone(),
                    ),
                    (ANNOTATION_INPUTS_HASH.to_owned(), plan.inputs_hash.clone()),
                ]
                .into(),
            ),
            owner_references: tp.controller_owner_ref(&()).map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

/// Overwrites the credential bytes of a built Secret once it has been sent.
pub fn wipe(secret: &mut Secret) {
    for value in secret.data.iter_mut().flat_map(|data| data.values_mut()) {
        value.0.zeroize();
    }
}

/// Whether securepipe wrote `secret` for this TrainingPartition: controlled by it (owner
/// UID) and labelled as securepipe's, for it. Any other Secret is never written or deleted.
pub fn is_ours(secret: &Secret, tp: &TrainingPartition) -> bool {
    let controlled = secret
        .owner_references()
        .iter()
        .any(|owner| Some(&owner.uid) == tp.meta().uid.as_ref() && owner.controller == Some(true));
    let labels = secret.labels();
    controlled
        && labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY)
        && labels.get(LABEL_PARTITION) == Some(&tp.name_any())
}

/// The session a Secret holds, if securepipe wrote it for this TrainingPartition and it
/// still carries all three credential values (one edited away: not held, so a new
/// session is minted over it).
pub fn held(secret: &Secret, tp: &TrainingPartition) -> Option<Held> {
    if !is_ours(secret, tp) {
        return None;
    }
    let annotations = secret.annotations();
    let timestamp = |key: &str| annotations.get(key)?.parse::<jiff::Timestamp>().ok();
    let data = secret.data.as_ref()?;
    let complete = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
        .iter()
        .all(|key| data.get(*key).is_some_and(|value| !value.0.is_empty()));
    if !complete {
        return None;
    }
    let access_key_id = data
        .get("AWS_ACCESS_KEY_ID")
        .and_then(|value| String::from_utf8(value.0.clone()).ok())?;
    Some(Held {
        expires_at: timestamp(ANNOTATION_EXPIRES_AT)?,
        renewed_at: timestamp(ANNOTATION_RENEWED_AT)?,
        inputs_hash: annotations.get(ANNOTATION_INPUTS_HASH)?.clone(),
        session_name: annotations.get(ANNOTATION_SESSION_NAME)?.clone(),
        access_key_id,
    })
}

pub fn rfc3339(timestamp: jiff::Timestamp) -> String {
    timestamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::super::plan::plan;
    use super::*;

    fn partition() -> TrainingPartition {
        let mut tp: TrainingPartition = serde_yaml::from_str(
            r#"
apiVersion: securepipe.io/v1alpha1
kind: TrainingPartition
metadata: {name: speech, namespace: ml, uid: 0f9e-uid}
spec: {bucket: biometrics, region: eu-west-1, roleArn: "arn:aws:iam::123456789012:role/trainer"}
"#,
        )
        .unwrap();
        tp.metadata.uid = Some("0f9e-uid".to_owned());
        tp
    }

    fn session() -> IssuedSession {
        IssuedSession {
            access_key_id: "ASIAEXAMPLE".to_owned(),
            secret_access_key: SecretString::from("wJalrXUtnFEMI/K7MDENG"),
            session_token: SecretString::from("FwoGZXIvYXdzEXAMPLETOKEN"),
            expiration: "2026-11-23T11:00:00Z".parse().unwrap(),
            assumed_role_arn: "arn:aws:sts::123456789012:assumed-role/trainer/sp-ml@speech"
                .to_owned(),
        }
    }

    fn partition_and_plan() -> (TrainingPartition, Plan) {
        let tp = partition();
        let plan = plan("ml", "speech", &tp).unwrap();
        (tp, plan)
    }

    /// The Secret for [`session`], renewed at a fixed time.
    fn built(tp: &TrainingPartition, plan: &Plan) -> Secret {
        build(
            tp,
            plan,
            &session(),
            "2026-11-23T10:00:00Z".parse().unwrap(),
        )
    }

    fn text(secret: &Secret, key: &str) -> String {
        String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
    }

    #[test]
    fn the_secret_carries_env_files_and_credential_process() {
        let (tp, plan) = partition_and_plan();
        let secret = built(&tp, &plan);
        assert_eq!(secret.metadata.name.as_deref(), Some("speech-aws"));
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
        assert_eq!(text(&secret, "AWS_ACCESS_KEY_ID"), "ASIAEXAMPLE");
        assert_eq!(
            text(&secret, "AWS_SECRET_ACCESS_KEY"),
            "wJalrXUtnFEMI/K7MDENG"
        );
        assert_eq!(
            text(&secret, "AWS_SESSION_TOKEN"),
            "FwoGZXIvYXdzEXAMPLETOKEN"
        );
        assert_eq!(text(&secret, "AWS_REGION"), "eu-west-1");
        assert_eq!(text(&secret, "AWS_DEFAULT_REGION"), "eu-west-1");
        assert!(
            text(&secret, "credentials").contains("aws_session_token = FwoGZXIvYXdzEXAMPLETOKEN\n")
        );
        let process: serde_json::Value =
            serde_json::from_str(&text(&secret, "credential-process.json")).unwrap();
        assert_eq!(process["Version"], 1);
        assert_eq!(process["AccessKeyId"], "ASIAEXAMPLE");
        assert_eq!(process["Expiration"], "2026-11-23T11:00:00Z");
        assert!(
            text(&secret, "config").contains(
                "credential_process = cat /var/run/securepipe/aws/credential-process.json"
            )
        );
        let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.uid, "0f9e-uid");
        assert_eq!(owner.controller, Some(true));
    }

    #[test]
    fn a_built_secret_reads_back_as_the_held_session() {
        let (tp, plan) = partition_and_plan();
        let secret = built(&tp, &plan);
        let held = held(&secret, &tp).unwrap();
        assert_eq!(held.expires_at, "2026-11-23T11:00:00Z".parse().unwrap());
        assert_eq!(held.inputs_hash, plan.inputs_hash);
        assert_eq!(held.access_key_id, "ASIAEXAMPLE");
        assert_eq!(held.session_name, "sp-ml@speech");
    }

    #[test]
    fn a_secret_missing_a_credential_value_holds_no_session() {
        let (tp, plan) = partition_and_plan();
        for key in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
            let mut secret = built(&tp, &plan);
            if let Some(data) = secret.data.as_mut() {
                data.remove(key);
            }
            assert_eq!(held(&secret, &tp), None, "without {key}");
        }
    }

    #[test]
    fn a_secret_owned_by_someone_else_is_not_ours() {
        let (tp, plan) = partition_and_plan();
        let mut secret = built(&tp, &plan);
        secret.metadata.owner_references = None;
        assert_eq!(held(&secret, &tp), None);
    }

    #[test]
    fn a_secret_without_our_labels_is_not_ours() {
        let (tp, plan) = partition_and_plan();
        let built = built(&tp, &plan);
        assert!(is_ours(&built, &tp));
        let mut unlabelled = built.clone();
        unlabelled.metadata.labels = None;
        assert!(!is_ours(&unlabelled, &tp));
        let mut other_partition = built;
        other_partition
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(LABEL_PARTITION.to_owned(), "other".to_owned());
        assert!(!is_ours(&other_partition, &tp));
    }

    #[test]
    fn wiping_clears_every_value() {
        let (tp, plan) = partition_and_plan();
        let mut secret = built(&tp, &plan);
        wipe(&mut secret);
        assert!(
            secret
                .data
                .unwrap()
                .values()
                .all(|value| value.0.is_empty())
        );
    }
}
