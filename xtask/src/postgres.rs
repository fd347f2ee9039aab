//! A real PostgreSQL for the tests (issue 14): Debian's `postgresql` package (installed with apt when missing),
//! a cluster `initdb`ed into a temporary directory as an unprivileged system user (`archivectl-pg`, created when
//! missing, when xtask runs as root; the current user otherwise), scram-sha-256 password authentication on host
//! connections, listening on a free port of 127.0.0.1 only, stopped and removed with the other test servers.
//!
//! The tests find it through [`URL_VAR`]: the URL of a superuser (`archivectl`) with a password generated for
//! the run, so that a test may `CREATE DATABASE` a fresh database of its own.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use secrecy::{ExposeSecret as _, SecretString};

use crate::servers::Servers;
use crate::tools;

/// The variable the tests read: `postgres://archivectl:PASSWORD@127.0.0.1:PORT/postgres`.
pub const URL_VAR: &str = "ARCHIVECTL_TEST_POSTGRES_URL";
/// The system user the server runs as when xtask is root (PostgreSQL refuses to run as root).
pub const OS_USER: &str = "archivectl-pg";
/// The database superuser the tests connect as.
const SUPERUSER: &str = "archivectl";
/// Where Debian installs each major version's server binaries (`/usr/lib/postgresql/15/bin`).
const DEBIAN_LIB: &str = "/usr/lib/postgresql";
/// How long the server may take to accept queries.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Installs PostgreSQL when missing, starts a fresh cluster on a free loopback port as a process of `servers`
/// (stopped, its data removed, when `servers` drops or on Ctrl-C), waits until it accepts a password login,
/// and adds [`URL_VAR`] to the servers' environment.
pub fn attach(servers: &mut Servers) -> anyhow::Result<()> {
    let bin = ensure_installed()?;
    let as_root = tools::is_root();
    if as_root {
        ensure_os_user()?;
    }
    // In the temporary directory (which the server's user can reach, unlike a root-owned workspace), named
    // after the servers' run.
    let run = servers
        .dir()
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("run");
    let base = std::env::temp_dir().join(format!("archivectl-pg-{run}"));
    if base.exists() {
        std::fs::remove_dir_all(&base)
            .with_context(|| format!("cannot clear {}", base.display()))?;
    }
    let data = base.join("data");
    let sockets = base.join("sock");
    std::fs::create_dir_all(&sockets)
        .with_context(|| format!("cannot create {}", sockets.display()))?;
    let password = generate_password()?;
    // initdb reads the superuser's password from a file (never argv); removed once the cluster exists.
    let pwfile = base.join("pwfile");
    write_private(&pwfile, password.expose_secret())?;
    set_mode(&base, 0o700)?;
    if as_root {
        tools::run_quiet(
            Command::new("chown")
                .args(["-R", &format!("{OS_USER}:")])
                .arg(&base),
        )
        .with_context(|| format!("cannot give {} to {OS_USER}", base.display()))?;
    }

    let mut initdb = as_server_user(as_root, &bin.join("initdb"));
    initdb
        .arg("--pgdata")
        .arg(&data)
        .args(["--username", SUPERUSER])
        .arg(format!("--pwfile={}", pwfile.display()))
        .args([
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ]);
    let out = initdb
        .stdin(Stdio::null())
        .output()
        .context("cannot run initdb")?;
    std::fs::remove_file(&pwfile).with_context(|| format!("cannot remove {}", pwfile.display()))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&base);
        bail!(
            "initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let port = crate::servers::free_port()?;
    let mut postgres = as_server_user(as_root, &bin.join("postgres"));
    postgres
        .arg("-D")
        .arg(&data)
        .args(server_settings(port, &sockets));
    // SIGINT: PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave).
    servers.spawn_in("postgres", postgres, base.clone(), "-INT")?;
    servers.wait_for("postgres", port)?;
    let url = superuser_url(&password, port);
    wait_ready(servers, &bin, port, &password)?;
    servers.add_env(URL_VAR, url);
    Ok(())
}

/// The parts of a test server's superuser URL (`postgres://USER:PASSWORD@HOST:PORT/DB`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AdminUrl {
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl AdminUrl {
    /// Reads [`URL_VAR`]'s form (no percent-encoding: the generated password is hex).
    pub(crate) fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .context("not a postgres:// URL")?;
        let (userinfo, rest) = rest.split_once('@').context("no user:password@")?;
        let (user, password) = userinfo.split_once(':').context("no password")?;
        let host_port = rest.split(['/', '?']).next().unwrap_or_default();
        let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "5432"));
        Ok(Self {
            user: user.into(),
            password: password.into(),
            host: host.into(),
            port: port.parse().context("a bad port")?,
        })
    }

    /// The URL of database `db` without the password (what a program is given; the password goes apart).
    pub(crate) fn database_url(&self, db: &str) -> String {
        format!(
            "postgres://{}@{}:{}/{db}?sslmode=disable",
            self.user, self.host, self.port
        )
    }

    /// Runs one SQL statement as the superuser with `psql` (the password through PGPASSWORD).
    pub(crate) fn psql(&self, sql: &str) -> anyhow::Result<String> {
        let bin = ensure_installed()?;
        let out = Command::new(bin.join("psql"))
            .args([
                "-h",
                &self.host,
                "-p",
                &self.port.to_string(),
                "-U",
                &self.user,
            ])
            .args(["-d", "postgres", "-X", "-v", "ON_ERROR_STOP=1", "-tAc", sql])
            .env("PGPASSWORD", &self.password)
            .env_remove("PGPASSFILE")
            .stdin(Stdio::null())
            .output()
            .context("cannot run psql")?;
        if !out.status.success() {
            bail!(
                "psql `{sql}` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// The server's settings on its command line: loopback only, its port, its sockets in its own directory, and
/// room for the multi-process tests' connections.
fn server_settings(port: u16, sockets: &Path) -> Vec<String> {
    vec![
        "-c".into(),
        "listen_addresses=127.0.0.1".into(),
        "-c".into(),
        format!("port={port}"),
        "-c".into(),
        format!("unix_socket_directories={}", sockets.display()),
        "-c".into(),
        "unix_socket_permissions=0700".into(),
        "-c".into(),
        "password_encryption=scram-sha-256".into(),
        "-c".into(),
        "max_connections=300".into(),
    ]
}

/// `postgres://archivectl:PASSWORD@127.0.0.1:PORT/postgres`. The password is hex ([`generate_password`]), so it
/// needs no percent-encoding.
fn superuser_url(password: &SecretString, port: u16) -> String {
    format!(
        "postgres://{SUPERUSER}:{}@127.0.0.1:{port}/postgres",
        password.expose_secret()
    )
}

/// A command run as the server's user: through `runuser` when root, directly otherwise.
fn as_server_user(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", OS_USER, "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Polls until `pg_isready` says the server accepts connections and a scram password login runs a query.
fn wait_ready(
    servers: &mut Servers,
    bin: &Path,
    port: u16,
    password: &SecretString,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let port = port.to_string();
    let mut last = String::new();
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            // The password goes through the environment (psql reads PGPASSWORD), never argv.
            let out = Command::new(bin.join("psql"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    SUPERUSER,
                    "-d",
                    "postgres",
                ])
                .args(["-X", "-tAc", "SELECT 1"])
                .env("PGPASSWORD", password.expose_secret())
                .env_remove("PGPASSFILE")
                .stdin(Stdio::null())
                .output()
                .context("cannot run psql")?;
            if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "1" {
                eprintln!(
                    "xtask: postgres accepts password logins on 127.0.0.1:{port} ({} ms)",
                    started.elapsed().as_millis()
                );
                return Ok(());
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        servers.check_alive()?;
        if started.elapsed() > READY_TIMEOUT {
            bail!(
                "postgres on 127.0.0.1:{port} did not accept a login within {} s: {last}",
                READY_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The newest `/usr/lib/postgresql/N/bin` with `initdb`, installing Debian's `postgresql` when there is none.
fn ensure_installed() -> anyhow::Result<PathBuf> {
    if let Some(bin) = newest_bin_dir(Path::new(DEBIAN_LIB)) {
        return Ok(bin);
    }
    // postgresql-common first, told not to create (and start) a "main" cluster on port 5432 when the server
    // package comes: the tests make their own, and a fresh CI machine may have no init system to start it.
    tools::apt_install(&["postgresql-common"]).context("cannot install postgresql-common")?;
    let conf = Path::new("/etc/postgresql-common/createcluster.conf");
    if let Ok(text) = std::fs::read_to_string(conf) {
        let edited = no_main_cluster(&text);
        if edited != text {
            std::fs::write(conf, edited)
                .with_context(|| format!("cannot write {}", conf.display()))?;
        }
    }
    tools::apt_install(&["postgresql"]).context("cannot install PostgreSQL")?;
    newest_bin_dir(Path::new(DEBIAN_LIB)).with_context(|| {
        format!("postgresql was installed but no {DEBIAN_LIB}/N/bin/initdb exists")
    })
}

/// `createcluster.conf` with `create_main_cluster = false` (the commented default line replaced, or the
/// setting added).
fn no_main_cluster(text: &str) -> String {
    let mut found = false;
    let mut out: Vec<String> = text
        .lines()
        .map(|l| {
            let bare = l.trim_start_matches(['#', ' ']);
            if bare.starts_with("create_main_cluster") {
                found = true;
                "create_main_cluster = false".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    if !found {
        out.push("create_main_cluster = false".into());
    }
    out.join("\n") + "\n"
}

/// Of `lib/N/bin` directories holding `initdb` and `postgres`, the one with the highest major version `N`.
fn newest_bin_dir(lib: &Path) -> Option<PathBuf> {
    std::fs::read_dir(lib)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file())
                .then_some((version, bin))
        })
        .max_by_key(|(v, _)| *v)
        .map(|(_, bin)| bin)
}

/// Creates the system user [`OS_USER`] (no home, no login shell) unless it exists.
fn ensure_os_user() -> anyhow::Result<()> {
    let exists = Command::new("id")
        .args(["-u", OS_USER])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if exists {
        return Ok(());
    }
    eprintln!("xtask: creating the system user {OS_USER} to run the test PostgreSQL");
    tools::run_quiet(Command::new("useradd").args([
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        OS_USER,
    ]))
    .with_context(|| format!("cannot create the system user {OS_USER}"))
}

/// 16 random bytes from the OS, as 32 hex digits.
fn generate_password() -> anyhow::Result<SecretString> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom")?;
    Ok(SecretString::from(hex(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
#[cfg(test)]
fn answers(port: u16) -> bool {
    use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into();
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_names_the_superuser_the_password_and_a_loopback_port() {
        let password = SecretString::from("00ff".to_string());
        assert_eq!(
            superuser_url(&password, 5433),
            "postgres://archivectl:00ff@127.0.0.1:5433/postgres"
        );
    }

    #[test]
    fn admin_urls_are_read_and_database_urls_carry_no_password() {
        let a =
            AdminUrl::parse("postgres://archivectl:00ff@127.0.0.1:5433/postgres").expect("parses");
        assert_eq!(
            a,
            AdminUrl {
                user: "archivectl".into(),
                password: "00ff".into(),
                host: "127.0.0.1".into(),
                port: 5433
            }
        );
        assert_eq!(
            a.database_url("bench"),
            "postgres://archivectl@127.0.0.1:5433/bench?sslmode=disable"
        );
        assert!(AdminUrl::parse("http://x").is_err());
        assert!(AdminUrl::parse("postgres://nopassword@h:1/d").is_err());
    }

    #[test]
    fn the_main_cluster_is_turned_off_in_createcluster_conf() {
        let debian = "# comment\n#create_main_cluster = true\nstart_conf = 'auto'\n";
        assert_eq!(
            no_main_cluster(debian),
            "# comment\ncreate_main_cluster = false\nstart_conf = 'auto'\n"
        );
        assert_eq!(
            no_main_cluster("start_conf = 'auto'\n"),
            "start_conf = 'auto'\ncreate_main_cluster = false\n"
        );
        let done = no_main_cluster(debian);
        assert_eq!(no_main_cluster(&done), done, "idempotent");
    }

    #[test]
    fn passwords_are_32_hex_digits_and_differ_each_run() {
        let a = generate_password().expect("a password");
        let b = generate_password().expect("a password");
        for p in [&a, &b] {
            let p = p.expose_secret();
            assert_eq!(p.len(), 32, "{p}");
            assert!(
                p.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "{p}"
            );
        }
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn the_free_port_is_on_loopback_and_free() {
        let port = crate::servers::free_port().expect("a port");
        assert_ne!(port, 0);
        assert!(!answers(port), "nothing listens on the port handed out");
        // It can be bound on 127.0.0.1 (what the server does).
        std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port))
            .expect("the port is free");
    }

    #[test]
    fn the_newest_major_version_with_a_server_is_chosen() {
        let lib = std::env::temp_dir().join(format!("xtask-pg-lib-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&lib);
        for (version, complete) in [("13", true), ("15", true), ("16", false), ("common", true)] {
            let bin = lib.join(version).join("bin");
            std::fs::create_dir_all(&bin).expect("mkdir");
            std::fs::write(bin.join("initdb"), "").expect("initdb");
            if complete {
                std::fs::write(bin.join("postgres"), "").expect("postgres");
            }
        }
        // 16 has no server binary, "common" is no version: 15 wins.
        assert_eq!(newest_bin_dir(&lib), Some(lib.join("15").join("bin")));
        assert_eq!(newest_bin_dir(&lib.join("missing")), None);
        std::fs::remove_dir_all(&lib).expect("cleanup");
    }

    /// `attach` brings up a real PostgreSQL (installed if missing) that takes a scram password login at the
    /// URL it exports, on 127.0.0.1, refuses a wrong password, and is gone with its data after the drop.
    #[test]
    fn attach_starts_a_password_protected_postgres_that_stops_with_its_data() {
        let mut servers = Servers::none().expect("a servers directory");
        attach(&mut servers).expect("PostgreSQL starts");
        let url = servers
            .env()
            .iter()
            .find(|(k, _)| *k == URL_VAR)
            .map(|(_, v)| v.clone())
            .expect("the URL is exported");
        let rest = url
            .strip_prefix("postgres://archivectl:")
            .expect("the superuser");
        let (password, rest) = rest.split_once('@').expect("a password");
        let port: u16 = rest
            .strip_prefix("127.0.0.1:")
            .and_then(|r| r.strip_suffix("/postgres"))
            .and_then(|p| p.parse().ok())
            .expect("127.0.0.1:PORT/postgres");
        assert!(answers(port));
        let bin = ensure_installed().expect("installed");
        let psql = |pw: &str| {
            Command::new(bin.join("psql"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", SUPERUSER])
                .args(["-d", "postgres", "-X", "-tAc", "SHOW password_encryption"])
                .env("PGPASSWORD", pw)
                .env_remove("PGPASSFILE")
                .output()
                .expect("psql runs")
        };
        let ok = psql(password);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "scram-sha-256");
        let bad = psql("wrong");
        assert!(!bad.status.success(), "a wrong password is refused");
        assert!(
            String::from_utf8_lossy(&bad.stderr).contains("password authentication failed"),
            "{}",
            String::from_utf8_lossy(&bad.stderr)
        );
        let run = servers
            .dir()
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string);
        let data = std::env::temp_dir().join(format!("archivectl-pg-{}", run.expect("run name")));
        assert!(
            data.join("data").join("PG_VERSION").is_file(),
            "the cluster is in {}",
            data.display()
        );
        assert!(
            !data.join("pwfile").exists(),
            "the password file is removed after initdb"
        );
        drop(servers);
        assert!(!answers(port), "stopped");
        assert!(!data.exists(), "{} is removed", data.display());
    }

    #[test]
    fn the_server_listens_on_loopback_only_with_its_own_sockets() {
        let s = server_settings(6000, Path::new("/tmp/x/sock")).join(" ");
        assert!(s.contains("listen_addresses=127.0.0.1 "), "{s}");
        assert!(s.contains("port=6000"), "{s}");
        assert!(s.contains("unix_socket_directories=/tmp/x/sock"), "{s}");
    }
}
