# Runs inside the LocalStack process once it is ready (a LocalStack init script).
#
# LocalStack records every AssumeRole (role, session name, the inline session policy, the
# session tags) but no AWS API reads that record back: GetCallerIdentity shows only the
# ARN. The stack tests need to see exactly what the server stored for a set of
# credentials, so this adds one read-only test endpoint:
#
#   GET /_localstack/securepipe/sts-sessions/<access key id>
#   -> {"roleArn", "sessionName", "policy", "durationSeconds", "tags", "transitiveTagKeys"}
#   GET /_localstack/securepipe/sts-sessions-named/<role session name>
#   -> {"sessions": [{"roleArn", "sessionName"}, ...]}  (every AssumeRole under that name;
#      the tenancy suite proves a refused object never reached STS)
#
# It is part of the test stack only (tests/env); nothing in the product calls it.
from localstack.http import Resource
from localstack.services.internal import get_internal_apis
from localstack.services.sts.models import sts_stores
from moto.sts.models import sts_backends
from werkzeug.exceptions import NotFound


class StsSessionResource:
    def on_get(self, request, access_key_id: str):
        for account_id, by_partition in sts_backends.items():
            for backend in by_partition.values():
                session = backend.get_assumed_role_from_access_key(access_key_id)
                if session is None:
                    continue
                tagging = sts_stores[account_id]["us-east-1"].session_tags.get(access_key_id, {})
                return {
                    "roleArn": session.role_arn,
                    "sessionName": session.session_name,
                    "policy": session.policy,
                    "durationSeconds": round(
                        (session.expiration - session.access_key.create_date).total_seconds()
                    ),
                    "tags": list(tagging.get("tags", {}).values()),
                    "transitiveTagKeys": tagging.get("transitive_tags", []),
                }
        raise NotFound("no STS session has this access key id")


class StsSessionsNamedResource:
    def on_get(self, request, session_name: str):
        sessions = [
            {"roleArn": session.role_arn, "sessionName": session.session_name}
            for by_partition in sts_backends.values()
            for backend in by_partition.values()
            for session in backend.assumed_roles
            if session.session_name == session_name
        ]
        return {"sessions": sessions}


get_internal_apis().add(
    Resource(
        "/_localstack/securepipe/sts-sessions-named/<session_name>", StsSessionsNamedResource()
    )
)
get_internal_apis().add(
    Resource("/_localstack/securepipe/sts-sessions/<access_key_id>", StsSessionResource())
)
