//! What LocalStack recorded for an STS session, read from the test-only endpoint that
//! `tests/env/localstack-init/ready.d/securepipe_sts_sessions.py` adds (no AWS API returns
//! a session's inline policy or tags).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::http::http_get;

/// LocalStack's record of one AssumeRole, found by the access key id it issued.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedSession {
    pub role_arn: String,
    pub session_name: String,
    /// The inline session policy exactly as the server received it (None without one).
    pub policy: Option<String>,
    pub duration_seconds: u64,
    tags: Vec<RecordedTag>,
}

#[derive(Debug, Deserialize)]
struct RecordedTag {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value")]
    value: String,
}

impl RecordedSession {
    /// Session tags by key.
    pub fn tags(&self) -> BTreeMap<&str, &str> {
        self.tags
            .iter()
            .map(|tag| (tag.key.as_str(), tag.value.as_str()))
            .collect()
    }
}

/// The session LocalStack (at `AWS_ENDPOINT_URL`) issued `access_key_id` for.
pub async fn recorded_sts_session(access_key_id: &str) -> RecordedSession {
    let (endpoint, address) = endpoint();
    let path = format!("/_localstack/securepipe/sts-sessions/{access_key_id}");
    let (status, body) = http_get(&address, &path)
        .await
        .unwrap_or_else(|err| panic!("GET {endpoint}{path}: {err}"));
    assert_eq!(
        status, 200,
        "GET {endpoint}{path} (is tests/env/localstack-init installed? restart the stack)\n{body}"
    );
    serde_json::from_str(&body).unwrap_or_else(|err| panic!("{path}: {err}\n{body}"))
}

/// How many AssumeRole calls LocalStack answered under the role session name `name`.
pub async fn assume_role_count(session_name: &str) -> usize {
    #[derive(Deserialize)]
    struct Named {
        sessions: Vec<serde_json::Value>,
    }
    let (endpoint, address) = endpoint();
    let path = format!("/_localstack/securepipe/sts-sessions-named/{session_name}");
    let (status, body) = http_get(&address, &path)
        .await
        .unwrap_or_else(|err| panic!("GET {endpoint}{path}: {err}"));
    assert_eq!(
        status, 200,
        "GET {endpoint}{path} (is tests/env/localstack-init current? restart the stack)\n{body}"
    );
    let named: Named =
        serde_json::from_str(&body).unwrap_or_else(|err| panic!("{path}: {err}\n{body}"));
    named.sessions.len()
}

/// LocalStack's endpoint (`AWS_ENDPOINT_URL`) and its `host:port`.
fn endpoint() -> (String, String) {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .unwrap_or_else(|_| panic!("AWS_ENDPOINT_URL is not set: source target/env/env.sh"));
    let address = endpoint
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("AWS_ENDPOINT_URL {endpoint} is not a plain-HTTP LocalStack"))
        .trim_end_matches('/')
        .to_owned();
    (endpoint, address)
}

/// Creates an IAM role in LocalStack that anyone may assume (with tags and a source
/// identity, as the operator does) and returns its ARN.
pub async fn create_role(name: &str) -> String {
    endpoint();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    create_role_with(&aws_sdk_iam::Client::new(&config), name).await
}

/// The inline policies of role `role_name` in LocalStack's IAM, by name, as documents
/// (IAM returns them URL-encoded; decoded here).
pub async fn inline_policies(role_name: &str) -> BTreeMap<String, serde_json::Value> {
    endpoint();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    inline_policies_with(&aws_sdk_iam::Client::new(&config), role_name).await
}

/// An IAM client acting in LocalStack's account `account` (LocalStack takes a 12-digit
/// access key id as the account), for roles in another account than the operator's.
pub async fn iam_in_account(account: &str) -> aws_sdk_iam::Client {
    endpoint();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let credentials =
        aws_sdk_iam::config::Credentials::new(account, "test", None, None, "securepipe-tests");
    aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(&config)
            .credentials_provider(credentials)
            .build(),
    )
}

/// Creates role `name` (anyone may assume it) with `iam` and returns its ARN.
pub async fn create_role_with(iam: &aws_sdk_iam::Client, name: &str) -> String {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}]}"#;
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap_or_else(|err| panic!("create role {name} on LocalStack: {err:?}"))
        .role
        .expect("created role")
        .arn
}

/// [`inline_policies`] through `iam`.
pub async fn inline_policies_with(
    iam: &aws_sdk_iam::Client,
    role_name: &str,
) -> BTreeMap<String, serde_json::Value> {
    let names = iam
        .list_role_policies()
        .role_name(role_name)
        .send()
        .await
        .unwrap_or_else(|err| panic!("list the inline policies of role {role_name}: {err:?}"))
        .policy_names;
    let mut policies = BTreeMap::new();
    for name in names {
        let answer = iam
            .get_role_policy()
            .role_name(role_name)
            .policy_name(&name)
            .send()
            .await
            .unwrap_or_else(|err| panic!("get policy {name} of role {role_name}: {err:?}"));
        let text = percent_encoding::percent_decode_str(answer.policy_document())
            .decode_utf8()
            .unwrap_or_else(|err| panic!("policy {name} of role {role_name} is not UTF-8: {err}"))
            .into_owned();
        let document = serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("policy {name} of role {role_name}: {err}\n{text}"));
        policies.insert(name, document);
    }
    policies
}

/// The characters IAM counts against a role's inline-policy quota (10,240, all inline
/// policies together): each document without whitespace.
pub fn quota_size(document: &serde_json::Value) -> usize {
    document
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .count()
}
