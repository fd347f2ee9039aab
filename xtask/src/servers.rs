//! The servers integration tests run against, on 127.0.0.1: s3s-fs (S3, SigV4 verified), Azurite
//! (Azure Blob) and, through [`start_all`], PostgreSQL (`postgres.rs`), pinned, installed when missing, started on free ports, stopped (with their process groups)
//! when done — also when the tests fail, on Ctrl-C and on SIGTERM.
//!
//! The tests find them through `ARCHIVECTL_TEST_S3_*`, `ARCHIVECTL_TEST_AZURE_*` and
//! `ARCHIVECTL_TEST_POSTGRES_URL` (see [`Servers::env`]).

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use secrecy::SecretString;

use crate::tools;

/// s3s-fs 0.17 needs a newer rustc than the project's; 0.14.1 is the newest that builds on it.
pub const S3S_FS_VERSION: &str = "0.14.1";
pub const AZURITE_VERSION: &str = "3.35.0";

const S3_ACCESS_KEY: &str = "archivectl-test-access-key";
const S3_SECRET_KEY: &str = "archivectl-test-secret-key-0123456789";
const S3_BUCKET: &str = "archivectl-test";
/// Azurite's one account and its well-known key (public, documented by Microsoft for the emulator).
const AZURE_ACCOUNT: &str = "devstoreaccount1";
const AZURE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const AZURE_CONTAINER: &str = "archivectl-test";

/// How long a server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The running servers (each its process group's leader) and their data directories, reachable from the
/// signal handler too, which must reap them as `Drop` does.
static RUNNING: Mutex<Vec<Running>> = Mutex::new(Vec::new());
static HANDLER: Once = Once::new();

/// Running servers; dropping this stops them and removes their data.
#[derive(Debug)]
pub struct Servers {
    procs: Vec<Proc>,
    env: Vec<(&'static str, String)>,
    dir: PathBuf,
}

#[derive(Debug)]
struct Proc {
    name: &'static str,
    pid: u32,
    log: PathBuf,
}

#[derive(Debug)]
struct Running {
    child: Child,
    dir: PathBuf,
    /// The signal that asks it to stop (`-TERM`; PostgreSQL's fast shutdown is `-INT`).
    stop_signal: &'static str,
}

fn running() -> std::sync::MutexGuard<'static, Vec<Running>> {
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// [`start`], and a PostgreSQL beside them ([`crate::postgres`]): what `ci`, `stress` and `servers` run.
pub fn start_all() -> anyhow::Result<Servers> {
    let mut servers = start()?;
    crate::postgres::attach(&mut servers).context("cannot start the test PostgreSQL")?;
    Ok(servers)
}

/// Installs what is missing and starts both servers.
pub fn start() -> anyhow::Result<Servers> {
    install_signal_handler();
    let root = tools::workspace_root();
    let s3s = ensure_s3s_fs()?;
    let azurite = ensure_azurite(&root)?;

    let mut servers = Servers::none()?;
    let dir = servers.dir.clone();

    // s3s-fs serves DIR's subdirectories as buckets.
    let s3_root = dir.join("s3");
    std::fs::create_dir_all(s3_root.join(S3_BUCKET))
        .with_context(|| format!("cannot create {}", s3_root.display()))?;
    let s3_port = free_port()?;
    let mut cmd = Command::new(&s3s);
    cmd.args(["--host", "127.0.0.1", "--port", &s3_port.to_string()])
        .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
        .arg(&s3_root);
    servers.spawn("s3s-fs", cmd)?;

    let az_root = dir.join("azurite");
    std::fs::create_dir_all(&az_root)
        .with_context(|| format!("cannot create {}", az_root.display()))?;
    let az_port = free_port()?;
    let mut cmd = Command::new(&azurite);
    cmd.args([
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        &az_port.to_string(),
        "--location",
    ])
    .arg(&az_root)
    .args(["--silent", "--disableTelemetry", "--skipApiVersionCheck"]);
    servers.spawn("azurite-blob", cmd)?;

    servers.wait_for("s3s-fs", s3_port)?;
    servers.wait_for("azurite-blob", az_port)?;

    let s3_endpoint = format!("http://127.0.0.1:{s3_port}");
    let az_endpoint = format!("http://127.0.0.1:{az_port}/{AZURE_ACCOUNT}");
    prepare_containers(&s3_endpoint, &az_endpoint)?;

    use storage_fetch::test_env as var;
    servers.env = vec![
        (var::S3_ENDPOINT, s3_endpoint),
        (var::S3_ACCESS_KEY, S3_ACCESS_KEY.into()),
        (var::S3_SECRET_KEY, S3_SECRET_KEY.into()),
        (var::S3_BUCKET, S3_BUCKET.into()),
        (var::AZURE_ENDPOINT, az_endpoint),
        (var::AZURE_ACCOUNT, AZURE_ACCOUNT.into()),
        (var::AZURE_KEY, AZURE_KEY.into()),
        (var::AZURE_CONTAINER, AZURE_CONTAINER.into()),
    ];
    Ok(servers)
}

impl Servers {
    /// No server yet: their directory (logs, data) made empty.
    pub(crate) fn none() -> anyhow::Result<Self> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        install_signal_handler();
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = tools::workspace_root()
            .join(".xtask")
            .join("servers")
            .join(format!("run-{}-{n}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        Ok(Self {
            procs: Vec::new(),
            env: Vec::new(),
            dir,
        })
    }

    /// The process id of the server started as `name` (`"s3s-fs"`, `"azurite-blob"`), if it was.
    pub(crate) fn pid(&self, name: &str) -> Option<u32> {
        self.procs.iter().find(|p| p.name == name).map(|p| p.pid)
    }

    /// Where the servers' logs (and data) are.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The variables the tests read.
    pub fn env(&self) -> &[(&'static str, String)] {
        &self.env
    }

    /// A command with the servers' variables set (and `ARCHIVECTL_SKIP_SERVER_TESTS` removed), for a caller
    /// that runs it itself.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env_remove(storage_fetch::test_env::SKIP);
        cmd
    }

    /// Fails if a server has exited (it would make test failures confusing).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        let mut running = running();
        for p in &self.procs {
            let Some(r) = running.iter_mut().find(|r| r.child.id() == p.pid) else {
                bail!("{} was stopped", p.name);
            };
            if let Some(status) = r.child.try_wait().context("cannot poll a server")? {
                bail!(
                    "{} exited ({status}); its log:\n{}",
                    p.name,
                    log_tail(&p.log)
                );
            }
        }
        Ok(())
    }

    /// Adds a variable the tests read.
    pub(crate) fn add_env(&mut self, name: &'static str, value: String) {
        self.env.push((name, value));
    }

    fn spawn(&mut self, name: &'static str, cmd: Command) -> anyhow::Result<()> {
        let dir = self.dir.clone();
        self.spawn_in(name, cmd, dir, "-TERM")
    }

    /// Starts a server in its own process group, its log in the servers' directory; `dir` (its data) is
    /// removed after `stop_signal` (then SIGKILL) has stopped it.
    pub(crate) fn spawn_in(
        &mut self,
        name: &'static str,
        mut cmd: Command,
        dir: PathBuf,
        stop_signal: &'static str,
    ) -> anyhow::Result<()> {
        use std::os::unix::process::CommandExt;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let log = self.dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone().context("cannot duplicate the log handle")?;
        // Its own process group, so that stopping it reaches whatever it starts (Azurite runs under node).
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", cmd.get_program()))?;
        self.procs.push(Proc {
            name,
            pid: child.id(),
            log,
        });
        running().push(Running {
            child,
            dir,
            stop_signal,
        });
        Ok(())
    }

    pub(crate) fn wait_for(&mut self, name: &str, port: u16) -> anyhow::Result<()> {
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into();
        let started = Instant::now();
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                eprintln!(
                    "xtask: {name} accepts connections on 127.0.0.1:{port} ({} ms)",
                    started.elapsed().as_millis()
                );
                return Ok(());
            }
            self.check_alive()?;
            if started.elapsed() > START_TIMEOUT {
                let log = self
                    .procs
                    .iter()
                    .find(|p| p.name == name)
                    .map(|p| log_tail(&p.log))
                    .unwrap_or_default();
                bail!(
                    "{name} did not accept connections on 127.0.0.1:{port} within {} s; its log:\n{log}",
                    START_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop_all(&mut self) {
        let ours: Vec<Running> = {
            let mut running = running();
            let (ours, others) = running
                .drain(..)
                .partition(|r| self.procs.iter().any(|p| p.pid == r.child.id()));
            *running = others;
            ours
        };
        for r in ours {
            stop(r);
        }
        self.procs.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Its stop signal (SIGTERM) to the server's process group, SIGKILL after 5 s if anything in it is still there; reaps the
/// server and removes its data.
fn stop(mut r: Running) {
    let group = format!("-{}", r.child.id());
    let signal = |sig: &str| {
        let _ = Command::new("kill")
            .args([sig, "--", &group])
            .stderr(Stdio::null())
            .status();
    };
    signal(r.stop_signal);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // Reap the leader (else it stays a zombie and the group looks alive), then see if the group is empty:
        // `kill -0` fails once no process of it is left.
        let reaped = r.child.try_wait().map(|s| s.is_some()).unwrap_or(true);
        let group_alive = Command::new("kill")
            .args(["-0", "--", &group])
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if reaped && !group_alive {
            break;
        }
        if Instant::now() > deadline {
            signal("-KILL");
            let _ = r.child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&r.dir);
}

/// On Ctrl-C or SIGTERM: stop every server group, remove their data, exit 130.
fn install_signal_handler() {
    HANDLER.call_once(|| {
        let result = ctrlc::set_handler(|| {
            // The lock is held until exit, so the main thread cannot race ahead and report them gone.
            let mut guard = running();
            for r in guard.drain(..) {
                stop(r);
            }
            eprintln!("xtask: interrupted; test servers stopped");
            std::process::exit(130);
        });
        if let Err(e) = result {
            eprintln!(
                "xtask: warning: cannot handle Ctrl-C ({e}); servers may outlive an interrupted run"
            );
        }
    });
}

/// Asks the OS for a free port on loopback.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr().context("no local address")?.port())
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    if tail.is_empty() {
        "(empty)".into()
    } else {
        tail
    }
}

/// `s3s-fs` at the pinned version: on PATH or in cargo's bin directory, else `cargo install`ed.
fn ensure_s3s_fs() -> anyhow::Result<PathBuf> {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|p| p.join("bin"));
    let candidates = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("s3s-fs"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .chain(cargo_bin.iter().map(|b| b.join("s3s-fs")));
    let wanted = format!("s3s-fs {S3S_FS_VERSION}");
    for path in candidates {
        if path.is_file() {
            let version = Command::new(&path).arg("--version").output();
            if version.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == wanted) {
                return Ok(path);
            }
        }
    }
    eprintln!("xtask: installing s3s-fs {S3S_FS_VERSION} (a few minutes, once)");
    let root = tools::workspace_root();
    tools::run_in(
        &root,
        "cargo",
        &[
            "install",
            "s3s-fs",
            "--version",
            S3S_FS_VERSION,
            "--features",
            "binary",
            "--locked",
            "--force",
        ],
    )
    .context("cannot install s3s-fs")?;
    let installed = cargo_bin.map(|b| b.join("s3s-fs")).filter(|p| p.is_file());
    installed.context("s3s-fs was installed but is not in cargo's bin directory ($CARGO_HOME/bin)")
}

/// `azurite-blob` at the pinned version, installed with npm into `.xtask/node` (gitignored) when missing.
fn ensure_azurite(root: &Path) -> anyhow::Result<PathBuf> {
    let prefix = root.join(".xtask").join("node");
    let bin = prefix
        .join("node_modules")
        .join(".bin")
        .join("azurite-blob");
    let manifest = prefix
        .join("node_modules")
        .join("azurite")
        .join("package.json");
    let installed_version = std::fs::read_to_string(&manifest).unwrap_or_default();
    if bin.is_file() && installed_version.contains(&format!("\"version\": \"{AZURITE_VERSION}\"")) {
        return Ok(bin);
    }
    if !tools::have("npm") || !tools::have("node") {
        bail!(
            "Azurite needs node and npm: install them (Debian: `apt-get install nodejs npm`) and run again"
        );
    }
    std::fs::create_dir_all(&prefix)
        .with_context(|| format!("cannot create {}", prefix.display()))?;
    let package = prefix.join("package.json");
    if !package.exists() {
        std::fs::write(
            &package,
            "{\"name\":\"archivectl-xtask-node\",\"private\":true}\n",
        )
        .with_context(|| format!("cannot write {}", package.display()))?;
    }
    eprintln!(
        "xtask: installing azurite {AZURITE_VERSION} into {}",
        prefix.display()
    );
    let spec = format!("azurite@{AZURITE_VERSION}");
    tools::run_in(
        &prefix,
        "npm",
        &[
            "install",
            "--no-audit",
            "--no-fund",
            "--save-exact",
            "--loglevel=error",
            &spec,
        ],
    )
    .context("cannot install Azurite with npm")?;
    if !bin.is_file() {
        bail!("npm installed azurite but {} is missing", bin.display());
    }
    Ok(bin)
}

/// Creates the Azurite container and checks that both answer a listing, through storage-fetch.
fn prepare_containers(s3_endpoint: &str, az_endpoint: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")?;
    runtime.block_on(async {
        let s3 = storage_fetch::S3Target::new(
            S3_BUCKET,
            S3_ACCESS_KEY,
            SecretString::from(S3_SECRET_KEY),
        )
        .with_endpoint(s3_endpoint);
        let azure = storage_fetch::AzureTarget::new(
            AZURE_ACCOUNT,
            SecretString::from(AZURE_KEY),
            AZURE_CONTAINER,
        )
        .with_endpoint(az_endpoint);
        for target in [
            storage_fetch::Target::from(s3),
            storage_fetch::Target::from(azure),
        ] {
            let name = format!(
                "{} {} {}",
                target.service_name(),
                target.container_kind(),
                target.container_name()
            );
            let store =
                storage_fetch::Store::new(target).with_context(|| format!("{name}: bad target"))?;
            // s3s-fs serves the directory made above (and answers CreateBucket on it with BucketAlreadyExists,
            // as S3 does for someone else's bucket): only Azurite needs the container created.
            if matches!(store.target(), storage_fetch::Target::Azure(_)) {
                use backon::Retryable as _;
                // Azurite may accept connections a moment before it serves requests: up to 20 tries,
                // 0.1 s, 0.2 s, ... 1.9 s apart, while the failure is transient.
                (|| store.create_container())
                    .retry((1..20u64).map(|n| Duration::from_millis(100 * n)))
                    .when(storage_fetch::Error::is_transient)
                    .await
                    .with_context(|| format!("cannot create the {name}"))?;
            }
            let listed = store.list("").await;
            listed.with_context(|| format!("the {name} does not answer a listing"))?;
        }
        Ok(())
    })
}

/// `cargo xtask servers`: start them all, print the exports, wait for Ctrl-C.
pub fn serve() -> anyhow::Result<()> {
    let mut servers = start_all()?;
    println!(
        "# S3 (s3s-fs {S3S_FS_VERSION}), Azure (Azurite {AZURITE_VERSION}) and PostgreSQL test servers are running:"
    );
    for (k, v) in servers.env() {
        println!("export {k}='{v}'");
    }
    println!("# Ctrl-C stops them and removes their data.");
    loop {
        std::thread::sleep(Duration::from_secs(1));
        servers.check_alive()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `start` brings both servers up on 127.0.0.1 with their buckets ready (a real SigV4-checked request to
    /// S3 lists the bucket), and dropping `Servers` stops each server's whole process group and removes its data,
    /// as CI relies on after every run, failed or not.
    #[test]
    fn servers_start_answer_and_stop_with_their_data() {
        let servers =
            start().expect("the test servers start (s3s-fs and Azurite are installed if missing)");
        let var = |name: &str| {
            servers
                .env()
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .expect(name)
        };
        let s3 = var(storage_fetch::test_env::S3_ENDPOINT);
        let azure = var(storage_fetch::test_env::AZURE_ENDPOINT);
        let addr = |url: &str| {
            url.trim_start_matches("http://")
                .split('/')
                .next()
                .expect("host:port")
                .to_string()
        };
        let (s3_addr, azure_addr) = (addr(&s3), addr(&azure));
        for a in [&s3_addr, &azure_addr] {
            assert!(a.starts_with("127.0.0.1:"), "{a} is loopback");
            TcpStream::connect(a).unwrap_or_else(|e| panic!("{a} answers: {e}"));
        }
        let groups: Vec<u32> = servers.procs.iter().map(|p| p.pid).collect();
        assert_eq!(groups.len(), 2, "two servers");
        let dir = servers.dir.clone();
        assert!(dir.join("s3").join(S3_BUCKET).is_dir(), "the bucket exists");
        drop(servers);
        for a in [&s3_addr, &azure_addr] {
            assert!(TcpStream::connect(a).is_err(), "{a} no longer answers");
        }
        for pid in groups {
            let alive = Command::new("kill")
                .args(["-0", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(!alive, "process group {pid} is gone");
        }
        assert!(!dir.exists(), "{} is removed", dir.display());
    }
}
