//! WeChat Pay's two hosts (docs/wechatpay-v2.md §2.1): the primary `api.mch.weixin.qq.com` and the
//! backup `api2.mch.weixin.qq.com`, which serve every v2 method over **one** set of orders.
//! The simulator serves its single state on a primary host (`listen` + `tls_listen`) and,
//! when configured, a backup host (`backup_listen` + `backup_tls_listen`), and each host can
//! be made to fail, so a client's failover can be driven end to end:
//!
//! - [`HostMode::Refuse`]: the host's listeners are closed (a connection attempt is refused
//!   by the kernel: a real connect error, not an HTTP answer) and its open keep-alive
//!   connections are shut down once idle; back [`HostMode::Up`], the same addresses are
//!   bound again;
//! - [`HostMode::Error503`]: every WeChat Pay path answers the gateway's HTML 503 without
//!   processing anything (the control API `/sim/` and jscode2session, another host in
//!   reality, keep working).

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// One of the simulator's hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Host {
    /// `listen` and `tls_listen` (`api.mch.weixin.qq.com`).
    Primary,
    /// `backup_listen` and `backup_tls_listen` (`api2.mch.weixin.qq.com`).
    Backup,
}

impl Host {
    /// The name in the control API's path (`/sim/hosts/{primary|backup}`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Host::Primary => "primary",
            Host::Backup => "backup",
        }
    }

    /// The host named `name`.
    pub fn parse(name: &str) -> Option<Host> {
        [Host::Primary, Host::Backup]
            .into_iter()
            .find(|h| h.as_str() == name)
    }

    fn index(self) -> usize {
        match self {
            Host::Primary => 0,
            Host::Backup => 1,
        }
    }
}

/// How a host answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum HostMode {
    /// Serves normally (the default).
    #[default]
    #[serde(rename = "up")]
    Up,
    /// Refuses connections: its listeners are closed.
    #[serde(rename = "refuse")]
    Refuse,
    /// Answers every WeChat Pay path with the gateway's HTML 503, processing nothing.
    #[serde(rename = "error_503")]
    Error503,
}

/// The current mode of each host, watched by its listeners.
#[derive(Debug)]
pub(crate) struct Hosts {
    modes: [watch::Sender<HostMode>; 2],
}

impl Default for Hosts {
    fn default() -> Self {
        Hosts {
            modes: [
                watch::Sender::new(HostMode::Up),
                watch::Sender::new(HostMode::Up),
            ],
        }
    }
}

impl Hosts {
    /// The mode of `host` now.
    pub fn mode(&self, host: Host) -> HostMode {
        *self.modes[host.index()].borrow()
    }

    /// Switch `host` to `mode`; its listeners follow at once.
    pub fn set(&self, host: Host, mode: HostMode) {
        self.modes[host.index()].send_replace(mode);
    }

    /// Follow `host`'s mode (a listener's view).
    pub fn watch(&self, host: Host) -> watch::Receiver<HostMode> {
        self.modes[host.index()].subscribe()
    }
}

/// Completes when the watched host is told to refuse connections.
pub(crate) async fn refused(modes: &mut watch::Receiver<HostMode>) {
    let _ = modes.wait_for(|m| *m == HostMode::Refuse).await;
}

/// Completes when the watched host may accept connections again.
pub(crate) async fn accepting(modes: &mut watch::Receiver<HostMode>) {
    let _ = modes.wait_for(|m| *m != HostMode::Refuse).await;
}
