//! `ferromega serve`: the composition root — flags, base directory, pid file, logging, the
//! real backends, the HTTP listener and minimega's socket, and a clean shutdown.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use ferromega_domain::backends::HostNetwork;
use ferromega_domain::{Backends, ControlPlane, Settings};
use ferromega_host_container::{ContainerRuntime, Options as ContainerOptions};
use ferromega_host_network::{LinuxNetwork, OvsNetwork};
use ferromega_host_qemu::argv::Accel;
use ferromega_host_qemu::runtime::QemuRuntime;
use ferromega_host_system::LinuxSystem;

/// The address the server listens on and the CLI dials by default: loopback only, so
/// nothing is reachable from other hosts unless `--addr` says so.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9001";

/// Flags of `ferromega serve`, named like minimega's.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Base directory for state.
    #[arg(long, default_value = "/tmp/ferromega")]
    base: PathBuf,
    /// Files directory (default `<base>/files`).
    #[arg(long)]
    filepath: Option<PathBuf>,
    /// Log level: debug, info, warn, error.
    #[arg(long, default_value = "error")]
    level: String,
    /// Log to this file instead of stderr.
    #[arg(long)]
    logfile: Option<PathBuf>,
    /// Start even if another server seems to own the base directory.
    #[arg(long)]
    force: bool,
    /// QEMU acceleration: kvm, tcg, or auto (kvm when /dev/kvm opens, else tcg). Use tcg
    /// on hosts where /dev/kvm exists but cannot boot guests (nested PVM).
    #[arg(long, default_value = "auto", value_parser = ["kvm", "tcg", "auto"])]
    accel: String,
    /// cgroup mount root for containers (v1: `<root>/<controller>`, v2: the unified
    /// mount). Default: below this server's own cgroups, from /proc/self/cgroup.
    #[arg(long)]
    cgroup: Option<PathBuf>,
    /// Auth file of tokens, users and per-path rules (`ferromega auth add-token`,
    /// `add-user`, `allow`): when given, every API, WebSocket and page request needs a
    /// token, or a user's password (HTTP Basic or the login form), and a rule reaching
    /// its path.
    #[arg(long)]
    auth: Option<PathBuf>,
    /// This host's name in the mesh and the `host` column (default: the hostname).
    #[arg(long)]
    hostname: Option<String>,
    /// File holding the cluster secret peers share: with it, this host joins the mesh
    /// (peers present the secret to each other; without it every peer is refused).
    #[arg(long)]
    cluster_secret_file: Option<PathBuf>,
    /// Peers to dial at start (and retry until they answer): host[:port], comma separated.
    #[arg(long, value_delimiter = ',')]
    peers: Vec<String>,
    /// A file of peers to dial, one host[:port] a line (`#` comments).
    #[arg(long)]
    peers_file: Option<PathBuf>,
    /// Peers to look for on the local segment (UDP announcements); 0 never looks.
    #[arg(long, default_value_t = 0)]
    degree: u64,
    /// Discovery context: only hosts announcing the same context join.
    #[arg(long, default_value = "")]
    context: String,
    /// UDP port of discovery announcements.
    #[arg(long, default_value_t = 9000)]
    discovery_port: u16,
    /// Offer the command console page in the dashboard (the command language in the
    /// browser); off by default.
    #[arg(long)]
    console: bool,
    /// Serve HTTPS and WSS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The CA certificates (PEM) a peer's certificate must be signed by: a server
    /// serving TLS calls its peers over https. Default: the --tls-cert file itself (a
    /// cluster sharing one certificate, a self-signed CA, or a chain ending in the CA).
    #[arg(long, requires = "tls_cert")]
    peer_ca: Option<PathBuf>,
    /// Network backend: ovs (Open vSwitch through ovs-vsctl), bridge (Linux bridges, one
    /// per VLAN), or auto (Open vSwitch when its database answers, else Linux bridges).
    #[arg(long, default_value = "auto", value_parser = ["auto", "ovs", "bridge"])]
    network: String,
    /// The Open vSwitch database to use (`unix:PATH`), e.g. a private ovsdb-server's;
    /// default: the system's.
    #[arg(long)]
    ovs_db: Option<String>,
}

/// The cluster secret from `--cluster-secret-file` (its first line), if given.
fn cluster_secret(args: &ServeArgs) -> anyhow::Result<Option<String>> {
    let Some(path) = &args.cluster_secret_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read cluster secret {}", path.display()))?;
    let secret = text.lines().next().unwrap_or_default().trim().to_string();
    if secret.len() < 16 {
        bail!(
            "cluster secret in {} is shorter than 16 characters",
            path.display()
        );
    }
    Ok(Some(secret))
}

/// The PEM certificates peers must be signed by when this server serves TLS
/// (`--peer-ca`, or the `--tls-cert` file), checked to hold at least one.
fn peer_ca(args: &ServeArgs) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(path) = args.peer_ca.as_ref().or(args.tls_cert.as_ref()) else {
        return Ok(None);
    };
    ferromega_http::tls::load_certs(path).context("peer CA")?;
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(pem))
}

/// Peers from `--peers` and `--peers-file`.
fn peer_list(args: &ServeArgs) -> anyhow::Result<Vec<String>> {
    let mut peers: Vec<String> = args.peers.iter().map(|p| p.trim().to_string()).collect();
    if let Some(path) = &args.peers_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read peers file {}", path.display()))?;
        peers.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    peers.retain(|p| !p.is_empty());
    Ok(peers)
}

/// The network backend `--network` asks for on this host, and whether it is Open
/// vSwitch's userspace datapath (whose guests need checksum offload off).
fn network(choice: &str, ovs_db: Option<String>) -> anyhow::Result<(Arc<dyn HostNetwork>, bool)> {
    let ovs = || {
        let net = OvsNetwork::new(ovs_db.clone());
        let userspace = net.userspace();
        tracing::info!("network: Open vSwitch (userspace datapath: {userspace})");
        (Arc::new(net) as Arc<dyn HostNetwork>, userspace)
    };
    let linux = || (Arc::new(LinuxNetwork::new()) as Arc<dyn HostNetwork>, false);
    match choice {
        "bridge" => Ok(linux()),
        "ovs" if OvsNetwork::answers(ovs_db.clone()) => Ok(ovs()),
        "ovs" => bail!(
            "--network ovs: Open vSwitch does not answer (ovs-vsctl{} show failed)",
            ovs_db
                .as_ref()
                .map(|d| format!(" --db={d}"))
                .unwrap_or_default()
        ),
        _ if OvsNetwork::answers(ovs_db.clone()) => Ok(ovs()),
        _ => Ok(linux()),
    }
}

/// The acceleration `--accel` asks for on this host.
fn accel(choice: &str) -> Accel {
    match choice {
        "kvm" => Accel::Kvm,
        "tcg" => Accel::Tcg,
        _ if std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok() =>
        {
            Accel::Kvm
        }
        _ => Accel::Tcg,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn init_logging(args: &ServeArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.level)
        .with_context(|| format!("invalid log level {}", args.level))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match &args.logfile {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

fn pid_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Claims `base`: refuses when a live server's pid file is there (unless `force`).
fn claim_base(base: &Path, force: bool) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(base).with_context(|| format!("cannot create {}", base.display()))?;
    let pid_file = base.join("ferromega.pid");
    if let Ok(text) = std::fs::read_to_string(&pid_file) {
        if let Ok(pid) = text.trim().parse::<i32>() {
            if pid_alive(pid) && pid != std::process::id() as i32 && !force {
                bail!(
                    "another ferromega (pid {pid}) is using {}; stop it or pass --force",
                    base.display()
                );
            }
        }
    }
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))?;
    Ok(pid_file)
}

/// Runs the server on `addr` (`--addr`) until SIGINT, SIGTERM or `quit`.
pub fn serve(args: ServeArgs, addr: String) -> anyhow::Result<()> {
    init_logging(&args)?;
    let base = args.base.clone();
    let auth_path = args.auth.clone();
    let tokens = args
        .auth
        .as_deref()
        .map(ferromega_http::auth::AuthFile::load)
        .transpose()?;
    if tokens.as_ref().is_some_and(|t| t.is_empty()) {
        bail!(
            "the auth file holds no token and no user: add one with \
             `ferromega auth add-token` or `ferromega auth add-user`"
        );
    }
    if let Some(h) = &args.hostname {
        if ferromega_domain::vm::launch::check_name(h).is_err() {
            bail!("invalid --hostname {h:?}: use letters, digits, '_', '.', '-'");
        }
    }
    let secret = cluster_secret(&args)?;
    let peer_ca = peer_ca(&args)?;
    let peers = peer_list(&args)?;
    if (!peers.is_empty() || args.degree > 0) && secret.is_none() {
        bail!("--peers and --degree need --cluster-secret-file: peers authenticate with it");
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(ferromega_http::tls::server_config(cert, key)?),
        _ => None,
    };
    // `--addr` may be given as the URL the CLI dials.
    let addr = addr
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let pid_file = claim_base(&base, args.force)?;
    let files_dir = args.filepath.clone().unwrap_or_else(|| base.join("files"));
    std::fs::create_dir_all(&files_dir)?;
    let settings = Settings {
        host: args.hostname.clone().unwrap_or_else(hostname),
        base: base.clone(),
        files_dir,
    };
    let (network, userspace_switch) = network(&args.network, args.ovs_db.clone())?;
    let kvm = Arc::new(QemuRuntime::new(accel(&args.accel)).with_nic_csum_off(userspace_switch));
    let backends = Backends {
        system: Arc::new(LinuxSystem),
        kvm: Some(kvm),
        container: Some(Arc::new(ContainerRuntime::new(ContainerOptions {
            base: base.clone(),
            cgroup_root: args.cgroup.clone(),
            shim: PathBuf::from("/proc/self/exe"),
        }))),
        network: Some(network),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async move {
        let cp = ControlPlane::new(settings, backends);
        cp.graphs_start();
        let found = cp.recover().await;
        if found > 0 {
            tracing::info!("found {found} VMs of a previous server");
        }
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let socket_path = base.join("minimega");
        let sock_cp = cp.clone();
        let sock_path = socket_path.clone();
        let socket = tokio::spawn(async move {
            if let Err(e) = ferromega_http::socket::serve(sock_cp, &sock_path).await {
                tracing::error!("minimega socket: {e}");
            }
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!("ferromega listening on {scheme}://{addr}");
        let mut quit = cp.quit_signal();
        let stopping = cp.clone();
        let shutdown = async move {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!("cannot watch SIGTERM: {e}");
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
                _ = quit.wait_for(|q| *q) => {}
            }
            // Streaming answers (pipe readers, peers following events) end now: the
            // graceful shutdown waits for every open response.
            stopping.stopping();
        };
        let web = ferromega_web::Options {
            console: args.console,
        };
        let app = ferromega_http::router(cp.clone()).merge(ferromega_web::router_with(web));
        // The file is checked above; from here on the server re-reads it when it changes.
        let app = match (&tokens, &auth_path) {
            (Some(_), Some(path)) => {
                ferromega_http::auth::protect_file(app, path, cp.host(), tls.is_some())?
            }
            _ => app,
        };
        // Peers present the cluster secret, not a user token: their endpoints sit beside
        // the guarded app and check the secret themselves.
        let app = ferromega_http::mesh::beside(app, cp.clone(), secret.as_deref());
        if let Some(secret) = secret {
            let link = Arc::new(crate::peers::HttpPeers::new(secret, peer_ca));
            cp.mesh_discovery(args.degree, &args.context);
            cp.mesh_attach(link, &addr, &peers);
            if args.degree > 0 {
                let http_port = listener.local_addr()?.port();
                let port = args.discovery_port;
                tokio::spawn(crate::discovery::run(cp.clone(), port, http_port));
            }
        }
        match tls {
            Some(config) => {
                let listener = ferromega_http::tls::TlsListener::new(listener, config)?;
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await?
            }
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await?
            }
        }
        socket.abort();
        cp.shutdown().await;
        let _ = std::fs::remove_file(&socket_path);
        anyhow::Ok(())
    });
    let _ = std::fs::remove_file(&pid_file);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_address_is_loopback_only() {
        let addr: std::net::SocketAddr = DEFAULT_ADDR.parse().unwrap();
        assert!(addr.ip().is_loopback());
    }
}
