//! The command line: `opsctl [--region R] [--profile P] check-env | status | digest | incidents | silence … | backups | backup |
//! restore-test | rotate | dr … | sentry apply`, and its manual (`--help`, in `help`).

mod help;

use clap::{Parser, Subcommand};
use help::EXIT_CODES;

pub const DEFAULT_PREFIX: &str = "cineview";

#[derive(Debug, Parser)]
#[command(name = "opsctl", about = "CineView's operator commands", long_about = help::OPSCTL, after_help = EXIT_CODES)]
pub struct Cli {
    /// AWS region of the secrets [default: AWS_REGION, the profile's region, else us-east-1]
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// AWS profile to take credentials and settings from [default: AWS_PROFILE or default]
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Check the runbook's secrets and environment (the runbook's `npm run check:env`)
    #[command(long_about = help::CHECK_ENV, after_help = EXIT_CODES)]
    CheckEnv {
        /// Name prefix of the stack (its secrets, functions and topics)
        #[arg(long, default_value = DEFAULT_PREFIX, value_name = "NAME")]
        prefix: String,
        /// Print JSON instead of the table
        #[arg(long)]
        json: bool,
    },
    /// The runbook's daily checks in one screen: health, backups, secrets, alerts, alarms
    #[command(long_about = help::STATUS, after_help = EXIT_CODES)]
    Status {
        #[command(flatten)]
        stack: StackArgs,
    },
    /// The runbook's weekly checks for one week: error trends, P95, availability, backups,
    /// restore test, rotations due, alerts
    #[command(long_about = help::DIGEST, after_help = EXIT_CODES)]
    Digest {
        /// The ISO week, YYYY-Www [default: the last whole week]
        #[arg(long, value_name = "YYYY-Www", value_parser = ops_shared::digest::Week::parse)]
        week: Option<ops_shared::digest::Week>,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Every backup: age, size, rows, label, and whether a restore test covered it
    #[command(long_about = help::BACKUPS, after_help = EXIT_CODES)]
    Backups {
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Take a backup now (a pre-deploy backup, say): the backup function, or this process
    #[command(long_about = help::BACKUP, after_help = EXIT_CODES)]
    Backup {
        /// Label of the backup, part of its key (1-40 letters, digits, '-' or '_')
        #[arg(long, value_name = "LABEL")]
        label: Option<String>,
        /// Wait for the backup and its manifest (always so with --local)
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run a restore test now: the restore-verifier function, or this process
    #[command(name = "restore-test", long_about = help::RESTORE_TEST, after_help = EXIT_CODES)]
    RestoreTest {
        /// latest, random, or a backup's key
        #[arg(long, value_name = "KEY", default_value = "latest")]
        backup: String,
        /// Wait for the report (always so with --local)
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Disaster recovery: stop and allow writes, judge the backups, restore one
    #[command(long_about = help::DR, after_help = EXIT_CODES)]
    Dr {
        #[command(subcommand)]
        command: DrCommand,
    },
    /// The runbook's deployment checklist, item by item, against the deployed stack
    #[command(long_about = crate::preflight::HELP, after_help = EXIT_CODES)]
    Preflight {
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Rotate a secret now; --force-past-staging lets this one rotation past the staging gate
    #[command(long_about = help::ROTATE, after_help = EXIT_CODES)]
    Rotate {
        /// The secret (name or ARN)
        #[arg(value_name = "SECRET")]
        secret: String,
        /// Write a one-use pass so this rotation goes ahead although staging has not passed
        #[arg(long, requires = "reason")]
        force_past_staging: bool,
        /// Why the rotation cannot wait for staging, for the alert and the record
        #[arg(long, value_name = "TEXT", requires = "force_past_staging")]
        reason: Option<String>,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// The incident log: each incident of the past --since, or the timeline of one
    #[command(long_about = help::INCIDENTS, after_help = EXIT_CODES)]
    Incidents {
        #[command(subcommand)]
        show: Option<IncidentsCommand>,
        /// How far back: 7d, 30d, 400d
        #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = crate::silences::parse_days)]
        since: chrono::Duration,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Hold back matching alerts for a while (a deploy, a drill): add, list, expire
    #[command(long_about = help::SILENCE, after_help = EXIT_CODES)]
    Silence {
        #[command(subcommand)]
        command: SilenceCommand,
    },
    /// Sentry, through its REST API
    #[command(long_about = help::SENTRY, after_help = EXIT_CODES)]
    Sentry {
        #[command(subcommand)]
        command: SentryCommand,
    },
}

#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum IncidentsCommand {
    /// One incident's timeline, ready to paste into a post-mortem
    Show {
        #[arg(value_name = "ID")]
        id: String,
    },
}

#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum SilenceCommand {
    /// Hold back the alerts that match every --match, from now for --for
    Add {
        /// An alert field or detail and its value: source=health-checker, target=app,
        /// severity=warning, dedup_key=health-checker:app (repeat for more; all must match)
        #[arg(long = "match", value_name = "NAME=VALUE", required = true, value_parser = ops_shared::silence::Matcher::parse)]
        matchers: Vec<ops_shared::silence::Matcher>,
        /// How long: 30m, 2h, 1d (at most 14 days)
        #[arg(long = "for", value_name = "DURATION", value_parser = crate::silences::parse_duration)]
        duration: chrono::Duration,
        /// Why, for the record and the notice at its end
        #[arg(long, value_name = "TEXT")]
        reason: String,
        #[arg(long, default_value = DEFAULT_PREFIX, value_name = "NAME")]
        prefix: String,
    },
    /// Every silence, active ones first
    List {
        #[arg(long, default_value = DEFAULT_PREFIX, value_name = "NAME")]
        prefix: String,
        /// Print JSON instead of the lines
        #[arg(long)]
        json: bool,
    },
    /// End a silence now; ops are told what it held back
    Expire {
        #[arg(value_name = "ID")]
        id: String,
        #[arg(long, default_value = DEFAULT_PREFIX, value_name = "NAME")]
        prefix: String,
    },
}

/// Which stack a read command looks at, and how it prints.
#[derive(Debug, Clone, clap::Args, PartialEq, Eq)]
pub struct StackArgs {
    /// Name prefix of the stack's resources
    #[arg(long, default_value = DEFAULT_PREFIX, value_name = "NAME")]
    pub prefix: String,
    /// The backup bucket [default: <prefix>-ops-backups-<account id>]
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// Print JSON instead of the table
    #[arg(long)]
    pub json: bool,
}

/// Where a backup or a restore test runs.
#[derive(Debug, Clone, clap::Args, PartialEq, Eq)]
pub struct RunArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Run in this process with the function's own code instead of invoking the function: for
    /// a database too large for Lambda's 15 minutes, or a stack without the function
    #[arg(long)]
    pub local: bool,
    /// With --local: where pg_dump and pg_restore are, as <dir>/<major>/bin/
    #[arg(long, value_name = "DIR", default_value = crate::on_demand::DEFAULT_PG_TOOLS)]
    pub pg_tools: String,
}

#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum DrCommand {
    /// Stop writes to the production database (<prefix>-database), the Data API's included
    #[command(long_about = help::FREEZE, after_help = EXIT_CODES)]
    Freeze {
        #[command(flatten)]
        stack: StackArgs,
        /// Why writes are stopped, for the alert and the record
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Also send the step's notice, in plain words, to this SNS topic (the stakeholders'); a
        /// notice that cannot be sent is said so and exits 2
        #[arg(long, value_name = "ARN")]
        notify_topic: Option<String>,
    },
    /// Allow writes again: every privilege and setting the freeze recorded, put back
    #[command(long_about = help::THAW, after_help = EXIT_CODES)]
    Thaw {
        #[command(flatten)]
        stack: StackArgs,
        /// Also send the step's notice, in plain words, to this SNS topic (the stakeholders'); a
        /// notice that cannot be sent is said so and exits 2
        #[arg(long, value_name = "ARN")]
        notify_topic: Option<String>,
    },
    /// The newest backups, each table's live rows beside the backup's, the runbook's advice, and
    /// the data a restore would lose, recorded and told
    #[command(long_about = help::ASSESS, after_help = EXIT_CODES)]
    Assess {
        #[command(flatten)]
        stack: StackArgs,
        /// Also send the step's notice, in plain words, to this SNS topic (the stakeholders'); a
        /// notice that cannot be sent is said so and exits 2
        #[arg(long, value_name = "ARN")]
        notify_topic: Option<String>,
    },
    /// Restore a backup into a database: an untested backup restore-tested on staging first,
    /// safety backup, checksums, restore in one transaction, row counts, validation queries,
    /// health checks, one notice with the data lost
    #[command(long_about = help::RESTORE, after_help = EXIT_CODES)]
    Restore {
        /// The backup's key (opsctl backups lists them)
        #[arg(long, value_name = "KEY")]
        backup: String,
        /// The secret (name or ARN) of the database to restore into
        #[arg(long, value_name = "SECRET")]
        target: String,
        /// The target's host and database, as <host>/<database> (db.abcd.supabase.co/postgres):
        /// the restore replaces what it holds
        #[arg(long, value_name = "HOST/DATABASE")]
        confirm: Option<String>,
        /// Parallel jobs loading the tables, for a large database. RISK: more than 1 cannot
        /// share one transaction, so a restore that fails part-way leaves the database partly
        /// restored (the safety backup undoes it). 1, the default, restores in one
        /// transaction: all or nothing
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
        jobs: u32,
        /// A URL that must answer 2xx after the restore (the app's health endpoint); repeatable
        #[arg(long = "health-url", value_name = "URL")]
        health_urls: Vec<String>,
        /// Restore a backup no restore test has passed without testing it first on the staging
        /// server (the test adds to the RTO); the closing alert says it was restored untested
        #[arg(long)]
        untested: bool,
        #[command(flatten)]
        stack: StackArgs,
        /// Where pg_dump and pg_restore are, as <dir>/<major>/bin/
        #[arg(long, value_name = "DIR", default_value = crate::on_demand::DEFAULT_PG_TOOLS)]
        pg_tools: String,
        /// Also send the step's notice, in plain words, to this SNS topic (the stakeholders'); a
        /// notice that cannot be sent is said so and exits 2
        #[arg(long, value_name = "ARN")]
        notify_topic: Option<String>,
    },
}

#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum SentryCommand {
    /// Create or put back the runbook's metric alert rules (error rate, P95 latency)
    #[command(long_about = help::SENTRY_APPLY, after_help = EXIT_CODES)]
    Apply {
        /// Name prefix of the secrets: the settings are read from <prefix>-sentry-api
        #[arg(long, default_value = DEFAULT_PREFIX, value_name = "NAME")]
        prefix: String,
        /// Print what differs from the runbook and write nothing
        #[arg(long)]
        dry_run: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("opsctl").chain(args.iter().copied()))
    }

    #[test]
    fn commands_and_their_options() {
        Cli::command().debug_assert();
        let cli = parse(&["check-env"]).expect("check-env");
        assert_eq!(cli.command, Command::CheckEnv { prefix: "cineview".into(), json: false });
        let cli = parse(&["check-env", "--prefix", "staging", "--json"]).expect("prefix");
        assert_eq!(cli.command, Command::CheckEnv { prefix: "staging".into(), json: true });
        let cli = parse(&["sentry", "apply", "--dry-run", "--region", "eu-west-1", "--profile", "ops"]).expect("apply");
        assert_eq!(
            cli.command,
            Command::Sentry { command: SentryCommand::Apply { prefix: "cineview".into(), dry_run: true } }
        );
        assert_eq!((cli.region.as_deref(), cli.profile.as_deref()), (Some("eu-west-1"), Some("ops")));
        let cli = parse(&["status", "--json", "--bucket", "b"]).expect("status");
        let stack = StackArgs { prefix: "cineview".into(), bucket: Some("b".into()), json: true };
        assert_eq!(cli.command, Command::Status { stack });
        let cli = parse(&["backup", "--label", "pre-deploy", "--wait"]).expect("backup");
        let Command::Backup { label, wait, run } = cli.command else { panic!("backup") };
        assert_eq!(
            (label.as_deref(), wait, run.local, run.pg_tools.as_str()),
            (Some("pre-deploy"), true, false, "/usr/lib/postgresql")
        );
        let cli = parse(&["restore-test", "--local", "--json"]).expect("restore-test");
        let Command::RestoreTest { backup, run, .. } = cli.command else { panic!("restore-test") };
        assert_eq!((backup.as_str(), run.local, run.stack.json), ("latest", true, true));
        let cli =
            parse(&["dr", "restore", "--backup", "k", "--target", "t", "--confirm", "db.abcd.supabase.co/postgres"])
                .expect("restore");
        let Command::Dr { command: DrCommand::Restore { confirm, health_urls, jobs, untested, .. } } = cli.command
        else {
            panic!("dr restore")
        };
        assert_eq!((confirm.as_deref(), health_urls.len(), jobs), (Some("db.abcd.supabase.co/postgres"), 0, 1));
        assert!(!untested, "a backup is tested first unless --untested says otherwise");
        let cli = parse(&["dr", "restore", "--backup", "k", "--target", "t", "--untested"]).expect("untested");
        assert!(matches!(cli.command, Command::Dr { command: DrCommand::Restore { untested: true, .. } }));
        let cli = parse(&["dr", "restore", "--backup", "k", "--target", "t", "--jobs", "4"]).expect("jobs");
        assert!(matches!(cli.command, Command::Dr { command: DrCommand::Restore { jobs: 4, .. } }));
        assert!(parse(&["dr", "restore", "--backup", "k", "--target", "t", "--jobs", "0"]).is_err());
        let help = parse(&["dr", "restore", "--help"]).expect_err("help").to_string();
        assert!(
            help.contains("--jobs")
                && help.contains("partly restored")
                && help.contains("<host>/<database>")
                && help.contains("--untested")
                && help.contains("staging server"),
            "{help}"
        );
        let cli = parse(&["dr", "freeze", "--reason", "incident 42", "--bucket", "b"]).expect("freeze");
        let Command::Dr { command: DrCommand::Freeze { stack, reason, notify_topic } } = cli.command else {
            panic!("dr freeze")
        };
        assert_eq!(
            (reason.as_str(), stack.bucket.as_deref(), stack.prefix.as_str(), notify_topic),
            ("incident 42", Some("b"), "cineview", None)
        );
        let cli = parse(&["--region", "us-west-2", "sentry", "apply", "--prefix", "x"]).expect("global before");
        assert_eq!(cli.region.as_deref(), Some("us-west-2"));
    }

    #[test]
    fn every_dr_step_takes_a_stakeholders_topic() {
        let topic = "arn:aws:sns:us-east-1:123456789012:stakeholders";
        for step in
            [&["thaw"][..], &["assess"], &["freeze", "--reason", "r"], &["restore", "--backup", "k", "--target", "t"]]
        {
            let cli = parse(&[&["dr"], step, &["--notify-topic", topic]].concat()).expect("--notify-topic");
            let Command::Dr { command } = cli.command else { panic!("dr") };
            let given = match command {
                DrCommand::Freeze { notify_topic, .. }
                | DrCommand::Thaw { notify_topic, .. }
                | DrCommand::Assess { notify_topic, .. }
                | DrCommand::Restore { notify_topic, .. } => notify_topic,
            };
            assert_eq!(given.as_deref(), Some(topic), "{step:?}");
        }
    }

    #[test]
    fn usage_errors_exit_2_and_help_exits_0() {
        let wrong: [&[&str]; 8] = [
            &[],
            &["nonsense"],
            &["check-env", "--prefix"],
            &["sentry"],
            &["sentry", "apply", "--force"],
            &["dr", "restore", "--backup", "k"],
            &["dr", "freeze"],
            &["backup", "--label"],
        ];
        for wrong in wrong {
            let err = parse(wrong).expect_err("refused");
            assert_eq!(err.exit_code(), 2, "{wrong:?}: {err}");
        }
        for help in [&["--help"][..], &["check-env", "--help"], &["sentry", "apply", "--help"]] {
            let err = parse(help).expect_err("help is shown through an error");
            assert_eq!((err.kind(), err.exit_code()), (ErrorKind::DisplayHelp, 0), "{help:?}");
        }
        let help = parse(&["sentry", "apply", "--help"]).expect_err("help").to_string();
        assert!(help.contains("--dry-run") && help.contains("--prefix") && help.contains("Exit codes"), "{help}");
    }

    #[test]
    fn the_help_is_the_manual() {
        let help = |args: &[&str]| parse(args).expect_err("help").to_string();
        let top = help(&["--help"]);
        for command in
            ["check-env", "status", "backups", "backup", "restore-test", "dr", "sentry", "--region", "--profile"]
        {
            assert!(top.contains(command), "{command} in:\n{top}");
        }
        assert!(top.contains("Exit codes: 0") && top.contains("opsctl dr freeze"), "{top}");
        let commands: [&[&str]; 10] = [
            &["check-env"],
            &["status"],
            &["backups"],
            &["backup"],
            &["restore-test"],
            &["dr", "freeze"],
            &["dr", "thaw"],
            &["dr", "assess"],
            &["dr", "restore"],
            &["sentry", "apply"],
        ];
        for command in commands {
            let text = help(&[command, &["--help"]].concat());
            assert!(text.contains("Exit 0 when") && text.contains("Exit codes:"), "{command:?}:\n{text}");
        }
        let apply = help(&["sentry", "apply", "--help"]);
        assert!(apply.contains("available-actions") && apply.contains("<prefix>-sentry-api"), "{apply}");
    }
}
