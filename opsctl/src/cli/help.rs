//! The manual: what each command does, reads and needs, and what its exit code means, as
//! `opsctl --help` and `opsctl <command> --help` print it.

pub const EXIT_CODES: &str = "Exit codes: 0 all is as the runbook says, 1 a problem was found, 2 a usage error or \
something could not be reached or read (the message says what to do).";

pub const OPSCTL: &str = "\
CineView's operator commands: the runbook's checks, backups and restore tests on demand, disaster
recovery, and the Sentry alert rules, on the same code as the stack's Lambda functions.

AWS: --region and --profile (before or after the command) choose the AWS account the secrets and
the stack are read from; otherwise AWS_REGION / AWS_PROFILE and the shared config files, then
us-east-1. AWS_ENDPOINT_URL, when set, sends every AWS request there (a local stack).

Every command that names the stack takes --prefix (default cineview): the stack's resources are
named from it, <prefix>-database, <prefix>-ops-backups-<account id>, <prefix>-ops-alerts...

The runbook's commands, and what does them here:
  setup-aws-secrets.sh, create-secret (1.2)  the stack creates the secrets, or adopts the runbook's
  put-secret-value to rotate (1.6)           rotation schedules: 90 days critical, 180 days API keys
  npm run check:env (1.5, 4, 6)              opsctl check-env
  Sentry alert rules clicked by hand (2.4)   opsctl sentry apply
  npm run monitoring:summary, daily checks   opsctl status, and the daily status e-mail
  curl .../api/health, check:health (3.7)    health-checker, every minute; opsctl status shows it
  supabase db backup create (3.3, 6)         the nightly backup; now: opsctl backup --label pre-deploy --wait
  the monthly restore test (3.5)             restore-verifier, monthly; now: opsctl restore-test
  disaster recovery 1, disable writes        opsctl dr freeze
  disaster recovery 2, assessment            opsctl dr assess
  disaster recovery 3, restore               opsctl dr restore --backup KEY --target cineview-database
                                               --confirm db.<ref>.supabase.co/postgres
  disaster recovery 4, validation            dr restore's row counts, validation queries and health
                                               checks; opsctl status after opsctl dr thaw
  disaster recovery 5, communication         the notices of dr freeze, assess, restore and thaw, to ops
                                               and (--notify-topic) to the stakeholders

Long work shows a spinner with the elapsed time on a terminal and plain lines otherwise, on stderr,
so that --json output stays clean.";

pub const CHECK_ENV: &str = "\
Checks the shell and the stack as deployed (the runbook's `npm run check:env`); each problem
comes with the command that fixes it (fix: ...).

Secrets    all twelve of the stack's secrets under --prefix (the rotated three created or adopted)
           exist, are readable, non-empty and well-formed; the rotated ones carry their
           rotation-strategy tag, rotate on the runbook's cadence (90 days the critical secret,
           180 days API keys) and are not overdue
Shell      AWS_REGION, SENTRY_DSN and SENTRY_ENVIRONMENT set and valid
Functions  as deployed (lambda:GetFunctionConfiguration): their secret variables name secrets
           that exist; SENTRY_DSN set in each; health targets for the app, the AI engine and the
           database; scheduled-backup checking Supabase's own backups
Sentry     the alert rules as `opsctl sentry apply` makes them (its dry run finds no difference);
           <prefix>-sentry-read's token reads the app's numbers
Topics     the ops topic's e-mail and pager subscriptions and the pager topic's confirmed
           (sns:ListSubscriptionsByTopic; PendingConfirmation is not)

Exit 0 when all is well, 1 when a problem was found, 2 when a check could not run.";

pub const STATUS: &str = "\
The runbook's daily checks in one screen. Each line is judged against the runbook's numbers (ok,
WARNING, CRITICAL):

- Sentry, the app's past 24 hours (<prefix>-sentry-read): error rate of its transactions
  (warning above 2 %, critical above 5 %), their P95 (as below), new and escalating issues;
- each health target: up, or down since when; P95 over the last 5 minutes (warning above 1500 ms,
  critical above 3000 ms); availability today and over 30 days; for a target with an objective
  (the AI engine's 99.5 %), the share of its error budget left and whether it burns;
- the newest backup: age against the 24-hour RPO, size, label, tables and rows; the newest restore
  test: result and measured RTO against 30 minutes (warning if older than 35 days);
- each rotated secret: last rotation, next one, and days left of its 90 or 180;
- alerts ops were told of in the past 24 hours by severity (a critical one makes the line
  CRITICAL even once resolved), those still firing, the alarms that page ops without the
  forwarder that went to ALARM in the past 24 hours; CloudWatch alarms of the stack in ALARM.

Reads the state table <prefix>-ops-state (dynamodb:Scan), the backup bucket (s3:ListBucket,
s3:GetObject), Secrets Manager (secretsmanager:DescribeSecret, GetSecretValue of
<prefix>-sentry-read), CloudWatch (cloudwatch:DescribeAlarms, cloudwatch:DescribeAlarmHistory)
and Sentry's API. The same screen reaches ops by
e-mail every day at 07:00 UTC (the schedule <prefix>-daily-status invokes health-checker).

Exit 0 when every line is ok, 1 when one is not, 2 when a source cannot be read.";

pub const DIGEST: &str = "\
The runbook's weekly checks for one ISO week (Monday to Sunday, UTC), --week YYYY-Www or by
default the last whole week:

- errors and performance from Sentry (the app's transactions, <prefix>-sentry-read): error rate
  and transactions this week and last, P95 this week against last and against 1500 ms, error
  events week over week, the week's new issues, the issues regressed now, the top 5 by events;
- each health target's availability this week and last, and for one with an objective the share
  of its error budget left over the 30 days to the week's end;
- every backup that finished in the week, and the days without one; the latest restore test
  with its RTO and RPO;
- the rotated secrets due within 30 days;
- the alerts ops were told of during the week, by severity.

Reads what `opsctl status` reads. The same digest reaches ops by e-mail every Monday at 08:00
UTC (the schedule <prefix>-weekly-digest invokes health-checker).

Exit 0 when every line is ok, 1 when one is not, 2 when a source cannot be read.";

pub const INCIDENTS: &str = "\
The incident log. Every warning or critical alert the forwarder handles is part of an incident:
grouped by its alert key, or by an inhibition parent whose incident is open; opened at its first
firing, closed when the alert that opened it resolves. Each records its alert keys, the pages and
notifications sent, the silences that held some back, and a timeline.

  opsctl incidents [--since 30d] [--json]   one line each, newest first (open ones too)
  opsctl incidents show ID [--json]         the timeline, ready to paste into a post-mortem

Closed incidents are in the backup bucket under reports/incidents/YYYY/MM/ (kept 400 days:
s3:ListBucket, s3:GetObject), open ones in the state table (dynamodb:Scan). The weekly digest
counts them.";

pub const SILENCE: &str = "\
Silences hold back the alerts that match them while they last, as for a planned deploy or a
disaster-recovery drill, so that nobody is paged for what is expected:

  opsctl silence add --match source=health-checker --match target=app --for 2h --reason \"deploy 4.2\"
  opsctl silence list [--json]
  opsctl silence expire ID

A matcher is NAME=VALUE on an alert's source, severity, status, dedup_key or title, or one of
its details (target=app); an alert is held back when every matcher of an active silence matches.
The forwarder counts what each silence holds back and, within 5 minutes of its end (or of
`expire`), sends ops one notice of what it held and what still fires. An alert about the alert
pipeline itself is never held back. `opsctl status` lists the active silences.

Silences are kept in the state table <prefix>-ops-state (dynamodb:GetItem, dynamodb:PutItem).";

pub const BACKUPS: &str = "\
Every backup, newest first: age, size, rows, label, and the result of the newest restore test of
it, if one covered it. Reads the backup bucket (s3:ListBucket, s3:GetObject).

Exit 0 when the list was read, 2 when it could not be.";

pub const BACKUP: &str = "\
Takes a backup now (a pre-deploy backup, say).

By default it invokes the deployed function <prefix>-scheduled-backup (lambda:InvokeFunction):
with --wait it waits for the answer and checks that the backup's manifest is in the bucket;
without it, it returns once Lambda has queued the run (`opsctl backups` shows the result).

--local runs the same code in this process instead, with the operator's credentials and
PostgreSQL tools (--pg-tools, laid out as <dir>/<major>/bin/): for a database whose dump takes
longer than Lambda's 15 minutes, or a stack without the function. It reads <prefix>-database,
writes to the backup bucket, publishes its alerts to <prefix>-ops-alerts (sns:Publish), and
honours the function's settings from the environment (DUMP_COMPRESSION, PART_SIZE_MIB...).

Exit 0 when the backup was taken (or queued), 1 when it failed, 2 when it could not run.";

pub const RESTORE_TEST: &str = "\
Runs a restore test now: the backup (latest, random, or a key) restored into a scratch database
on the staging server, its row counts and validation queries checked, a report filed.

By default it invokes the deployed function <prefix>-restore-verifier (lambda:InvokeFunction):
with --wait it waits for the report; without it, it returns once Lambda has queued the run.
--local runs the same code in this process instead (see `opsctl backup --help`), reading
<prefix>-staging-database and honouring RESTORE_JOBS, VALIDATION_QUERIES... from the environment.

Exit 0 when the test passed (or was queued), 1 when it failed, 2 when it could not run.";

pub const DR: &str = "\
Disaster recovery, the runbook's \"stop writes, judge the backup's age, restore, validate\", through
the production database's stored credentials (<prefix>-database).

Each step tells what it did in one notice (the runbook's \"notify stakeholders of data loss scope
and restoration timeline\"): an alert to ops on <prefix>-ops-alerts and, with --notify-topic ARN,
the same news in plain words on that SNS topic (the stakeholders'; subject under 100 characters):
  freeze   writes stopped: since when (UTC), by whom (STS), why
  assess   the data-loss window: from the newest backup's snapshot to the freeze (to now, said so, if
           writes were not stopped), and each table whose live rows differ from the backup's
  restore  what was restored (the backup, when it finished, the database), the data-loss window in
           time and rows (dr assess's record, else the safety backup's counts), how long it took,
           and the next step (the thaw command)
  thaw     writes allowed again, and for how long they were stopped
A notice that cannot be sent is said so in the output (\"NOT sent: why\") and the command exits 2,
its work done all the same.";

pub const FREEZE: &str = "\
Stops writes to the production database (<prefix>-database), the Data API's included.

PostgREST writes in an explicit read-write transaction as anon, authenticated or service_role,
roles Supabase does not let postgres alter; so every table, view and sequence the database role
owns outside the platform's schemas loses its write privileges for every role but the owner
(reads keep theirs), new transactions default to read-only, and the other sessions are ended (a
superuser's, Supabase's own, are left).

What was granted and set is recorded first in the backup bucket
(reports/dr-freezes/<secret ARN>.json, out of reach of a restore), and one notice says who (STS),
since when (UTC), why and how to thaw (to ops, and with --notify-topic to the stakeholders). The output lists what it cannot stop: SECURITY DEFINER functions the
role owns, tables of other owners; the platform's services still write auth and storage
(sign-ups, uploads). A second freeze keeps the first record and takes away what was granted since.

Needs secretsmanager:DescribeSecret, the bucket (s3:ListBucket, s3:GetObject, s3:PutObject) and
sns:Publish (on the --notify-topic too).

Exit 0 when writes are stopped, 2 when the database, the secret or the bucket could not be reached,
or a notice could not be sent (writes are stopped all the same).";

pub const THAW: &str = "\
Allows writes again: every privilege and setting the freeze recorded is put back, the freeze's
alert is resolved, and with --notify-topic the stakeholders are told since when writes are allowed
and how long they were stopped. A second thaw does nothing. Needs what `dr freeze` needs.

Exit 0 when writes are allowed, 2 when the database, the secret or the bucket could not be reached,
or a notice could not be sent (writes are allowed all the same).";

pub const ASSESS: &str = "\
The newest backups of the production database with their ages (backups of other servers or
databases, and the pre-restore safety backups, are never its newest: the manifests say which host,
database and secret each came from), each table's live row count beside the newest backup's, and
the runbook's rule: under 24 hours, restore it; older, decide with the team. Each backup is
marked tested yes, no or FAILED: whether a restore test passed exactly that backup, with the date
of its report (`dr restore` tests an untested one on the staging server first).

The data-loss window of restoring the newest backup: from its snapshot (the manifest's started_at: pg_dump dumps the snapshot taken then) to
the freeze (the freeze record's time; to now, said so, when writes were not stopped), and each
table whose live row count differs from the backup's (fewer: the restore brings them back; more:
written since the backup, lost by the restore). It is recorded in the backup bucket
(reports/dr-assessments/<secret ARN>.json, beside the freeze record) for `dr restore` to state,
and told in one notice (to ops, and with --notify-topic to the stakeholders).

Needs secretsmanager:DescribeSecret, the bucket (s3:ListBucket, s3:GetObject, s3:PutObject) and
sns:Publish.

Exit 0 when the assessment was made and told, 2 when the database or the bucket could not be read,
or a notice could not be sent (the assessment is recorded all the same).";

pub const RESTORE: &str = "\
Restores a backup into the database whose credentials --target holds (the production one is
<prefix>-database), in this process.

- It refuses unless --confirm names that database and its host (db.abcd.supabase.co/postgres:
  every Supabase database is called postgres).
- One run at a time per database: a run holds a PostgreSQL advisory lock on the target from start
  to end (it goes with the run's connection, so a killed run leaves none behind); a second run
  stops at once, naming the session that holds it.
- Tested backups first: a backup no restore test has passed (no passed report of exactly that key
  under reports/restore-tests/, as the restore-verifier and `opsctl restore-test` file them) is
  restore-tested first on the staging server (<prefix>-staging-database, a scratch database, the
  restore-verifier's own engine), its report filed like any restore test's. Before it starts it
  says how much the test adds to the 30-minute RTO (the backup's size at the speed the last restore
  test measured, or unknown). If the test fails or cannot run, the restore stops: nothing on the
  target is touched, a critical alert says why, exit 1 (failed) or 2 (could not run). If it passes,
  the restore goes on and says the backup was tested just now, and how long that took. A test that
  missed only its RTO or RPO target (a backup older than a day) still counts as passed: the backup
  restores. --untested skips the test; the output and the closing alert then say the backup was
  restored untested. Safety backups (label pre-restore) are restored without a test.
- While it downloads the dump and checks its size and SHA-256 against the manifest, it takes a
  safety backup of the target (label pre-restore: restoring it undoes the restore). It touches
  nothing unless both succeeded; a mismatch is a critical alert (the backups may be damaged).
- It restores in one transaction, so a restore that fails part-way changes nothing (it writes
  even while `dr freeze` holds). --jobs N loads the tables with N parallel jobs instead, at a
  risk: parallel jobs cannot share a transaction, so a failure leaves the database partly
  restored (the safety backup undoes it). A Supabase backup goes through one connection as
  postgres: the app's objects are dropped and made again, auth and storage get their rows back
  and nothing else, and the platform's objects stay as they were. A frozen database is frozen
  again once restored.
- It then compares every table's rows with the manifest, runs the validation queries
  (VALIDATION_QUERIES), checks that the database takes new connections and that each --health-url
  answers 2xx, and sends one notice: what was restored (the backup, when it finished, the
  database), the data-loss window in time and in rows per table (dr assess's record of this backup
  under the freeze that holds, else worked out from the safety backup's row counts), how long it
  took, and the next step (the freeze's thaw command); an alert to <prefix>-ops-alerts (info;
  critical if a check failed) and, with --notify-topic, plain words to the stakeholders.
- A journal, reports/dr-restores/<target secret's ARN>.json in the backup bucket, records each
  restore's phase: a run that finds an earlier restore interrupted or failed says so, checks that
  its safety backup is still in the bucket (else it stops and says how to go on), keeps it and
  restores again.

Needs what `backup --local` and `restore-test --local` need, plus the target's secret.

Exit 0 when every check passed, 1 when the backup, its restore test, the safety backup or a check
failed, 2 for a refusal or no access (a restore test that could not run included), or when the
restore passed but its notice could not be sent.";

pub const SENTRY: &str =
    "Sentry, through its REST API (the alert-rules endpoints, /api/0/organizations/<org>/alert-rules/).";

pub const SENTRY_APPLY: &str = "\
Makes the runbook's Sentry metric alerts exist as it says:

  rule (found by this name)   metric                                      warning           critical
  CineView ops: error rate    failure_rate(): failed / all transactions   above 2 % (0.02)  above 5 % (0.05)
  CineView ops: P95 latency   p95(span.duration) of transactions          above 1500 ms     above 3000 ms

Both: project and environment from the secret, 5-minute window, dataset events_analytics_platform
with the query `is_transaction:true !ops.component:cineview-ops`: the app's transactions only,
not the ops functions' own (they carry that tag and may send to the same project; a backup is a
transaction of minutes). Resolved automatically below the warning threshold; each trigger's
only action is the internal integration, so alerts reach sentry-webhook as metric_alert webhooks.
A missing rule is created; a rule whose window, thresholds, actions or query were changed by
hand is listed with what differs and put back (the fields it does not set are kept); a rule that
matches is not written (a second run prints `up to date`). Rules of any other name are never
changed; a second rule with one of these names is reported and left alone.

The settings are the secret <prefix>-sentry-api (JSON):
  {\"organization\": \"cineview\", \"project\": \"cineview-web\", \"auth_token\": \"<token>\",
   \"sentry_app_id\": 12345, \"api_url\": \"https://sentry.io\", \"environment\": \"production\"}
api_url (default https://sentry.io; https://de.sentry.io for an organization in the EU) and
environment (default: all) are optional. auth_token needs alerts:read and alerts:write: the
internal integration's own token with permission Alerts: Read & Write will do. sentry_app_id is
the internal integration's numeric id; Sentry's API answers custom integrations with their slug
and uuid only, so look the id up once in the actions a metric alert may take:
  curl -H \"Authorization: Bearer $TOKEN\" \\
    https://sentry.io/api/0/organizations/<org>/alert-rules/available-actions/
(sentryAppId beside the integration's sentryAppName).

Exit 0 when the rules are as the runbook says (or were made so), 1 when --dry-run found a
difference, a name is taken twice or a write did not take, 2 when Sentry or the secret could not
be reached or refused (the alert-rules endpoints are deprecated in Sentry's reference; if Sentry
takes them away, the command stops with the status Sentry answers).";

pub const ROTATE: &str = "\
Starts a rotation of SECRET now (Secrets Manager's RotateSecret; the rotation function does the
rest and its alerts tell how it ended).

A production stack deployed with StagingNamePrefix waits for staging: its rotation stops before
createSecret unless staging's last rotation of the same strategy passed with the code production
runs now. When a rotation cannot wait (a leaked credential), --force-past-staging --reason TEXT
first writes a pass into <prefix>-ops-state: the next rotation of SECRET takes it (once; an
unused pass lapses after 24 hours), goes ahead, and its warning alert names who forced it and why.
Needs dynamodb:PutItem on the state table and secretsmanager:RotateSecret on SECRET.

Exit 0 when the rotation was started, 2 when the secret, the table or RotateSecret refused.";
