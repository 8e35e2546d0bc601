"""The Python anchor of the cold-start benchmark: a Secrets Manager rotation handler as AWS's
Python runtime runs one (awslambdaric, boto3). The client is created at import, as rotation
functions do; an invocation parses the event, refuses a malformed one and otherwise looks the
secret up with describe_secret before any step would run."""

import boto3

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")

secrets = boto3.client("secretsmanager")


class InvalidEvent(Exception):
    pass


def handler(event, context):
    try:
        secret_id = event["SecretId"]
        token = event["ClientRequestToken"]
        step = event["Step"]
    except (KeyError, TypeError) as err:
        raise InvalidEvent(f"not a rotation event: missing {err}") from None
    if step not in STEPS:
        raise InvalidEvent(f"unknown step {step!r}")
    metadata = secrets.describe_secret(SecretId=secret_id)
    if not metadata.get("RotationEnabled"):
        raise InvalidEvent(f"rotation is not enabled for {secret_id}")
    stages = metadata.get("VersionIdsToStages", {})
    if token not in stages:
        raise InvalidEvent(f"version {token} has no stage on {secret_id}")
    return {"step": step, "stages": stages[token]}
