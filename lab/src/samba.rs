//! A real Active Directory domain controller for tests: Samba 4 (`samba-ad-dc`,
//! `samba-ad-provision`) provisioned into a directory of its own and run in a network namespace
//! that this code creates (root only), where it owns 127.0.0.2 and ports 53 and 88. Its
//! internal DNS serves an AD zone that accepts secure (GSS-TSIG) updates only, signs replies
//! the way Windows does, and issues PAC-sized Kerberos tickets.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::named::die_with_parent;
use crate::{netns, run};

/// The DC's address inside its namespace.
pub const DC_ADDRESS: &str = "127.0.0.2";

/// A provisioned, running Samba AD DC in its own network namespace; torn down when dropped.
pub struct SambaDc {
    pub netns: String,
    pub dir: PathBuf,
    pub realm: String,
    pub admin_password: String,
    /// A `krb5.conf` for clients inside the namespace.
    pub krb5_conf: PathBuf,
    child: crate::named::Daemon,
}

impl Drop for SambaDc {
    fn drop(&mut self) {
        // Kill the DC before its namespace goes.
        self.child.kill();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.netns));
    }
}

impl SambaDc {
    /// Creates namespace `netns`, provisions domain `realm` (NetBIOS name `domain`) under `dir`
    /// with host `dc1`, starts `samba` and waits until its DNS answers.
    pub fn start(
        dir: &Path,
        netns: &str,
        realm: &str,
        domain: &str,
        admin_password: &str,
    ) -> Result<Self, String> {
        netns::create(netns)?;
        run(netns::command(netns, "ip").args(["addr", "add", "127.0.0.2/8", "dev", "lo"]))?;
        let lower = realm.to_ascii_lowercase();
        let etc = Path::new("/etc/netns").join(netns);
        std::fs::create_dir_all(&etc).map_err(|e| e.to_string())?;
        std::fs::write(
            etc.join("resolv.conf"),
            format!("nameserver {DC_ADDRESS}\nsearch {lower}\n"),
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(
            etc.join("hosts"),
            format!("127.0.0.1 localhost\n{DC_ADDRESS} dc1.{lower} dc1\n"),
        )
        .map_err(|e| e.to_string())?;

        let _ = std::fs::remove_dir_all(dir);
        for sub in ["pid", "ncalrpc", "winbindd"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
        }
        let d = dir.display();
        let options = [
            format!("pid directory = {d}/pid"),
            format!("ncalrpc dir = {d}/ncalrpc"),
            format!("winbindd socket directory = {d}/winbindd"),
            "interfaces = lo".to_string(),
            "bind interfaces only = yes".to_string(),
        ];
        let mut provision = netns::command(netns, "samba-tool");
        provision.args(["domain", "provision", "--server-role=dc"]);
        provision.args([
            "--dns-backend=SAMBA_INTERNAL",
            "--use-rfc2307",
            "--host-name=dc1",
        ]);
        provision
            .arg(format!("--realm={realm}"))
            .arg(format!("--domain={domain}"));
        provision
            .arg(format!("--host-ip={DC_ADDRESS}"))
            .arg(format!("--adminpass={admin_password}"));
        provision.arg(format!("--targetdir={d}"));
        for o in &options {
            provision.arg(format!("--option={o}"));
        }
        run(&mut provision).map_err(|e| {
            format!(
                "provisioning the AD domain (samba-ad-dc and samba-ad-provision installed?): {e}"
            )
        })?;
        // Provisioning copies a DNS forwarder from the host; a test DC must not forward.
        let conf_path = dir.join("etc/smb.conf");
        let conf = std::fs::read_to_string(&conf_path).map_err(|e| e.to_string())?;
        let conf: String = conf
            .lines()
            .filter(|l| !l.trim_start().starts_with("dns forwarder"))
            .map(|l| {
                if l.trim_start().starts_with("log file") {
                    format!("\tlog file = {d}/log.%m\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;

        let krb5_conf = dir.join("krb5.conf");
        std::fs::write(
            &krb5_conf,
            format!(
                "[libdefaults]\n    default_realm = {realm}\n    dns_lookup_kdc = false\n    dns_lookup_realm = false\n    rdns = false\n    dns_canonicalize_hostname = false\n\n[realms]\n    {realm} = {{\n        kdc = {DC_ADDRESS}\n    }}\n\n[domain_realm]\n    .{lower} = {realm}\n    {lower} = {realm}\n"
            ),
        )
        .map_err(|e| e.to_string())?;

        let log = std::fs::File::create(dir.join("samba.out")).map_err(|e| e.to_string())?;
        let mut command = netns::command(netns, "samba");
        command.args(["-i", "-M", "single", "-s"]).arg(&conf_path);
        die_with_parent(&mut command);
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting samba: {e}"))?;
        let dc = SambaDc {
            netns: netns.to_string(),
            dir: dir.to_path_buf(),
            realm: realm.to_string(),
            admin_password: admin_password.to_string(),
            krb5_conf,
            child: crate::named::Daemon(child),
        };
        dc.wait_for_dns(&lower)?;
        Ok(dc)
    }

    fn wait_for_dns(&self, zone: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let answer = self
                .command("dig")
                .args(["+short", "+time=1", "+tries=1", "@127.0.0.2", zone, "SOA"])
                .output();
            if answer.is_ok_and(|o| !o.stdout.is_empty()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let out = std::fs::read_to_string(self.dir.join("samba.out")).unwrap_or_default();
        Err(format!("samba's DNS did not answer within 30 s:\n{out}"))
    }

    /// Runs `samba-tool dns <args> -U Administrator` against the DC (e.g. to add records).
    /// Its RPC server comes up a few seconds after DNS: connection refusals are retried.
    pub fn samba_tool_dns(&self, args: &[&str]) -> Result<String, String> {
        let conf = self.dir.join("etc/smb.conf");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let result = run(self
                .command("samba-tool")
                .arg("dns")
                .args(args)
                .args(["-U", "Administrator"])
                .arg(format!("--password={}", self.admin_password))
                .arg("-s")
                .arg(&conf));
            match result {
                Err(e) if e.contains("refused") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(500));
                }
                other => return other,
            }
        }
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        netns::command(&self.netns, program)
    }

    /// The DNS server's address, as seen inside the namespace.
    pub fn dns_address(&self) -> SocketAddr {
        SocketAddr::new(DC_ADDRESS.parse().expect("valid"), 53)
    }
}
