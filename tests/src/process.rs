//! Child processes of the local stack: they die with the process that started them (parent
//! death signal), and what a shared fixture never drops is cleaned up at process exit.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (the OS picks it; the listener is closed at once).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something accepts TCP connections on `port`, or `child` exits, or time runs out.
pub fn wait_for_port(port: u16, child: &mut Child, name: &str, limit: Duration) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{name} exited during start-up ({status})"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{name} did not listen on 127.0.0.1:{port} within {limit:?}"))
}

type SpawnRequest = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);

/// The parent-death signal fires when the *thread* that forked the child exits, not the
/// process. All tied children are therefore forked by this one thread, which lives as long as
/// the process, whichever (test, blocking-pool, runtime) thread asks.
fn spawner() -> &'static Mutex<std::sync::mpsc::Sender<SpawnRequest>> {
    static SPAWNER: std::sync::OnceLock<Mutex<std::sync::mpsc::Sender<SpawnRequest>>> = std::sync::OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
        let spawned = std::thread::Builder::new().name("process-spawner".into()).spawn(move || {
            for (mut command, reply) in rx {
                let _ = reply.send(command.spawn());
            }
        });
        if let Err(err) = spawned {
            eprintln!("cannot start the process spawner thread: {err}");
        }
        Mutex::new(tx)
    })
}

/// Spawns `command` so that the kernel kills it if this process dies (even by SIGKILL).
pub fn spawn_tied(mut command: Command, log: Option<PathBuf>) -> std::io::Result<Child> {
    match log {
        Some(path) => {
            let file = std::fs::File::create(path)?;
            command.stdout(file.try_clone()?).stderr(file);
        }
        None => {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    command.stdin(Stdio::null());
    // SAFETY: prctl is async-signal-safe; it runs in the child after any uid change and
    // before exec, so the parent-death signal survives into the server.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (reply, answer) = std::sync::mpsc::channel();
    let sent = spawner().lock().map_err(|_| std::io::Error::other("spawner lock poisoned"))?.send((command, reply));
    sent.map_err(|_| std::io::Error::other("the process spawner thread is gone"))?;
    answer.recv().map_err(|_| std::io::Error::other("the process spawner thread is gone"))?
}

/// Stops a child: `signal` first, SIGKILL after `grace`.
pub fn stop_child(child: &mut Child, signal: i32, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: plain kill(2) on a pid we own and have not reaped.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let start = Instant::now();
    while start.elapsed() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

type Cleanup = Box<dyn FnOnce() + Send>;

static AT_EXIT: Mutex<Vec<Cleanup>> = Mutex::new(Vec::new());
static REGISTER: Once = Once::new();

extern "C" fn run_at_exit() {
    let tasks = match AT_EXIT.lock() {
        Ok(mut guard) => std::mem::take(&mut *guard),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    for task in tasks.into_iter().rev() {
        task();
    }
}

/// Runs `task` when the process exits normally (the test harness exits after the last test,
/// also when some failed), for fixtures held in statics that are never dropped.
pub fn at_exit(task: impl FnOnce() + Send + 'static) {
    REGISTER.call_once(|| {
        // SAFETY: registering a plain extern "C" function with no captured state.
        unsafe {
            libc::atexit(run_at_exit);
        }
    });
    if let Ok(mut tasks) = AT_EXIT.lock() {
        tasks.push(Box::new(task));
    }
}
