//! CPU quotas for `--power`: the cgroup v1 `cpu` controller (a share of each 100 ms period, as
//! Lambda gives a function CPU in proportion to its memory) and `cpuacct` (the CPU time a
//! function and its children used). Each group is removed when dropped, also on error.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const CPU: &str = "/sys/fs/cgroup/cpu";
const CPUACCT: &str = "/sys/fs/cgroup/cpuacct";
const PERIOD_US: u64 = 100_000;
/// Lambda: 1,769 MB is the equivalent of one vCPU.
pub const MB_PER_VCPU: f64 = 1769.0;
/// Against the other work on the machine: 8 times the default weight of 1024.
const SHARES: u64 = 8192;

/// One group in the `cpu` hierarchy and one of the same name in `cpuacct`.
pub struct Group {
    cpu: PathBuf,
    acct: PathBuf,
}

impl Group {
    /// A group with a high weight and, for `memory_mb`, the quota Lambda's CPU share for that
    /// much memory comes to (`None`: no quota).
    pub fn new(name: &str, memory_mb: Option<u32>) -> Result<Group, String> {
        let group = Group { cpu: Path::new(CPU).join(name), acct: Path::new(CPUACCT).join(name) };
        for dir in [&group.cpu, &group.acct] {
            std::fs::create_dir(dir).map_err(|e| format!("cannot create the cgroup {}: {e}", dir.display()))?;
        }
        group.write("cpu.shares", &SHARES.to_string())?;
        if let Some(mb) = memory_mb {
            group.write("cpu.cfs_period_us", &PERIOD_US.to_string())?;
            let quota = (PERIOD_US as f64 * f64::from(mb) / MB_PER_VCPU).round() as u64;
            group.write("cpu.cfs_quota_us", &quota.max(1000).to_string())?;
        }
        Ok(group)
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        let path = self.cpu.join(file);
        std::fs::write(&path, value).map_err(|e| format!("cannot write {value} to {}: {e}", path.display()))
    }

    /// Moves process `pid` (all its threads) into the group.
    pub fn add(&self, pid: u32) -> Result<(), String> {
        for dir in [&self.cpu, &self.acct] {
            let procs = dir.join("cgroup.procs");
            std::fs::write(&procs, pid.to_string())
                .map_err(|e| format!("cannot move {pid} to {}: {e}", dir.display()))?;
        }
        Ok(())
    }

    /// The files a process writes its own pid to, to enter the group before it starts its work.
    pub fn procs_files(&self) -> [PathBuf; 2] {
        [self.cpu.join("cgroup.procs"), self.acct.join("cgroup.procs")]
    }

    /// CPU time the group's processes used, theirs and their children's, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let usage = std::fs::read_to_string(self.acct.join("cpuacct.usage")).unwrap_or_default();
        usage.trim().parse::<f64>().unwrap_or(0.0) / 1e9
    }

    /// Periods in which the quota stopped the group, of all periods it ran in.
    pub fn throttled(&self) -> (u64, u64) {
        let stat = std::fs::read_to_string(self.cpu.join("cpu.stat")).unwrap_or_default();
        let field =
            |name: &str| stat.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok()).unwrap_or(0);
        (field("nr_throttled "), field("nr_periods "))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for (dir, root) in [(&self.cpu, CPU), (&self.acct, CPUACCT)] {
            // Whatever is still inside (a process not yet reaped) goes back to the root group.
            for _ in 0..50 {
                let pids = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in pids.lines() {
                    let _ = std::fs::write(Path::new(root).join("cgroup.procs"), pid.trim());
                }
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Every process descended from `pid`, from `/proc`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The fields after the command (in parentheses, which may hold spaces): state, ppid.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
        if let Some(ppid) = ppid {
            parents.push((child, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, p)| *p == parent).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

/// The peak of the summed resident memory of a group's processes, sampled every 50 ms while
/// the sampler lives: what Lambda counts against the memory size, the children's included.
pub struct RssSampler {
    peak_kib: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(group: &Group) -> RssSampler {
        let procs = group.cpu.join("cgroup.procs");
        let peak_kib = Arc::new(AtomicU64::new(0));
        let peak = Arc::clone(&peak_kib);
        let task = tokio::spawn(async move {
            loop {
                let pids = std::fs::read_to_string(&procs).unwrap_or_default();
                let total: u64 = pids.lines().filter_map(|pid| rss_kib(pid.trim())).sum();
                peak.fetch_max(total, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        RssSampler { peak_kib, task }
    }

    /// The peak so far, in MB.
    pub fn peak_mb(&self) -> f64 {
        self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}
