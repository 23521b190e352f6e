//! Starting a real BIND 9 (`named` from Debian's `bind9` package) on a loopback port with
//! zones generated for the run. Used by the demo lab and the integration tests.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::{Name, RecordType};

use vlmcs_audit::dns::{self, QueryOptions};

/// One zone: its origin (`example.test.`), the zone file text, and extra zone options
/// (e.g. `update-policy { ... };`).
#[derive(Debug, Clone)]
pub struct Zone {
    pub origin: String,
    pub text: String,
    pub options: String,
}

impl Zone {
    pub fn new(origin: &str, text: String) -> Self {
        Self {
            origin: origin.into(),
            text,
            options: String::new(),
        }
    }

    pub fn with_options(mut self, options: &str) -> Self {
        self.options = options.into();
        self
    }
}

/// A running `named`; killed when dropped. Its files live in `dir`.
pub struct Named {
    pub address: SocketAddr,
    pub dir: PathBuf,
    child: Daemon,
}

/// A server process of the lab, killed (and reaped) when dropped.
pub struct Daemon(pub Child);

impl Daemon {
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where `named` is: PATH, then the sbin directories a non-root PATH lacks.
pub fn named_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into(), "/sbin".into()])
        .map(|d: PathBuf| d.join("named"))
        .find(|p| p.is_file())
}

impl Named {
    /// Starts `named` on `ip` at a free port, serving `zones` (plus top-level `extra_conf`),
    /// and waits until it answers for the first zone.
    pub async fn start(
        dir: &Path,
        ip: IpAddr,
        zones: &[Zone],
        extra_conf: &str,
    ) -> Result<Self, String> {
        Self::start_with(dir, ip, zones, extra_conf, "", &[]).await
    }

    /// Like [`Named::start`], with extra lines in `options { }` and extra environment (e.g.
    /// `KRB5_CONFIG` for `tkey-gssapi-keytab`).
    pub async fn start_with(
        dir: &Path,
        ip: IpAddr,
        zones: &[Zone],
        extra_conf: &str,
        extra_options: &str,
        env: &[(String, String)],
    ) -> Result<Self, String> {
        let binary = named_binary().ok_or_else(|| {
            "`named` not found: install BIND 9 (`apt-get install bind9 bind9-utils bind9-dnsutils`)".to_string()
        })?;
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let mut last_error = String::new();
        // A free port can be taken between our check and named's bind: try a few.
        for _ in 0..5 {
            let port = free_port(ip)?;
            let address = SocketAddr::new(ip, port);
            write_config(dir, address, zones, extra_conf, extra_options)?;
            let log = std::fs::File::create(dir.join("named.log")).map_err(|e| e.to_string())?;
            let mut command = Command::new(&binary);
            command.envs(env.iter().cloned());
            die_with_parent(&mut command);
            let child = command
                .arg("-c")
                .arg(dir.join("named.conf"))
                .args(["-g", "-n", "1"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("starting {}: {e}", binary.display()))?;
            let mut named = Named {
                address,
                dir: dir.to_path_buf(),
                child: Daemon(child),
            };
            match named
                .wait_ready(zones.first().map(|z| z.origin.as_str()).unwrap_or("."))
                .await
            {
                Ok(()) => return Ok(named),
                // Only a port taken in between is worth another try.
                Err(e) if e.contains("address in use") => last_error = e,
                Err(e) => return Err(e),
            }
        }
        Err(last_error)
    }

    async fn wait_ready(&mut self, origin: &str) -> Result<(), String> {
        let failed = format!(
            "zone {}/IN: not loaded due to errors",
            origin.trim_end_matches('.')
        );
        let log = self.dir.join("named.log");
        wait_authoritative(
            &mut self.child.0,
            self.address,
            origin,
            &log,
            "named",
            Some(&failed),
        )
        .await
    }

    /// The last lines of named's log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.dir.join("named.log"))
    }
}

/// Waits (10 s at most) until the server process answers authoritatively for `origin`; fails
/// early when it exits or when its log shows `load_failure`.
pub(crate) async fn wait_authoritative(
    child: &mut Child,
    address: SocketAddr,
    origin: &str,
    log: &Path,
    program: &str,
    load_failure: Option<&str>,
) -> Result<(), String> {
    let name = Name::from_ascii(origin).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{program} exited ({status}):\n{}", log_tail(log)));
        }
        if let Some(marker) = load_failure
            && std::fs::read_to_string(log).is_ok_and(|text| text.contains(marker))
        {
            return Err(format!(
                "{program} could not load {origin}:\n{}",
                log_tail(log)
            ));
        }
        let answer = dns::query(
            address,
            &name,
            RecordType::SOA,
            QueryOptions {
                recursion_desired: false,
                timeout: Duration::from_millis(300),
            },
        )
        .await;
        if answer.is_ok_and(|a| a.authoritative()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "{program} did not answer within 10 s:\n{}",
        log_tail(log)
    ))
}

/// The last lines of a server's log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<_> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Test harnesses keep their servers in statics that are never dropped: have the kernel kill
/// `named` when the thread that started it goes away, so no server outlives its test run.
#[cfg(target_os = "linux")]
#[allow(unsafe_code, reason = "pre_exec: runs in the forked child")]
pub(crate) fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure makes one syscall (prctl), which is async-signal-safe, and touches no
    // memory of the parent.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn die_with_parent(_command: &mut Command) {}

pub(crate) fn free_port(ip: IpAddr) -> Result<u16, String> {
    for _ in 0..50 {
        let tcp = TcpListener::bind((ip, 0)).map_err(|e| format!("binding {ip}: {e}"))?;
        let port = tcp.local_addr().map_err(|e| e.to_string())?.port();
        if UdpSocket::bind((ip, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(format!("no free port on {ip}"))
}

fn write_config(
    dir: &Path,
    address: SocketAddr,
    zones: &[Zone],
    extra_conf: &str,
    extra_options: &str,
) -> Result<(), String> {
    let d = dir.display();
    let mut conf = format!(
        r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ {ip}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    notify no;
    dnssec-validation no;
    minimal-responses no;
    # Windows DNS takes any name; so must the lab, to test hostile data.
    check-names primary ignore;
    {extra_options}
}};
controls {{ }};
logging {{ category default {{ default_stderr; }}; category lame-servers {{ null; }}; }};
{extra_conf}
"#,
        port = address.port(),
        ip = address.ip(),
    );
    for zone in zones {
        let file = format!("{}zone", zone.origin);
        std::fs::write(dir.join(&file), &zone.text).map_err(|e| format!("writing zone: {e}"))?;
        let _ = writeln!(
            conf,
            "zone \"{}\" {{ type primary; file \"{d}/{file}\"; {} }};",
            zone.origin, zone.options
        );
    }
    std::fs::write(dir.join("named.conf"), conf).map_err(|e| format!("writing named.conf: {e}"))
}
