//! `opsctl`: parses the command line, sets up what the commands share, runs the command, and
//! exits with the code its outcome says (see `opsctl --help`).

use std::process::ExitCode;

use clap::Parser;
use opsctl::cli::{Cli, Command, SentryCommand};
use opsctl::commands::{self, Context};
use opsctl::error::{self, OpsctlError};
use opsctl::outcome::Outcome;

#[tokio::main]
async fn main() -> ExitCode {
    // A usage error exits 2 and --help 0, both from clap.
    let cli = Cli::parse();
    // The engines opsctl runs record CloudWatch metrics on stdout, where Lambda reads them; here
    // stdout is the operator's (and `--json`'s).
    ops_shared::telemetry::silence_metrics();
    error::finish(run(cli).await)
}

async fn run(cli: Cli) -> Result<Outcome, OpsctlError> {
    let ctx = Context::new(cli.region.as_deref(), cli.profile.as_deref()).await?;
    match cli.command {
        Command::CheckEnv { prefix, json } => commands::check_env::run(&ctx, &prefix, json).await,
        Command::Status { stack } => commands::status::run(&ctx, stack).await,
        Command::Digest { week, stack } => commands::status::digest(&ctx, week, stack).await,
        Command::Backups { stack } => commands::backups::run(&ctx, stack).await,
        Command::Backup { label, wait, run } => commands::on_demand::backup(&ctx, label, wait, run).await,
        Command::RestoreTest { backup, wait, run } => commands::on_demand::restore_test(&ctx, &backup, wait, run).await,
        Command::Dr { command } => commands::dr::run(&ctx, command).await,
        Command::Preflight { stack } => commands::preflight::run(&ctx, stack).await,
        Command::Rotate { secret, force_past_staging, reason, stack } => {
            let force = reason.as_deref().filter(|_| force_past_staging);
            Ok(commands::rotate::run(&ctx, &secret, force, &stack).await?)
        }
        Command::Incidents { show, since, stack } => {
            let id = show.map(|opsctl::cli::IncidentsCommand::Show { id }| id);
            commands::incidents::run(&ctx, id, since, stack).await
        }
        Command::Silence { command } => commands::silence::run(&ctx, command).await,
        Command::Sentry { command: SentryCommand::Apply { prefix, dry_run } } => {
            commands::sentry::apply(&ctx, &prefix, dry_run).await
        }
    }
}
