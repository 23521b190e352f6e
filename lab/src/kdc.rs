//! A throw-away MIT Kerberos realm (Debian's `krb5-kdc`, `krb5-admin-server`, `krb5-user`) in a
//! directory of its own: database, principals, keytabs, and a `krb5kdc` on a free loopback
//! port. For GSS-TSIG tests against BIND (`tkey-gssapi-keytab`).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::named::{die_with_parent, free_port};
use crate::run;

/// A running KDC; killed when dropped.
pub struct Kdc {
    pub realm: String,
    pub dir: PathBuf,
    /// The `krb5.conf` clients and servers must use (`KRB5_CONFIG`).
    pub krb5_conf: PathBuf,
    pub port: u16,
    _daemon: crate::named::Daemon,
}

fn sbin(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|d: PathBuf| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

impl Kdc {
    /// Creates realm `realm` under `dir` and starts its KDC.
    pub fn start(dir: &Path, realm: &str) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let port = free_port(ip)?;
        let d = dir.display();
        let krb5_conf = dir.join("krb5.conf");
        let domain = realm.to_ascii_lowercase();
        std::fs::write(
            &krb5_conf,
            format!(
                "[libdefaults]\n    default_realm = {realm}\n    dns_lookup_kdc = false\n    dns_lookup_realm = false\n    rdns = false\n    dns_canonicalize_hostname = false\n    udp_preference_limit = 1\n    ignore_acceptor_hostname = true\n\n[realms]\n    {realm} = {{\n        kdc = 127.0.0.1:{port}\n    }}\n\n[domain_realm]\n    .{domain} = {realm}\n    {domain} = {realm}\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(
            dir.join("kdc.conf"),
            format!(
                "[kdcdefaults]\n    kdc_ports = {port}\n    kdc_tcp_ports = {port}\n\n[realms]\n    {realm} = {{\n        database_name = {d}/principal\n        key_stash_file = {d}/stash\n        acl_file = {d}/kadm5.acl\n        max_life = 10h\n        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n    }}\n\n[logging]\n    kdc = FILE:{d}/kdc.log\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(dir.join("kadm5.acl"), "").map_err(|e| e.to_string())?;
        let env = Self::env_for(dir, &krb5_conf);
        run(Command::new(sbin("kdb5_util")).envs(env.clone()).args([
            "create",
            "-s",
            "-r",
            realm,
            "-P",
            "lab-master-password",
        ]))?;
        let mut command = Command::new(sbin("krb5kdc"));
        die_with_parent(&mut command);
        let child = command
            .envs(env)
            .args(["-n", "-r", realm])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting krb5kdc: {e} (install krb5-kdc)"))?;
        let kdc = Kdc {
            realm: realm.to_string(),
            dir: dir.to_path_buf(),
            krb5_conf,
            port,
            _daemon: crate::named::Daemon(child),
        };
        // The KDC is ready once its port takes connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((ip, port)).is_err() {
            if Instant::now() > deadline {
                return Err("krb5kdc did not start listening within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(kdc)
    }

    fn env_for(dir: &Path, krb5_conf: &Path) -> Vec<(String, String)> {
        vec![
            ("KRB5_CONFIG".into(), krb5_conf.display().to_string()),
            (
                "KRB5_KDC_PROFILE".into(),
                dir.join("kdc.conf").display().to_string(),
            ),
        ]
    }

    /// The environment for tools that talk to this realm.
    pub fn env(&self) -> Vec<(String, String)> {
        Self::env_for(&self.dir, &self.krb5_conf)
    }

    fn kadmin(&self, query: &str) -> Result<(), String> {
        run(Command::new(sbin("kadmin.local")).envs(self.env()).args([
            "-r",
            &self.realm,
            "-q",
            query,
        ]))
        .map(drop)
    }

    /// Adds a user principal with a password.
    pub fn add_user(&self, name: &str, password: &str) -> Result<(), String> {
        self.kadmin(&format!("addprinc -pw {password} {name}@{}", self.realm))
    }

    /// Adds a service principal with a random key and writes it to `keytab`.
    pub fn add_service(&self, name: &str, keytab: &Path) -> Result<(), String> {
        self.kadmin(&format!("addprinc -randkey {name}@{}", self.realm))?;
        self.export(name, keytab)
    }

    /// Writes the current keys of `name` to `keytab` without changing them.
    pub fn export(&self, name: &str, keytab: &Path) -> Result<(), String> {
        self.kadmin(&format!(
            "ktadd -norandkey -k {} {name}@{}",
            keytab.display(),
            self.realm
        ))
    }

    /// Gets a ticket for `principal` into the credential cache `ccache` (`kinit`).
    pub fn kinit(&self, principal: &str, password: &str, ccache: &Path) -> Result<(), String> {
        kinit_with(
            Command::new("kinit"),
            &self.env(),
            &[],
            &format!("{principal}@{}", self.realm),
            password,
            ccache,
        )
    }
}

/// Runs `command` (`kinit`, or `kinit` wrapped, e.g. in `ip netns exec`) for `principal`
/// into `ccache`, with `extra` arguments (e.g. `-l 2s`) and the password on standard input.
pub fn kinit_with(
    mut command: Command,
    env: &[(String, String)],
    extra: &[&str],
    principal: &str,
    password: &str,
    ccache: &Path,
) -> Result<(), String> {
    use std::io::Write;
    let mut child = command
        .envs(env.iter().cloned())
        .args(extra)
        .arg("-c")
        .arg(format!("FILE:{}", ccache.display()))
        .arg(principal)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("kinit: {e} (install krb5-user)"))?;
    child
        .stdin
        .take()
        .ok_or("kinit stdin")?
        .write_all(format!("{password}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "kinit {principal} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}
