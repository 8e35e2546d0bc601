"""Prints, as JSON, the IAM role SAM creates for each function of a SAM template.

Usage: python3 sam_roles.py TEMPLATE [ACCOUNT_ID REGION]
       python3 sam_roles.py --cloudformation TEMPLATE

With --cloudformation it prints the whole translated template instead: the CloudFormation
resources SAM deploys (conditions and intrinsics kept as they are).

The template is translated by aws-sam-translator (SAM's own YAML loader, so short-form tags
parse; policy templates, the dead-letter queue and the managed execution policy expanded) with
every parameter at its default. Intrinsic functions are resolved to the names and ARNs the
resources get in that account and region; a value that cannot be known before deployment
(a KMS key id, a secret's random suffix) keeps a wildcard in its place.

Output: {"<binary>": {"function": logical id, "role": logical id,
                      "managed_policy_arns": [...], "policies": [{"name", "document"}]}}
"""

import json
import re
import sys

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse


class Resolver:
    def __init__(self, template, account, region):
        self.resources = template.get("Resources", {})
        self.params = {
            name: spec.get("Default", "") for name, spec in template.get("Parameters", {}).items()
        }
        self.pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.account = account
        self.region = region

    def name(self, logical_id, key):
        value = self.resources[logical_id].get("Properties", {}).get(key)
        return self.resolve(value) if value is not None else "*"

    def ref(self, target):
        if target in self.params:
            return self.params[target]
        if target in self.pseudo:
            return self.pseudo[target]
        kind = self.resources[target]["Type"]
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{self.region}:{self.account}:{self.name(target, 'TopicName')}"
        if kind == "AWS::SecretsManager::Secret":
            # Secrets Manager appends "-" and six random characters to the name.
            return f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:{self.name(target, 'Name')}-??????"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{self.name(target, 'QueueName')}"
        for key in ("BucketName", "TableName", "FunctionName", "RoleName"):
            if key in self.resources[target].get("Properties", {}):
                return self.name(target, key)
        return "*"

    def get_att(self, target, attribute):
        kind = self.resources[target]["Type"]
        if attribute == "Arn":
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{self.ref(target)}"
            if kind == "AWS::DynamoDB::Table":
                return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{self.ref(target)}"
            if kind == "AWS::SQS::Queue":
                return f"arn:aws:sqs:{self.region}:{self.account}:{self.name(target, 'QueueName')}"
            if kind == "AWS::KMS::Key":
                return f"arn:aws:kms:{self.region}:{self.account}:key/*"
            if kind == "AWS::Lambda::Function":
                return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.ref(target)}"
            if kind == "AWS::IAM::Role":
                return f"arn:aws:iam::{self.account}:role/{target}"
        if attribute == "QueueName":
            return self.name(target, "QueueName")
        return "*"

    def sub(self, text, variables):
        def one(match):
            token = match.group(1)
            if token in variables:
                return str(self.resolve(variables[token]))
            if "." in token:
                target, attribute = token.split(".", 1)
                return self.get_att(target, attribute)
            return str(self.ref(token))

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def resolve(self, value):
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                target, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(target, attribute)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                return self.sub(text, variables)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(p)) for p in parts)
        return {k: self.resolve(v) for k, v in value.items()}


def main():
    whole = sys.argv[1] == "--cloudformation"
    args = sys.argv[2:] if whole else sys.argv[1:]
    path = args[0]
    account = args[1] if len(args) > 1 else "123456789012"
    region = args[2] if len(args) > 2 else "us-east-1"
    with open(path, encoding="utf-8") as f:
        sam = yaml_parse(f.read())
    for resource in sam["Resources"].values():
        # What `sam package` does to local code; where the code lies does not touch IAM.
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://packaged/code.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://packaged/layer.zip"
    params = {name: spec.get("Default", "") for name, spec in sam.get("Parameters", {}).items()}
    # The template names managed policies by ARN only: no IAM look-up of names is needed.
    translator = Translator({}, Parser(), boto_session=boto3.session.Session(region_name=region))
    cfn = translator.translate(json.loads(json.dumps(sam)), params, get_managed_policy_map=dict)
    if whole:
        json.dump(cfn, sys.stdout, indent=1, sort_keys=True)
        return
    resolver = Resolver(cfn, account, region)
    roles = {}
    for logical_id, resource in sam["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        binary = resource["Metadata"]["BuildProperties"]["Binary"]
        role_ref = cfn["Resources"][logical_id]["Properties"]["Role"]["Fn::GetAtt"]
        role_id = role_ref[0] if isinstance(role_ref, list) else role_ref.split(".")[0]
        role = cfn["Resources"][role_id]["Properties"]
        roles[binary] = {
            "function": logical_id,
            "role": role_id,
            "managed_policy_arns": resolver.resolve(role.get("ManagedPolicyArns", [])),
            "policies": [
                {"name": p["PolicyName"], "document": resolver.resolve(p["PolicyDocument"])}
                for p in role.get("Policies", [])
            ],
        }
    json.dump(roles, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
