//! Redis topologies on loopback for the fleet scenarios ([`mod@crate::fleet`]): a standalone
//! server, a Sentinel group (primary, replica, three sentinels) and a three-node Cluster,
//! each in a temporary directory of its own, on free ports, stopped when dropped.
//!
//! Each constructor returns `None` when `redis-server` (or `redis-cli`) is missing
//! outside CI, and fails the test under `CI=true` ([`service::available`]).

use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::service;

const REDIS_SERVER: &str = "/usr/bin/redis-server";
const REDIS_CLI: &str = "/usr/bin/redis-cli";

/// How long a topology may take to be ready (servers listening, replica in sync,
/// sentinels acquainted, cluster slots covered).
const READY_BOUND: Duration = Duration::from_secs(30);

/// A directory of its own under the system's temporary directory. Removed when dropped,
/// unless the test is failing (its logs are then kept, and their path printed).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new, empty directory whose name starts with `prefix`.
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A child process whose stdout and stderr go to a log file; SIGKILLed when dropped.
pub struct Process {
    child: Option<Child>,
    /// What it is, for messages (`redis primary`, `axum instance 2`).
    pub name: String,
    /// The file its output goes to.
    pub log: PathBuf,
}

impl Process {
    /// Starts `command` with its output appended to `log`.
    pub fn spawn(name: impl Into<String>, mut command: Command, log: PathBuf) -> Process {
        let name = name.into();
        let file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let err = file.try_clone().expect("a second handle on the log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Process {
            child: Some(child),
            name,
            log,
        }
    }

    /// Its process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(status)` when it has exited (by itself or killed).
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    /// SIGKILL, as a crash or an orchestrator's hard stop would, and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Prints the tail of its log to stderr, headed by its name.
    pub fn print_log(&self, lines: usize) {
        eprintln!(
            "----- {} ({}), last {lines} lines -----\n{}\n----- end of {} -----",
            self.name,
            self.log.display(),
            self.log_tail(lines),
            self.name
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether something accepts TCP connections on `127.0.0.1:port` (a connect that meets
/// itself does not count: see [`service::listens`]).
pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .and_then(|s| Ok(s.local_addr()? != s.peer_addr()?))
    .unwrap_or(false)
}

/// How redis-cli's answer starts when the command failed: an error reply (printed as is,
/// or after `(error)` on a terminal; redis-cli 7 still exits 0 for one) or no connection.
const CLI_FAILURES: &[&str] = &[
    "ERR",
    "(error)",
    "Could not connect",
    "WRONGTYPE",
    "NOAUTH",
    "NOPERM",
    "LOADING",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "READONLY",
    "MOVED ",
    "ASK ",
    "TRYAGAIN",
    "MISCONF",
];

/// `redis-cli <connection…> <args…>`: its output (stdout, then stderr), or `Err` naming
/// the command and its output when redis-cli exits non-zero or answers an error
/// ([`CLI_FAILURES`]).
fn run_cli(connection: &[String], args: &[&str]) -> Result<String, String> {
    let output = Command::new(REDIS_CLI)
        .args(connection)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {REDIS_CLI}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let failed = [&stdout, &stderr].into_iter().any(|out| {
        let out = out.trim_start();
        CLI_FAILURES.iter().any(|prefix| out.starts_with(prefix))
    });
    let text = format!("{stdout}{stderr}");
    if output.status.success() && !failed {
        Ok(text)
    } else {
        Err(format!(
            "`{REDIS_CLI} {} {}` failed ({}): {}",
            connection.join(" "),
            args.join(" "),
            output.status,
            text.trim()
        ))
    }
}

/// `redis-cli -h 127.0.0.1 -p port args…`: its output (stdout, then stderr), or `Err`
/// with the command and its output when it fails (for a server that may not answer yet).
pub fn try_cli(port: u16, args: &[&str]) -> Result<String, String> {
    let connection = ["-h", "127.0.0.1", "-p", &port.to_string()].map(str::to_owned);
    run_cli(&connection, args)
}

/// [`try_cli`] of a server that must answer: panics with the command and its output when
/// redis-cli fails (no connection, an error reply), rather than let it be read as data.
pub fn cli(port: u16, args: &[&str]) -> String {
    try_cli(port, args).unwrap_or_else(|why| panic!("{why}"))
}

/// A count redis-cli answered (`DBSIZE`): a number, or a panic naming `what`.
fn parse_count(answer: &str, what: &str) -> u64 {
    answer
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{what} answered {answer:?}, not a number"))
}

/// How many keys the server on `port` holds (`DBSIZE`); panics when it does not answer a
/// number.
pub fn dbsize(port: u16) -> u64 {
    parse_count(&cli(port, &["dbsize"]), &format!("DBSIZE on {port}"))
}

/// The value of `field:` in an `INFO`-style answer (`field:value` lines).
pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|line| {
        line.trim()
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::to_owned)
    })
}

/// Polls `ready` every 50 ms until it says `Ok`, or fails with its last `Err` (and the logs
/// of `processes`) after [`READY_BOUND`].
fn wait_until(what: &str, processes: &[&Process], mut ready: impl FnMut() -> Result<(), String>) {
    let started = Instant::now();
    loop {
        match ready() {
            Ok(()) => return,
            Err(why) if started.elapsed() > READY_BOUND => {
                for process in processes {
                    process.print_log(40);
                }
                panic!("{what} not ready after {READY_BOUND:?}: {why}");
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn redis_tools_available() -> bool {
    service::available(REDIS_SERVER, "redis-server") && service::available(REDIS_CLI, "redis-tools")
}

/// A `redis-server` without persistence, listening on `port`, its files in `dir`.
fn redis_server(name: &str, dir: &Path, port: u16, extra: &[String]) -> Process {
    let mut command = Command::new(REDIS_SERVER);
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(extra);
    let log = dir.join(format!("{}.log", name.replace(' ', "-")));
    Process::spawn(name, command, log)
}

/// Waits until `process` accepts connections on `port`; `Err` if it exits first, or
/// right after: a port another process took in the meantime answers too, while ours
/// exits on "address in use" (a server binds within milliseconds of starting).
fn wait_listening(process: &mut Process, port: u16) -> Result<(), String> {
    let started = Instant::now();
    while !port_open(port) {
        if let Some(status) = process.exited() {
            return Err(format!(
                "{} exited ({status}) before listening on {port}",
                process.name
            ));
        }
        if started.elapsed() > READY_BOUND {
            return Err(format!(
                "{} does not listen on {port} after {READY_BOUND:?}",
                process.name
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    if let Some(status) = process.exited() {
        return Err(format!(
            "{} exited ({status}) although {port} answers: another process has it",
            process.name
        ));
    }
    Ok(())
}

/// Starts a server with `spawn(port)` on a free port and waits until it listens. Tests run
/// in parallel: when another process took the port meanwhile, tries another one.
fn start_listening(mut spawn: impl FnMut(u16) -> Process) -> (Process, u16) {
    const ATTEMPTS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        let port = service::free_port();
        let mut process = spawn(port);
        match wait_listening(&mut process, port) {
            Ok(()) => return (process, port),
            Err(why) if attempt < ATTEMPTS && process.log_tail(20).contains("in use") => {
                eprintln!("{why}: its port was taken, trying another one");
            }
            Err(why) => {
                process.print_log(40);
                panic!("{why}");
            }
        }
    }
    unreachable!("the last attempt returns or panics")
}

/// One `redis-server` without persistence.
pub struct Standalone {
    server: Process,
    /// Its port.
    pub port: u16,
    dir: TempDir,
}

impl Drop for Standalone {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
    }
}

impl Standalone {
    /// Starts it on a free port; `None` when Redis is not installed (outside CI).
    pub fn start() -> Option<Standalone> {
        if !redis_tools_available() {
            return None;
        }
        let dir = TempDir::new("kvixi-standalone");
        let (server, port) = start_listening(|port| redis_server("redis", dir.path(), port, &[]));
        Some(Standalone { server, port, dir })
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Prints its log (for a failing test).
    pub fn print_logs(&self) {
        self.server.print_log(30);
        let _ = &self.dir;
    }
}

/// One `redis-server` that speaks TLS only (`rediss://`), with a certificate for
/// `127.0.0.1` signed by a CA made for the test (`openssl`).
pub struct TlsStandalone {
    server: Process,
    /// Its TLS port (it has no plain one).
    pub port: u16,
    dir: TempDir,
}

impl Drop for TlsStandalone {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.server.print_log(30);
        }
    }
}

impl TlsStandalone {
    /// Makes the CA and the server's certificate, then starts the server on a free port;
    /// `None` when Redis or openssl is not installed (outside CI).
    pub fn start() -> Option<TlsStandalone> {
        if !redis_tools_available() || !service::available(OPENSSL, "openssl") {
            return None;
        }
        let dir = TempDir::new("kvixi-tls");
        let path = |file: &str| dir.path().join(file).to_string_lossy().into_owned();
        let openssl = |args: &[&str]| {
            let output = Command::new(OPENSSL)
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl runs");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        std::fs::write(
            dir.path().join("san.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("a config file");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=kvixi e2e CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.cnf",
            "-out",
            "server.crt",
        ]);
        let (server, port) = start_listening(|port| {
            let tls = [
                "--port".to_owned(),
                "0".to_owned(),
                "--tls-port".to_owned(),
                port.to_string(),
                "--tls-cert-file".to_owned(),
                path("server.crt"),
                "--tls-key-file".to_owned(),
                path("server.key"),
                "--tls-ca-cert-file".to_owned(),
                path("ca.crt"),
                "--tls-auth-clients".to_owned(),
                "no".to_owned(),
            ];
            redis_server("redis tls", dir.path(), port, &tls)
        });
        Some(TlsStandalone { server, port, dir })
    }

    /// `rediss://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    /// The CA that signed the server's certificate: what a client must trust
    /// (`SSL_CERT_FILE`, which the Redis client's TLS reads).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// How many keys the server holds (`DBSIZE` over TLS); panics when it does not
    /// answer a number.
    pub fn dbsize(&self) -> u64 {
        let connection = [
            "-h".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            self.port.to_string(),
            "--tls".to_owned(),
            "--cacert".to_owned(),
            self.ca_file().to_string_lossy().into_owned(),
        ];
        let answer = run_cli(&connection, &["dbsize"]).unwrap_or_else(|why| panic!("{why}"));
        parse_count(&answer, &format!("DBSIZE over TLS on {}", self.port))
    }
}

const OPENSSL: &str = "/usr/bin/openssl";

/// The name the sentinels monitor the primary under.
pub const SENTINEL_SERVICE: &str = "kvixi";

/// A primary, one replica and three sentinels (quorum 2, down after 1 s).
pub struct SentinelGroup {
    primary: Process,
    replica: Process,
    sentinels: Vec<Process>,
    /// The first primary's extra arguments, for [`SentinelGroup::restart_old_primary`].
    primary_args: Vec<String>,
    /// The port of the primary killed last, until it is started again.
    killed: Option<u16>,
    /// The primary's port, as started.
    pub primary_port: u16,
    /// The replica's port, as started.
    pub replica_port: u16,
    /// The sentinels' ports.
    pub sentinel_ports: Vec<u16>,
    dir: TempDir,
}

impl Drop for SentinelGroup {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
    }
}

impl SentinelGroup {
    /// Starts the group and waits until the replica is in sync and every sentinel knows
    /// the replica and the two other sentinels; `None` when Redis is not installed.
    pub fn start() -> Option<SentinelGroup> {
        if !redis_tools_available() {
            return None;
        }
        let dir = TempDir::new("kvixi-sentinel");
        // No delay before the first (diskless) sync: the replica is in sync at once.
        let primary_args = ["--repl-diskless-sync-delay", "0"].map(str::to_owned);
        let (primary, primary_port) =
            start_listening(|port| redis_server("redis primary", dir.path(), port, &primary_args));
        let replica_args =
            ["--replicaof", "127.0.0.1", &primary_port.to_string()].map(str::to_owned);
        let (replica, replica_port) =
            start_listening(|port| redis_server("redis replica", dir.path(), port, &replica_args));

        let mut sentinels = Vec::new();
        let mut sentinel_ports = Vec::new();
        for n in 1..=3 {
            let (sentinel, port) = start_listening(|port| {
                let conf = dir.path().join(format!("sentinel-{n}.conf"));
                let text = format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {primary_port} 2\n\
                     sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n\
                     sentinel failover-timeout {SENTINEL_SERVICE} 3000\n\
                     sentinel parallel-syncs {SENTINEL_SERVICE} 1\n",
                    dir = dir.path().display()
                );
                std::fs::write(&conf, text).expect("a writable sentinel config");
                let mut command = Command::new(REDIS_SERVER);
                command.arg(&conf).arg("--sentinel");
                let log = dir.path().join(format!("sentinel-{n}.log"));
                Process::spawn(format!("sentinel {n}"), command, log)
            });
            sentinels.push(sentinel);
            sentinel_ports.push(port);
        }
        let group = SentinelGroup {
            primary_args: primary_args.to_vec(),
            killed: None,
            primary,
            replica,
            sentinels,
            primary_port,
            replica_port,
            sentinel_ports,
            dir,
        };
        group.wait_ready();
        Some(group)
    }

    fn processes(&self) -> Vec<&Process> {
        let mut all = vec![&self.primary, &self.replica];
        all.extend(self.sentinels.iter());
        all
    }

    fn wait_ready(&self) {
        let processes = self.processes();
        wait_until("the replica", &processes, || {
            let info = try_cli(self.replica_port, &["info", "replication"])?;
            match info_field(&info, "master_link_status").as_deref() {
                Some("up") => Ok(()),
                other => Err(format!("master_link_status {other:?}")),
            }
        });
        for &port in &self.sentinel_ports {
            wait_until("the sentinels", &processes, || {
                let master = self.sentinel_master(port);
                let others = master.get("num-other-sentinels").map(String::as_str);
                let replicas = master.get("num-slaves").map(String::as_str);
                if others == Some("2") && replicas == Some("1") {
                    Ok(())
                } else {
                    Err(format!(
                        "sentinel on {port}: {others:?} other sentinels, {replicas:?} replicas"
                    ))
                }
            });
        }
    }

    /// What the sentinel on `port` says of the monitored primary (`SENTINEL MASTER`).
    pub fn sentinel_master(&self, port: u16) -> std::collections::HashMap<String, String> {
        let answer = cli(port, &["sentinel", "master", SENTINEL_SERVICE]);
        let lines: Vec<&str> = answer.lines().collect();
        lines
            .chunks(2)
            .filter(|pair| pair.len() == 2)
            .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
            .collect()
    }

    /// `host:port` of the primary, as the first live sentinel reports it (after a
    /// failover, some sentinels may name the old one for a while).
    pub fn current_primary(&self) -> Option<String> {
        self.sentinel_ports.iter().find_map(|&port| {
            let answer = try_cli(
                port,
                &["sentinel", "get-master-addr-by-name", SENTINEL_SERVICE],
            )
            .ok()?;
            let mut lines = answer.lines();
            match (lines.next(), lines.next()) {
                (Some(host), Some(p)) if p.parse::<u16>().is_ok() => Some(format!("{host}:{p}")),
                _ => None,
            }
        })
    }

    /// The role (`master`, `slave`) the server on `port` reports, if it answers.
    pub fn role(&self, port: u16) -> Option<String> {
        info_field(&try_cli(port, &["info", "replication"]).ok()?, "role")
    }

    /// `redis-sentinel://127.0.0.1:S1?sentinelServiceName=kvixi&node=127.0.0.1:S2&node=…`.
    pub fn url(&self) -> String {
        let mut url = format!(
            "redis-sentinel://127.0.0.1:{}?sentinelServiceName={SENTINEL_SERVICE}",
            self.sentinel_ports[0]
        );
        for port in &self.sentinel_ports[1..] {
            url.push_str(&format!("&node=127.0.0.1:{port}"));
        }
        url
    }

    /// SIGKILLs the primary (it stays down) and checks its port is closed.
    pub fn kill_primary(&mut self) {
        self.primary.kill();
        self.killed = Some(self.primary_port);
        assert!(
            !port_open(self.primary_port),
            "the killed primary's port {} is closed",
            self.primary_port
        );
    }

    /// SIGKILLs the server the sentinels name primary now (the first primary, or the
    /// replica promoted since), checks its port is closed, and returns that port.
    pub fn kill_current_primary(&mut self) -> u16 {
        let port = self
            .current_primary()
            .and_then(|addr| addr.rsplit(':').next()?.parse::<u16>().ok())
            .unwrap_or(self.primary_port);
        let process = if port == self.replica_port {
            &mut self.replica
        } else {
            &mut self.primary
        };
        process.kill();
        assert!(
            !port_open(port),
            "the killed primary's port {port} is closed"
        );
        self.killed = Some(port);
        port
    }

    /// Starts a server again on the port of the primary killed last (by
    /// [`SentinelGroup::kill_primary`] or [`SentinelGroup::kill_current_primary`]), empty
    /// and without `replicaof`, as an orchestrator would bring the old machine back: the
    /// sentinels make it a replica of the current primary. Waits until it reports itself
    /// one.
    pub fn restart_old_primary(&mut self) {
        let port = self.killed.take().unwrap_or(self.primary_port);
        let process = redis_server(
            &format!("redis old primary {port}"),
            self.dir.path(),
            port,
            &self.primary_args,
        );
        if port == self.replica_port {
            self.replica = process;
        } else {
            self.primary = process;
        }
        let processes = self.processes();
        wait_until("the old primary as a replica", &processes, || {
            let info = try_cli(port, &["info", "replication"])?;
            match (
                info_field(&info, "role").as_deref(),
                info_field(&info, "master_link_status").as_deref(),
            ) {
                (Some("slave"), Some("up")) => Ok(()),
                other => Err(format!("role and link {other:?}")),
            }
        });
    }

    /// Prints every process's log (for a failing test).
    pub fn print_logs(&self) {
        for process in self.processes() {
            process.print_log(30);
        }
        let _ = &self.dir;
    }
}

/// Three primaries sharing the 16384 slots (no replicas).
pub struct Cluster {
    nodes: Vec<Process>,
    /// The nodes' client ports.
    pub ports: Vec<u16>,
    dir: TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
    }
}

impl Cluster {
    /// Starts three nodes, creates the cluster with `redis-cli --cluster create` and waits
    /// for `cluster_state:ok` on every node; `None` when Redis is not installed.
    pub fn start() -> Option<Cluster> {
        if !redis_tools_available() {
            return None;
        }
        let dir = TempDir::new("kvixi-cluster");
        let mut nodes = Vec::new();
        let mut ports = Vec::new();
        for n in 1..=3 {
            let (node, port) = start_listening(|port| {
                // The bus port: a free port of its own (the default, port + 10000, may
                // exceed 65535).
                let bus = service::free_port();
                let args = [
                    "--cluster-enabled".to_owned(),
                    "yes".to_owned(),
                    "--cluster-config-file".to_owned(),
                    format!("nodes-{port}.conf"),
                    "--cluster-port".to_owned(),
                    bus.to_string(),
                    "--cluster-node-timeout".to_owned(),
                    "5000".to_owned(),
                ];
                redis_server(&format!("cluster node {n}"), dir.path(), port, &args)
            });
            nodes.push(node);
            ports.push(port);
        }
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addresses.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let created = try_cli(ports[0], &create);
        let cluster = Cluster { nodes, ports, dir };
        let created = created.unwrap_or_else(|why| panic!("{why}"));
        assert!(
            created.contains("[OK] All 16384 slots covered"),
            "redis-cli --cluster create failed:\n{created}"
        );
        let processes: Vec<&Process> = cluster.nodes.iter().collect();
        for &port in &cluster.ports {
            wait_until("the cluster", &processes, || {
                let info = try_cli(port, &["cluster", "info"])?;
                match info_field(&info, "cluster_state").as_deref() {
                    Some("ok") => Ok(()),
                    other => Err(format!("node {port}: cluster_state {other:?}")),
                }
            });
        }
        Some(cluster)
    }

    /// `redis-cluster://127.0.0.1:P1?node=127.0.0.1:P2&node=127.0.0.1:P3`.
    pub fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.ports[0]);
        for (i, port) in self.ports[1..].iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{port}"));
        }
        url
    }

    /// How many keys each node holds (`DBSIZE`), in the order of [`Cluster::ports`];
    /// panics when a node does not answer a number (never read as 0 keys).
    pub fn key_counts(&self) -> Vec<u64> {
        self.ports.iter().map(|&port| dbsize(port)).collect()
    }

    /// Prints every node's log (for a failing test).
    pub fn print_logs(&self) {
        for node in &self.nodes {
            node.print_log(30);
        }
        let _ = &self.dir;
    }
}
