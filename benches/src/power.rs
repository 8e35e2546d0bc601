//! `cargo xtask bench --power`: each function's real work under the CPU Lambda gives each
//! memory size (1,769 MB = one vCPU), as a cgroup v1 CPU quota on the function's process and
//! its children only; PostgreSQL, moto and this process (the Runtime API, the S3 stand-in)
//! stand for remote services and run beside it, unlimited. Durations, CPU time, peak memory
//! and the cost of each size, the fastest and the cheapest.

use std::process::Command;
use std::time::{Duration, Instant};

use ops_testkit::aws::ROTATION_STEPS;
use ops_testkit::runtime_api::{LambdaProcess, Outcome};
use serde_json::{Value, json};

use crate::cgroup::{self, Group, MB_PER_VCPU, RssSampler};
use ops_shared::postgres::quote_ident;

use crate::{Bench, Size, median};

/// Lambda's sizes measured: from the smallest to all the two cores here can give (3,538 MB).
const SIZES: [u32; 10] = [128, 256, 512, 768, 1024, 1536, 1769, 2048, 3008, 3538];
/// Sizes over two vCPUs: extrapolated, not measured (see [`Table::print`]).
const EXTRAPOLATED: [u32; 2] = [5307, 10240];
/// Lambda on arm64, US East (N. Virginia), first tier (https://aws.amazon.com/lambda/pricing/).
const PRICE_PER_GB_SECOND: f64 = 0.000_013_333_4;
const PRICE_PER_REQUEST: f64 = 0.000_000_2;
/// The size chosen: the cheapest whose duration is within this factor of the reference, the
/// median duration at one vCPU or more (where a single thread is no longer throttled); the
/// median, not the fastest, as one run per size on a shared machine has outliers both ways.
const WITHIN: f64 = 1.25;
/// Lambda's limit: a run over it does not finish.
const CAP: Duration = Duration::from_secs(900);
/// What a backup or restore test may take, a minute short of the limit.
const BUDGET_S: f64 = 840.0;

/// One function at one size.
struct Row {
    mb: u32,
    /// Seconds per invocation (per rotation: its four steps); `None`: not within `CAP`.
    seconds: Option<f64>,
    /// Process start to the first answer (the light functions, which run warm).
    cold: Option<f64>,
    cpu_s: f64,
    peak_mb: f64,
    throttled: (u64, u64),
}

/// One function's rows.
struct Table {
    function: &'static str,
    work: String,
    /// Lambda requests per unit of work (a rotation is four).
    requests: u32,
    /// The database's size on disk, for throughput.
    db_bytes: Option<f64>,
    today_mb: u32,
    rows: Vec<Row>,
}

impl Bench {
    /// The `--power` run: the light functions, then the backup and restore test of `size`'s
    /// database on PostgreSQL 17 (`DUMP_COMPRESSION=auto`, as the template: zstd:3), then the
    /// backup's overhead on PostgreSQL 15 with S3 free of cost.
    pub(crate) async fn power(&self, size: &Size) -> Result<(), String> {
        let started = Instant::now();
        let services = Group::new(&format!("ops-bench-services-{}", std::process::id()), None)?;
        // This process and the servers it started (moto, PostgreSQL, their children).
        let pg17 = self.stack.pg17()?;
        let me = std::process::id();
        for pid in std::iter::once(me).chain(cgroup::descendants(me)) {
            // A process that has just exited cannot move: nothing lost.
            let _ = services.add(pid);
        }
        println!(
            "## Memory sized by measurement (`cargo xtask bench --power`, {}; load average {} at the start)\n",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            cgroup::load_average()
        );
        let mut tables = vec![self.power_rotation().await?, self.power_health().await?, self.power_forwarder().await?];
        let db = format!("bench_power_s{}", size.scale);
        let generated = self.generate(pg17, &db, size.scale, size.payload_rows).await?;
        let staging = "bench-power-staging-17";
        self.secret(staging, &pg17.superuser("postgres")).await?;
        let (backup, key) = self.power_backup(&generated, &size.label).await?;
        tables.push(backup);
        tables.push(self.power_restore(&generated, &size.label, &key, staging).await?);
        self.delete(&key).await?;
        pg17.psql("postgres", &format!("DROP DATABASE {}", quote_ident(&db)))?;
        for table in &tables {
            table.print();
        }
        summary(&tables);
        println!(
            "Load average at the end: {} ({:.0} min in all)\n",
            cgroup::load_average(),
            started.elapsed().as_secs_f64() / 60.0
        );
        // Today's ratios with S3 that costs nothing beside them, on the database of `size`.
        let overhead = Size { rounds: 3, large: true, compression: false, ..size.clone() };
        let measured = self.backup(&overhead).await;
        println!("Load average after the overhead rounds: {}\n", cgroup::load_average());
        drop(services);
        measured
    }

    /// `function` started inside a new quota group for `mb`, `work` run on it; the group is
    /// gone when this returns.
    async fn under_quota<T>(
        &self,
        function: &str,
        extra: &[(&str, String)],
        mb: u32,
        work: impl AsyncFnOnce(&mut LambdaProcess) -> Result<T, String>,
    ) -> Result<(T, Row), String> {
        let group = Group::new(&format!("ops-bench-{}-{function}-{mb}", std::process::id()), Some(mb))?;
        let [cpu, acct] = group.procs_files();
        // The process enters the group before it runs anything of its own: pg_dump and
        // pg_restore, its children, inherit it.
        let mut command = Command::new("/bin/sh");
        command.args(["-c", "echo $$ > \"$1\" && echo $$ > \"$2\" && exec \"$3\"", "sh"]);
        command.arg(cpu).arg(acct).arg(self.bin_dir.join(function));
        let mut env = self.function_env(extra);
        env.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), mb.to_string()));
        let mut process = LambdaProcess::start_command(function, command, &env, self.stack.root()).await?;
        let sampler = RssSampler::start(&group);
        let outcome = work(&mut process).await;
        let peak_mb = sampler.peak_mb().max(process.peak_rss_kib().unwrap_or(0) as f64 / 1024.0);
        let (cpu_s, throttled) = (group.cpu_seconds(), group.throttled());
        process.stop();
        drop(group);
        let row = Row { mb, seconds: None, cold: None, cpu_s, peak_mb, throttled };
        Ok((outcome?, row))
    }

    /// One full rotation (four steps, four invocations) of a Postgres password.
    async fn power_rotation(&self) -> Result<Table, String> {
        const ROTATIONS: usize = 4;
        let secret = "bench-power-rotation";
        self.postgres_rotated_secret(secret, "bench_power_user").await?;
        let mut rows = Vec::new();
        for mb in SIZES {
            let work = async |process: &mut LambdaProcess| {
                let (mut times, mut cold) = (Vec::new(), None);
                for _ in 0..ROTATIONS {
                    let asked = Instant::now();
                    let token = self.aws.start_rotation(secret).await?;
                    let started = Instant::now();
                    for step in ROTATION_STEPS {
                        let event = json!({"Step": step, "SecretId": secret, "ClientRequestToken": token});
                        answer(process, &event).await?.ok_or("a rotation step gave no answer")?;
                        // From process start, less the rotation's start in Secrets Manager.
                        let first = process.started().elapsed().saturating_sub(started - asked);
                        cold = cold.or(Some(first.as_secs_f64()));
                    }
                    times.push(started.elapsed().as_secs_f64());
                    self.aws.end_rotation(secret, &token).await?;
                }
                Ok((median(&times[1..]), cold))
            };
            let ((seconds, cold), row) = self.under_quota("secret-rotation", &[], mb, work).await?;
            rows.push(Row { seconds: Some(seconds), cold, ..row });
        }
        let work = format!(
            "one rotation of a Postgres password, its four steps: a run is four invocations (median of {})",
            ROTATIONS - 1
        );
        Ok(Table { function: "secret-rotation", work, requests: 4, db_bytes: None, today_mb: 256, rows })
    }

    /// A health run over the runbook's three targets.
    async fn power_health(&self) -> Result<Table, String> {
        let (_web, targets) = crate::health_targets().await;
        let rows = self.light("health-checker", &[("HEALTH_TARGETS", targets)], |_| json!({})).await?;
        let work = "one run over the three default targets (app, AI engine, database)".to_owned();
        Ok(Table { function: "health-checker", work, requests: 1, db_bytes: None, today_mb: 256, rows })
    }

    /// A new alert forwarded (e-mailed).
    async fn power_forwarder(&self) -> Result<Table, String> {
        // A new message and a new alert each time, across sizes too: none is a duplicate.
        let event = |_| {
            let id = uuid::Uuid::new_v4().simple().to_string();
            crate::sns_record(&id, &format!("bench-power:{id}"))
        };
        let rows = self.light("alert-forwarder", &[], event).await?;
        let work = "one new alert from SNS, e-mailed".to_owned();
        Ok(Table { function: "alert-forwarder", work, requests: 1, db_bytes: None, today_mb: 256, rows })
    }

    /// A light function at every size: the first event from process start (cold), then the
    /// median of the next ones (warm).
    async fn light(
        &self,
        function: &str,
        extra: &[(&str, String)],
        event: impl Fn(usize) -> Value,
    ) -> Result<Vec<Row>, String> {
        const RUNS: usize = 11;
        let mut rows = Vec::new();
        for mb in SIZES {
            let work = async |process: &mut LambdaProcess| {
                let mut times = Vec::new();
                let mut cold = None;
                for i in 0..RUNS {
                    let started = Instant::now();
                    answer(process, &event(i)).await?.ok_or_else(|| format!("{function} gave no answer"))?;
                    times.push(started.elapsed().as_secs_f64());
                    cold = cold.or(Some(process.started().elapsed().as_secs_f64()));
                }
                Ok((median(&times[1..]), cold))
            };
            let ((seconds, cold), row) = self.under_quota(function, extra, mb, work).await?;
            rows.push(Row { seconds: Some(seconds), cold, ..row });
        }
        Ok(rows)
    }

    /// A backup of the generated database at every size, largest first: a size that does not
    /// finish within Lambda's 15 minutes is not tried smaller. Also the key of a backup.
    async fn power_backup(&self, generated: &crate::Generated, label: &str) -> Result<(Table, String), String> {
        let env = [
            ("DATABASE_SECRET_ARN", generated.secret.clone()),
            ("BACKUP_PREFIX", "bench-power/".to_owned()),
            ("DUMP_COMPRESSION", "auto".to_owned()),
            ("PART_SIZE_MIB", "16".to_owned()),
        ];
        let mut rows = Vec::new();
        let mut kept = None;
        for mb in SIZES.into_iter().rev() {
            if rows.last().is_some_and(|r: &Row| r.seconds.is_none()) {
                rows.push(Row { mb, seconds: None, cold: None, cpu_s: 0.0, peak_mb: 0.0, throttled: (0, 0) });
                continue;
            }
            let work = async |process: &mut LambdaProcess| timed(process, &json!({})).await;
            let (answer, row) = self.under_quota("scheduled-backup", &env, mb, work).await?;
            let seconds = answer.as_ref().map(|(_, s)| *s);
            if let Some((summary, _)) = answer {
                let key = summary.get("key").and_then(Value::as_str).ok_or("no key in the summary")?.to_owned();
                match &kept {
                    None => kept = Some(key),
                    Some(_) => self.delete(&key).await?,
                }
            }
            rows.push(Row { seconds, ..row });
        }
        rows.reverse();
        let work = format!(
            "backup of the {label} database ({:.0} MB on disk, PostgreSQL 17, `DUMP_COMPRESSION=auto`: zstd:3)",
            generated.bytes as f64 / 1e6
        );
        let table = Table {
            function: "scheduled-backup",
            work,
            requests: 1,
            db_bytes: Some(generated.bytes as f64),
            today_mb: 512,
            rows,
        };
        Ok((table, kept.ok_or("no backup finished")?))
    }

    /// The restore test of backup `key` at every size, largest first, into PostgreSQL 17's
    /// `postgres` database behind secret `staging`.
    async fn power_restore(
        &self,
        generated: &crate::Generated,
        label: &str,
        key: &str,
        staging: &str,
    ) -> Result<Table, String> {
        let queries = json!([{"name": "accounts exist", "sql": "SELECT EXISTS (SELECT 1 FROM pgbench_accounts)"}]);
        let env = [
            ("BACKUP_PREFIX", "bench-power/".to_owned()),
            ("VALIDATION_QUERIES", queries.to_string()),
            ("RESTORE_JOBS", "2".to_owned()),
            ("STAGING_DATABASE_SECRET_ARN", staging.to_owned()),
            ("DATABASE_SECRET_ARN", generated.secret.clone()),
        ];
        let mut rows = Vec::new();
        for mb in SIZES.into_iter().rev() {
            if rows.last().is_some_and(|r: &Row| r.seconds.is_none()) {
                rows.push(Row { mb, seconds: None, cold: None, cpu_s: 0.0, peak_mb: 0.0, throttled: (0, 0) });
                continue;
            }
            let work = async |process: &mut LambdaProcess| timed(process, &json!({"backup": key})).await;
            let (answer, row) = self.under_quota("restore-verifier", &env, mb, work).await?;
            if let Some((report, _)) = &answer
                && report.get("result").and_then(Value::as_str) != Some("passed")
            {
                return Err(format!("restore verification failed at {mb} MB: {report}"));
            }
            rows.push(Row { seconds: answer.map(|(_, s)| s), ..row });
        }
        rows.reverse();
        let work = format!("restore test of that backup ({label}), `RESTORE_JOBS=2`, into PostgreSQL 17");
        let db_bytes = Some(generated.bytes as f64);
        Ok(Table { function: "restore-verifier", work, requests: 1, db_bytes, today_mb: 1024, rows })
    }
}

/// The answer to `event`, `None` when there was none within [`CAP`].
async fn answer(process: &mut LambdaProcess, event: &Value) -> Result<Option<Value>, String> {
    match process.invoke(event, CAP).await {
        Outcome::Response(value) => Ok(Some(value)),
        Outcome::Crashed(why) if why.contains("gave no answer") => Ok(None),
        other => Err(format!("invocation failed: {other:?}\n{}", process.logs())),
    }
}

/// [`answer`] and the seconds it took.
async fn timed(process: &mut LambdaProcess, event: &Value) -> Result<Option<(Value, f64)>, String> {
    let started = Instant::now();
    Ok(answer(process, event).await?.map(|value| (value, started.elapsed().as_secs_f64())))
}

fn cost(mb: u32, seconds: f64, requests: u32) -> f64 {
    f64::from(requests) * PRICE_PER_REQUEST + seconds * f64::from(mb) / 1024.0 * PRICE_PER_GB_SECOND
}

impl Table {
    /// Measured rows that finished within a memory size that holds their peak.
    fn viable(&self) -> impl Iterator<Item = (&Row, f64)> {
        self.rows.iter().filter(|r| r.peak_mb <= f64::from(r.mb)).filter_map(|r| Some((r, r.seconds?)))
    }

    fn fastest(&self) -> Option<(&Row, f64)> {
        self.viable().min_by(|a, b| a.1.total_cmp(&b.1))
    }

    fn cheapest(&self) -> Option<(&Row, f64)> {
        self.viable().min_by(|a, b| cost(a.0.mb, a.1, self.requests).total_cmp(&cost(b.0.mb, b.1, self.requests)))
    }

    /// The median duration of the sizes of one vCPU or more.
    fn reference(&self) -> Option<f64> {
        let durations: Vec<f64> =
            self.viable().filter(|(r, _)| f64::from(r.mb) >= MB_PER_VCPU).map(|(_, s)| s).collect();
        (!durations.is_empty()).then(|| median(&durations))
    }

    /// The cheapest size within [`WITHIN`] of the reference duration.
    fn chosen(&self) -> Option<(&Row, f64)> {
        let reference = self.reference()?;
        self.viable()
            .filter(|(_, s)| *s <= reference * WITHIN)
            .min_by(|a, b| cost(a.0.mb, a.1, self.requests).total_cmp(&cost(b.0.mb, b.1, self.requests)))
    }

    /// The table; sizes over two vCPUs get the duration of the largest size measured, which
    /// used less than its two cores (CPU time below twice the duration), labelled extrapolated.
    fn print(&self) {
        println!("### {}: {}\n", self.function, self.work);
        let heavy = self.db_bytes.is_some();
        let extra = if heavy { " database bytes/s | largest database in 14 min |" } else { " cold start |" };
        println!("| MemorySize | vCPU | duration | CPU time | throttled periods | peak RSS | cost per run |{extra}");
        println!("|---|---|---|---|---|---|---|---|{}", if heavy { "---|" } else { "" });
        for row in &self.rows {
            self.print_row(row, "");
        }
        if let Some(last) = self.rows.last().filter(|r| r.seconds.is_some()) {
            for mb in EXTRAPOLATED {
                let row = Row { mb, cpu_s: 0.0, peak_mb: 0.0, throttled: (0, 0), cold: None, ..*last };
                self.print_row(&row, " (extrapolated)");
            }
        }
        println!();
    }

    fn print_row(&self, row: &Row, label: &str) {
        let vcpu = f64::from(row.mb) / MB_PER_VCPU;
        let measured = label.is_empty();
        let Some(seconds) = row.seconds else {
            let why =
                if row.cpu_s > 0.0 { "does not finish in 15 min" } else { "not run: a larger size did not finish" };
            println!(
                "| {} | {vcpu:.2} | {why} | | | | |{}",
                row.mb,
                if self.db_bytes.is_some() { " | |" } else { " |" }
            );
            return;
        };
        let fits = if row.peak_mb > f64::from(row.mb) { " (over the size: not viable)" } else { "" };
        let shown = |v: f64, unit: &str| if measured { format!("{v:.1} {unit}") } else { String::new() };
        let throttled = if measured { format!("{} of {}", row.throttled.0, row.throttled.1) } else { String::new() };
        let tail = match self.db_bytes {
            Some(bytes) => {
                let rate = bytes / seconds;
                format!(" {:.1} MB/s | {:.1} GB |", rate / 1e6, rate * BUDGET_S / 1e9)
            }
            None => format!(" {} |", row.cold.map(|c| format!("{:.0} ms", c * 1000.0)).unwrap_or_default()),
        };
        println!(
            "| {}{label} | {vcpu:.2} | {} | {} | {throttled} | {}{fits} | ${:.8} |{tail}",
            row.mb,
            if seconds < 1.0 { format!("{:.1} ms", seconds * 1000.0) } else { format!("{seconds:.2} s") },
            shown(row.cpu_s, "s"),
            shown(row.peak_mb, "MB"),
            cost(row.mb, seconds, self.requests),
        );
    }
}

/// Fastest, cheapest and chosen size per function.
fn summary(tables: &[Table]) {
    println!(
        "### The sizes (viable: the peak RSS fits; chosen: the cheapest size whose duration is within {WITHIN:.2}x \
         of the reference, the median at one vCPU or more)\n"
    );
    println!("| function | today | fastest | cheapest | reference | chosen by the rule |\n|---|---|---|---|---|---|");
    for table in tables {
        let cell = |pick: Option<(&Row, f64)>| match pick {
            Some((row, s)) => format!("{} MB: {s:.3} s, ${:.8}", row.mb, cost(row.mb, s, table.requests)),
            None => "none".to_owned(),
        };
        println!(
            "| {} | {} MB | {} | {} | {:.3} s | {} |",
            table.function,
            table.today_mb,
            cell(table.fastest()),
            cell(table.cheapest()),
            table.reference().unwrap_or(0.0),
            cell(table.chosen())
        );
    }
    println!();
}
