"""Prints, as JSON, the IAM role SAM creates for each function of a SAM template.

Usage: python3 sam_roles.py [--cloudformation | --resolved] [--param NAME=VALUE]... TEMPLATE
                             [ACCOUNT_ID REGION]

With --cloudformation it prints the whole translated template instead: the CloudFormation
resources SAM deploys (conditions and intrinsics kept as they are). With --resolved it prints
the resources CloudFormation would create with those parameters: conditions evaluated,
resources whose condition is false left out, intrinsic functions resolved.

The template is translated by aws-sam-translator (SAM's own YAML loader, so short-form tags
parse; policy templates, the dead-letter queue and the managed execution policy expanded) with
every parameter at its default unless --param gives it. Intrinsic functions are resolved to the
names and ARNs the resources get in that account and region; a value that cannot be known
before deployment (a KMS key id, a secret's random suffix) keeps a wildcard in its place.

With --param TaskImageUri=... --param TaskSubnets=..., the engine task's role is printed too, as
"engine-task".

Output: {"<name>": {"function": logical id, "role": logical id,
                    "managed_policy_arns": [...], "policies": [{"name", "document"}]}}
"""

import argparse
import json
import re
import sys

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse


# Stands for `Ref: AWS::NoValue`: the property or list item is left out.
NO_VALUE = object()


class Resolver:
    def __init__(self, template, params, account, region):
        self.resources = template.get("Resources", {})
        self.conditions = template.get("Conditions", {})
        self.params = params
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

    def holds(self, condition):
        """Whether the template's condition `condition` (a name or an expression) is true."""
        if isinstance(condition, str):
            return self.holds(self.conditions[condition])
        (key, arg), = condition.items()
        if key == "Condition":
            return self.holds(arg)
        if key == "Fn::Equals":
            return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
        if key == "Fn::Not":
            return not self.holds(arg[0])
        if key == "Fn::And":
            return all(self.holds(c) for c in arg)
        if key == "Fn::Or":
            return any(self.holds(c) for c in arg)
        raise ValueError(f"unknown condition function {key}")

    def ref(self, target):
        if target == "AWS::NoValue":
            return NO_VALUE
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
        if kind == "AWS::ECS::TaskDefinition":
            # The revision is known only once registered.
            return f"arn:aws:ecs:{self.region}:{self.account}:task-definition/{self.name(target, 'Family')}:*"
        for key in ("BucketName", "TableName", "FunctionName", "RoleName", "LogGroupName"):
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
            if kind == "AWS::ECS::Cluster":
                return f"arn:aws:ecs:{self.region}:{self.account}:cluster/{self.name(target, 'ClusterName')}"
            if kind == "AWS::Logs::LogGroup":
                return f"arn:aws:logs:{self.region}:{self.account}:log-group:{self.name(target, 'LogGroupName')}"
            if kind == "AWS::Events::Rule":
                # A rule on the default event bus.
                return f"arn:aws:events:{self.region}:{self.account}:rule/{self.name(target, 'Name')}"
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
            return [v for v in (self.resolve(v) for v in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Fn::If":
                condition, when_true, when_false = arg
                return self.resolve(when_true if self.holds(condition) else when_false)
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
                # A list, or a reference to one (a CommaDelimitedList parameter).
                parts = self.resolve(parts) if isinstance(parts, dict) else [self.resolve(p) for p in parts]
                return separator.join(str(p) for p in parts)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def created(self):
        """The resources CloudFormation creates: those whose condition holds, resolved."""
        return {
            logical_id: self.resolve({k: v for k, v in resource.items() if k != "Condition"})
            for logical_id, resource in self.resources.items()
            if "Condition" not in resource or self.holds(resource["Condition"])
        }


def main():
    parser = argparse.ArgumentParser()
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--cloudformation", action="store_true")
    mode.add_argument("--resolved", action="store_true")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("template")
    parser.add_argument("account", nargs="?", default="123456789012")
    parser.add_argument("region", nargs="?", default="us-east-1")
    args = parser.parse_args()
    with open(args.template, encoding="utf-8") as f:
        sam = yaml_parse(f.read())
    for resource in sam["Resources"].values():
        # What `sam package` does to local code; where the code lies does not touch IAM.
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://packaged/code.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://packaged/layer.zip"
    specs = sam.get("Parameters", {})
    params = {name: spec.get("Default", "") for name, spec in specs.items()}
    for given in args.param:
        name, _, value = given.partition("=")
        if name not in params:
            parser.error(f"the template has no parameter {name}")
        params[name] = value
    # A CommaDelimitedList is a list to Ref ("" is [""], as CloudFormation has it).
    for name, spec in specs.items():
        if spec.get("Type") == "CommaDelimitedList" and isinstance(params[name], str):
            params[name] = params[name].split(",")
    # The template names managed policies by ARN only: no IAM look-up of names is needed.
    session = boto3.session.Session(region_name=args.region)
    translator = Translator({}, Parser(), boto_session=session)
    cfn = translator.translate(json.loads(json.dumps(sam)), params, get_managed_policy_map=dict)
    if args.cloudformation:
        json.dump(cfn, sys.stdout, indent=1, sort_keys=True)
        return
    resolver = Resolver(cfn, params, args.account, args.region)
    if args.resolved:
        json.dump({"Resources": resolver.created()}, sys.stdout, indent=1, sort_keys=True)
        return
    roles = {}
    for logical_id, resource in sam["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        # The function's name without the stack's prefix: two functions may run one binary.
        name = resource["Properties"]["FunctionName"]["Fn::Sub"].split("${NamePrefix}-", 1)[1]
        role_ref = cfn["Resources"][logical_id]["Properties"]["Role"]["Fn::GetAtt"]
        role_id = role_ref[0] if isinstance(role_ref, list) else role_ref.split(".")[0]
        role = cfn["Resources"][role_id]["Properties"]
        roles[name] = {
            "function": logical_id,
            "role": role_id,
            "managed_policy_arns": resolver.resolve(role.get("ManagedPolicyArns", [])),
            "policies": [
                {"name": p["PolicyName"], "document": resolver.resolve(p["PolicyDocument"])}
                for p in role.get("Policies", [])
            ],
        }
    # The engine task's role (ECS assumes it for the task): named after the task's binary.
    task_role = cfn["Resources"].get("EngineTaskRole")
    if task_role is not None and ("Condition" not in task_role or resolver.holds(task_role["Condition"])):
        roles["engine-task"] = {
            "function": "EngineTaskDefinition",
            "role": "EngineTaskRole",
            "managed_policy_arns": resolver.resolve(task_role["Properties"].get("ManagedPolicyArns", [])),
            "policies": [
                {"name": p["PolicyName"], "document": resolver.resolve(p["PolicyDocument"])}
                for p in task_role["Properties"].get("Policies", [])
            ],
        }
    json.dump(roles, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
