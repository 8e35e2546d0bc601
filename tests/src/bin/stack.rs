//! `cargo xtask stack up|down`: the local stack in the background, to poke at by hand.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use ops_testkit::Stack;

fn state_file() -> PathBuf {
    std::env::temp_dir().join("cineview-ops-stack.env")
}

fn main() -> ExitCode {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let result = match arg.as_str() {
        "up" => up(),
        "down" => down(),
        "serve" => serve(),
        _ => Err("usage: stack up|down".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("stack: {err}");
            ExitCode::FAILURE
        }
    }
}

fn up() -> Result<(), String> {
    if state_file().exists() {
        return Err(format!("a stack is already up ({}); run `cargo xtask stack down` first", state_file().display()));
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let log = std::env::temp_dir().join("cineview-ops-stack.log");
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let mut command = Command::new(me);
    command.arg("serve").stdin(Stdio::null()).stdout(log_file.try_clone().map_err(|e| e.to_string())?).stderr(log_file);
    // SAFETY: setsid in the child before exec detaches it from our terminal and session.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    command.spawn().map_err(|e| format!("cannot start the stack: {e}"))?;
    let start = Instant::now();
    while !state_file().exists() {
        if start.elapsed() > Duration::from_secs(120) {
            return Err(format!("the stack did not come up; see {}", log.display()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let env = std::fs::read_to_string(state_file()).map_err(|e| e.to_string())?;
    println!("The local stack is up. Paste these into a shell to use it:\n");
    for line in env.lines().filter(|l| l.starts_with("export")) {
        println!("{line}");
    }
    println!("\nStop it with: cargo xtask stack down");
    Ok(())
}

fn serve() -> Result<(), String> {
    let stack = Stack::start()?;
    let mut lines = vec![format!("# pid {}", std::process::id())];
    lines.push(format!("# moto_server {}", stack.moto.endpoint()));
    lines.push(format!("# postgres 127.0.0.1:{} (PostgreSQL {})", stack.pg.port, stack.pg.major));
    let superuser = stack.pg.superuser(ops_testkit::stack::APP_DATABASE);
    lines.push(format!(
        "export DATABASE_URL='postgres://{}:{}@127.0.0.1:{}/{}'",
        superuser.username,
        superuser.password.expose(),
        superuser.port,
        superuser.dbname
    ));
    for (key, value) in stack.env() {
        lines.push(format!("export {key}='{value}'"));
    }
    let tmp = state_file().with_extension("tmp");
    std::fs::write(&tmp, lines.join("\n") + "\n").map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, state_file()).map_err(|e| e.to_string())?;
    // SAFETY: block SIGTERM and SIGINT in this thread, then wait for one of them.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let mut signal = 0;
        libc::sigwait(&set, &mut signal);
    }
    drop(stack);
    let _ = std::fs::remove_file(state_file());
    Ok(())
}

fn down() -> Result<(), String> {
    let state = std::fs::read_to_string(state_file()).map_err(|_| "no stack is up".to_owned())?;
    let pid: i32 = state
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# pid "))
        .and_then(|p| p.trim().parse().ok())
        .ok_or("the state file names no pid")?;
    // SAFETY: kill(2) with a pid we wrote ourselves.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        let _ = std::fs::remove_file(state_file());
        return Err(format!("process {pid} is gone; removed the stale state file"));
    }
    let start = Instant::now();
    while state_file().exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("The local stack is down.");
    Ok(())
}
